"""Whether code runs inside a notebook kernel (the progress display and the run record show
themselves differently there), and d2lmini's outputs marked by kind in a notebook."""

# The metadata key of d2lmini's own text outputs in a notebook: {OUTPUT_KEY: kind}, so that a
# tool (the book's build) tells them apart by data, not by their wording. Kinds:
EPOCH_LINES = 'epoch-lines'             # the epoch lines of a fit (progress.EpochProgress)
CHECKPOINT_NOTICE = 'checkpoint-notice'  # where checkpoints go, what a fit resumed from
OUTPUT_KEY = 'd2lmini_output'


def in_notebook():
    """True inside a Jupyter or Colab kernel, False in a terminal or a plain script."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, 'kernel')


def show_text(text, kind):
    """Print `text`; in a notebook, show it as a text output marked as `kind` instead."""
    if not in_notebook():
        print(text, flush=True)
        return
    from IPython.display import display
    display({'text/plain': text}, raw=True, metadata={OUTPUT_KEY: kind})
