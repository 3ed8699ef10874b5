"""Whether code runs inside a notebook kernel: the progress display and the run record show
themselves differently there."""


def in_notebook():
    """True inside a Jupyter or Colab kernel, False in a terminal or a plain script."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, 'kernel')
