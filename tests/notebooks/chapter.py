"""The chapter's code, taken from its notebook: tests and benchmarks use the model the reader sees.

`load_chapter('pytorch')` executes the notebook's code cells in order, except the Colab
install cell and the training cell (tags `colab-install` and `train`), and returns the
resulting namespace: `GoogleNet`, `Inception`, `d2l`, ...
"""
import contextlib
import io
import json
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
SKIPPED_TAGS = {'colab-install', 'train'}


def notebook_path(framework, chapter='googlenet'):
    return ROOT / 'book' / chapter / f'{chapter}_{framework}.ipynb'


def code_cells(path):
    cells = json.loads(pathlib.Path(path).read_text())['cells']
    for index, cell in enumerate(cells):
        if cell['cell_type'] == 'code' and not SKIPPED_TAGS & set(cell['metadata'].get('tags', [])):
            yield index, ''.join(cell['source'])


def load_chapter(framework, chapter='googlenet', quiet=True):
    path = notebook_path(framework, chapter)
    namespace = {'__name__': f'{chapter}_{framework}'}
    for index, source in code_cells(path):
        output = io.StringIO()
        with contextlib.redirect_stdout(output) if quiet else contextlib.nullcontext():
            exec(compile(source, f'{path.name}[cell {index}]', 'exec'), namespace)
    return namespace
