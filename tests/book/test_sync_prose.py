"""book/tools/sync_prose.py on the demo chapter written to a temporary folder."""
import nbformat
import pytest

from book.tools import chapters, merge, sync_prose
from fixtures import demo_chapter


@pytest.fixture
def root(tmp_path):
    demo_chapter.write_chapter(tmp_path / 'book' / 'demo')
    return tmp_path


def read(root):
    return {fw: nbformat.read(path, as_version=4) for fw, path in chapters.notebooks('demo', root).items()}


def edit(root, fw, index, source, **fields):
    nb = read(root)[fw]
    nb.cells[index].source = source
    nb.cells[index].update(fields)
    nbformat.write(nb, chapters.notebook_path('demo', fw, root))


def test_shared_prose_is_copied_and_the_rest_left_alone(root):
    png = {'x.png': {'image/png': demo_chapter.PNG_1X1}}
    edit(root, 'jax', 0, '# Demo chapter\n\nRewritten in the JAX notebook.', attachments=png)
    edit(root, 'tensorflow', 4, '## A model\n\nAn older text.')     # cell 1 notes the framework
    before = read(root)
    changed = sync_prose.sync('demo', 'jax', root)
    after = read(root)
    path = lambda fw: chapters.notebook_path('demo', fw, root)
    assert changed == {path('pytorch'): [0], path('tensorflow'): [0, 4], path('mxnet'): [0]}
    merge.check_structure({fw: merge.layout(nb, fw) for fw, nb in after.items()})   # same prose now
    for fw, nb in after.items():
        assert nb.cells[0].source == '# Demo chapter\n\nRewritten in the JAX notebook.'
        assert nb.cells[0].attachments == png
        assert nb.cells[4].source == before['jax'].cells[4].source
        unshared = lambda notebook: [c for c in notebook.cells if not merge.is_shared(c)]
        assert unshared(nb) == unshared(before[fw])          # notes and code untouched
        assert [c.id for c in nb.cells] == [c.id for c in before[fw].cells]


def test_nothing_is_written_when_the_prose_is_the_same(root):
    stamps = {fw: path.stat().st_mtime_ns for fw, path in chapters.notebooks('demo', root).items()}
    assert sync_prose.sync('demo', 'pytorch', root) == {}
    assert {fw: path.stat().st_mtime_ns for fw, path in chapters.notebooks('demo', root).items()} == stamps


def test_a_differing_structure_is_refused_naming_the_cells(root):
    nb = read(root)['mxnet']
    training = next(i for i, c in enumerate(nb.cells) if 'trainer.fit' in c.source)
    del nb.cells[training]
    nb.cells[0].source = '# Demo chapter\n\nChanged.'
    nbformat.write(nb, chapters.notebook_path('demo', 'mxnet', root))
    before = {fw: path.read_bytes() for fw, path in chapters.notebooks('demo', root).items()}
    with pytest.raises(merge.MergeError) as error:
        sync_prose.sync('demo', 'pytorch', root)
    assert 'book/demo/demo_mxnet.ipynb has no cells' in str(error.value)
    assert 'book/demo/demo_mxnet.ipynb after cell 6, before cell 7: nothing' in str(error.value)
    assert {fw: path.read_bytes() for fw, path in chapters.notebooks('demo', root).items()} == before


def test_a_link_to_another_chapter_is_copied_naming_each_notebooks_framework(root):
    edit(root, 'jax', 0, '# Demo chapter\n\nSee [the answers](../answers/answers_jax.ipynb#exercise-1).')
    sync_prose.sync('demo', 'jax', root)
    for fw, nb in read(root).items():
        assert nb.cells[0].source.endswith(f'[the answers](../answers/answers_{fw}.ipynb#exercise-1).')
    merge.check_structure({fw: merge.layout(nb, fw) for fw, nb in read(root).items()})
