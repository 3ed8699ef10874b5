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
    # its lines in the book's figures: a colour ('#rrggbb') and a matplotlib marker, each its
    # own, so that the lines differ for readers who do not tell the hues apart. The colours
    # are four of Okabe and Ito's colour-blind-safe palette (jfly.uni-koeln.de/color).
    color: str = dataclasses.field(kw_only=True)
    marker: str = dataclasses.field(kw_only=True)


FRAMEWORKS = (
    Framework('pytorch', 'PyTorch', 'torch', 'd2lmini-pytorch', '.venv', 'torch', ('torch', 'pt'),
              layout='NCHW', color='#d55e00', marker='o'),
    Framework('tensorflow', 'TensorFlow', 'tensorflow', 'd2lmini-tensorflow', '.venv', 'tensorflow',
              ('tf', 'keras'), layout='NHWC', color='#cc79a7', marker='s'),
    Framework('jax', 'JAX', 'jax', 'd2lmini-jax', '.venv', 'jax', ('flax',), layout='NHWC',
              color='#0072b2', marker='^'),
    Framework('mxnet', 'MXNet', 'mxnet', 'd2lmini-mxnet', '.venv-mxnet', 'mxnet', ('mx', 'gluon'),
              colab_note='needs an older Python', pip_gpu=False, layout='NCHW',
              color='#009e73', marker='D'),
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
