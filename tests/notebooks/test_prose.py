"""Each chapter's notebooks share their prose cell for cell, and say so when they drift."""
import copy

import nbformat
import pytest

from book.tools import chapters, merge
from d2lmini import frameworks
from d2lmini.frameworks import IDS


@pytest.fixture(scope='module', params=chapters.chapters())
def chapter(request):
    """(name, framework id -> its notebook)."""
    name = request.param
    return name, {fw: nbformat.read(path, as_version=4) for fw, path in chapters.notebooks(name).items()}


def layouts(name, notebooks):
    return {fw: merge.layout(nb, chapters.notebook_path(name, fw).name) for fw, nb in notebooks.items()}


def test_shared_prose_and_structure_match(chapter):
    name, notebooks = chapter
    merge.check_structure(layouts(name, notebooks))       # raises MergeError naming the cells
    shared = layouts(name, notebooks)[IDS[0]].shared
    assert shared and shared[0][1].source.startswith('# '), 'a chapter starts with its title'


def test_each_notebook_declares_colabs_kernel_and_its_tags(chapter):
    # Colab knows `python3` only: another name opens with "Unrecognized runtime"; the build
    # and nbval run each notebook with its framework's kernel all the same (Makefile).
    for fw, nb in chapter[1].items():
        assert nb.metadata.kernelspec == {'name': 'python3', 'display_name': 'Python 3',
                                          'language': 'python'}, f'{fw}: {nb.metadata.kernelspec}'
        code = [c for c in nb.cells if c.cell_type == 'code']
        assert code[0].metadata.get('tags') == ['colab-install']
        # one training cell, or several that each train a run of their own (tag run-<name>)
        train = [chapters.run_name(c) for c in code if 'train' in c.metadata.get('tags', [])]
        assert len(train) <= 1 or (None not in train and len(set(train)) == len(train)), (fw, train)


def test_drifted_prose_is_reported_with_its_cell(chapter):
    name, notebooks = chapter
    drifted = copy.deepcopy(notebooks)
    index, cell = layouts(name, drifted)[IDS[-1]].shared[-1]
    line = next(line for line in cell.source.splitlines() if line.strip())
    cell.source = cell.source.replace(line, line + ' (drifted)', 1)
    with pytest.raises(merge.MergeError) as info:
        merge.check_structure(layouts(name, drifted))
    message = str(info.value)
    assert f'{name}_{IDS[-1]}.ipynb cell {index}: ' in message and '(drifted)' in message
    assert f'{name}_{IDS[0]}.ipynb cell ' in message


def test_committed_outputs_are_free_of_local_paths(chapter):
    kept = chapters.ROOT / 'book' / chapter[0] / 'reference'      # reference runs and records
    for path in [*chapters.notebooks(chapter[0]).values(), *sorted(kept.glob('*.*'))]:
        text = path.read_text()
        for fragment in ('/root/', '/tmp/', '/work/', '/home/', str(chapters.ROOT)):
            assert fragment not in text, f'{path.name} shows a local path ({fragment})'


def test_a_notebook_read_alone_names_its_framework_under_the_title(chapter):
    """In Colab or on GitHub only this says which version is open (the page's tabs say it
    there, so the page leaves the note out)."""
    for fw, nb in chapter[1].items():
        note = nb.cells[1]
        assert merge.NOTEBOOK_ONLY_TAG in note.metadata.get('tags', []) and merge.NOTE_TAG in note.metadata.tags
        assert f'**{frameworks.get(fw).label}**' in note.source
