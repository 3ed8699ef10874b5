"""The book's frameworks, in book order: the one list every tool, test and page reads.

Framework-free (imports nothing heavy), so it loads in both virtual environments and in the
Sphinx build, which hands it to the page's JavaScript.
"""
import dataclasses


@dataclasses.dataclass(frozen=True)
class Framework:
    id: str        # in notebook names (<chapter>_<id>.ipynb), tab ids and ?framework=<id>
    label: str     # what readers see on tabs and in tables
    module: str    # the d2lmini adapter: `from d2lmini import <module> as d2l`
    kernel: str    # the Jupyter kernel its notebooks declare
    venv: str      # the virtual environment (relative to the repository) that runs it
    extra: str     # the pip extra that installs it: d2lmini[<extra>]
    aliases: tuple = ()    # other names `?framework=` accepts (lower case)
    colab_note: str = ''   # why Colab cannot simply run it, if it cannot
    # whether its pip extra can use a GPU, so that its notebooks ask Colab for a GPU runtime:
    # the `mxnet` wheel on PyPI is built for the CPU only (GPU builds are separate packages)
    pip_gpu: bool = True
    # image batches' axis order: 'NCHW' (channels first) or 'NHWC' (channels last), as its
    # adapter's FashionMNIST.layout gives them and its layers expect (tests check they agree)
    layout: str = dataclasses.field(kw_only=True)
    color: str = dataclasses.field(kw_only=True)   # its lines in the book's figures, '#rrggbb'


FRAMEWORKS = (
    Framework('pytorch', 'PyTorch', 'torch', 'd2lmini-pytorch', '.venv', 'torch', ('torch', 'pt'),
              layout='NCHW', color='#ee4c2c'),
    Framework('tensorflow', 'TensorFlow', 'tensorflow', 'd2lmini-tensorflow', '.venv', 'tensorflow',
              ('tf', 'keras'), layout='NHWC', color='#ff8f00'),
    Framework('jax', 'JAX', 'jax', 'd2lmini-jax', '.venv', 'jax', ('flax',), layout='NHWC',
              color='#5e97f6'),
    Framework('mxnet', 'MXNet', 'mxnet', 'd2lmini-mxnet', '.venv-mxnet', 'mxnet', ('mx', 'gluon'),
              colab_note='needs an older Python', pip_gpu=False, layout='NCHW',
              color='#2e7d32'),
)
IDS = tuple(fw.id for fw in FRAMEWORKS)
BY_ID = {fw.id: fw for fw in FRAMEWORKS}


def get(framework_id):
    """The Framework with this id; KeyError naming the known ones otherwise."""
    try:
        return BY_ID[framework_id]
    except KeyError:
        raise KeyError(f'unknown framework {framework_id!r} (known: {", ".join(IDS)})') from None


if __name__ == '__main__':
    # For the Makefile: `python -m d2lmini.frameworks VENV FIELD...` prints, one line per
    # framework that VENV runs, its FIELDs (e.g. `.venv id kernel label`).
    import sys
    venv, *fields = sys.argv[1:]
    for fw in FRAMEWORKS:
        if fw.venv == venv:
            print(' '.join(getattr(fw, field) for field in fields))
