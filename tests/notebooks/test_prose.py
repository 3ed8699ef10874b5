"""The four GoogLeNet notebooks share their prose cell for cell, and say so when they drift."""
import copy
import sys

import nbformat
import pytest

from chapter import ROOT, notebook_path

sys.path.insert(0, str(ROOT / 'book' / 'tools'))
import merge  # noqa: E402

FRAMEWORKS = ('pytorch', 'tensorflow', 'jax', 'mxnet')


def layouts(notebooks):
    return {fw: merge.layout(nb, notebook_path(fw).name) for fw, nb in notebooks.items()}


@pytest.fixture(scope='module')
def notebooks():
    return {fw: nbformat.read(notebook_path(fw), as_version=4) for fw in FRAMEWORKS}


def test_shared_prose_and_structure_match(notebooks):
    merge.check_structure(layouts(notebooks))       # raises MergeError naming the cells
    shared = layouts(notebooks)['pytorch'].shared
    assert len(shared) >= 20 and shared[0][1].source.startswith('# ')


def test_each_notebook_declares_its_kernel_and_tags(notebooks):
    for fw, nb in notebooks.items():
        assert nb.metadata.kernelspec.name == f'd2lmini-{fw}'
        code = [c for c in nb.cells if c.cell_type == 'code']
        assert code[0].metadata.get('tags') == ['colab-install']
        checked = [c for c in code if 'nbval-check-output' in c.metadata.get('tags', [])]
        assert len(checked) == 2 and checked[0].source.startswith('GoogleNet().layer_summary(')
        assert 'trainable parameters' in checked[1].source
        assert sum('train' in c.metadata.get('tags', []) for c in code) == 1


def test_drifted_prose_is_reported_with_its_cell(notebooks):
    drifted = copy.deepcopy(notebooks)
    cells = drifted['jax'].cells
    index = next(i for i, c in enumerate(cells)
                 if c.cell_type == 'markdown' and c.source.startswith('## Inception Blocks'))
    assert cells[index].source.startswith('## Inception Blocks\n\nShould a convolution')
    cells[index].source = cells[index].source.replace('Should a', 'Must a', 1)
    with pytest.raises(merge.MergeError) as info:
        merge.check_structure(layouts(drifted))
    message = str(info.value)
    assert f'googlenet_jax.ipynb cell {index}: \'Must a convolution' in message
    assert f'googlenet_pytorch.ipynb cell {index}: \'Should a convolution' in message


def test_committed_outputs_are_free_of_local_paths():
    for fw in FRAMEWORKS:
        text = notebook_path(fw).read_text()
        for fragment in ('/root/', '/tmp/', '/work/', '/home/', str(ROOT)):
            assert fragment not in text, f'{notebook_path(fw).name} shows a local path ({fragment})'
