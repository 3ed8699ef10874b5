"""Unit tests of book/tools/merge.py on the demo chapter fixture (no kernel, no Sphinx)."""
import re

import nbformat
import pytest

import book_helpers  # noqa: F401 (puts book/tools on sys.path)
import demo_chapter
import merge

NAMES = {fw: f'book/demo/demo_{fw}.ipynb' for fw in demo_chapter.FRAMEWORKS}


def merged(notebooks=None, **kwargs):
    notebooks = notebooks or demo_chapter.notebooks()
    kwargs.setdefault('chapter_dir', 'book/demo')
    kwargs.setdefault('page_dir', 'book/_generated')
    return merge.merge(notebooks, names=NAMES, **kwargs)


def tagged(nb):
    """(group, framework, cell) for every framework cell of a merged notebook."""
    found = []
    for cell in nb.cells:
        if cell.cell_type == 'code':
            info = cell.metadata[merge.META_KEY]
            found.append((info['group'], info['framework'], cell))
        else:
            m = re.match(r'^`{3,}\{container\} framework-note framework-group-(\d+) framework-(\w+)\n',
                         cell.source)
            if m:
                found.append((int(m.group(1)), m.group(2), cell))
    return found


def shared_sources(nb):
    return [c.source for c in nb.cells if c.cell_type == 'markdown' and '{container} framework-note' not in c.source]


# --- grouping -------------------------------------------------------------------------------------

def test_shared_prose_appears_once_in_order():
    sources = shared_sources(merged())
    for heading in ('# Demo chapter', '## A block', '## Training', '## Remarks', '## Summary'):
        assert sum(s.startswith(heading) for s in sources) == 1, heading
    starts = [s.split('\n')[0] for s in sources]
    assert starts == ['# Demo chapter', '## A block', '## Training', '## Remarks', '## Summary']


def test_every_framework_cell_is_tagged_with_its_group_and_framework():
    nb = merged()
    found = tagged(nb)
    groups = {}
    for group, fw, cell in found:
        groups.setdefault(group, []).append((fw, cell.cell_type))
    # group 1: the install cells; 2: block (PyTorch note, JAX has two cells); 3: training;
    # 4: remarks (notes of JAX and MXNet only)
    assert groups[1] == [(fw, 'code') for fw in demo_chapter.FRAMEWORKS]
    assert groups[2] == [('pytorch', 'markdown'), ('pytorch', 'code'), ('tensorflow', 'code'),
                         ('jax', 'code'), ('jax', 'code'), ('mxnet', 'code')]
    assert groups[3] == [(fw, 'code') for fw in demo_chapter.FRAMEWORKS]
    assert groups[4] == [('jax', 'markdown'), ('mxnet', 'markdown')]
    assert set(groups) == {1, 2, 3, 4}


def test_cells_of_one_group_sit_together_between_the_shared_cells():
    nb = merged()
    kinds = []
    for cell in nb.cells:
        hit = [g for g, _, c in tagged(nb) if c is cell]
        kinds.append(f'g{hit[0]}' if hit else 'shared')
    collapsed = [k for i, k in enumerate(kinds) if i == 0 or k != kinds[i - 1] or k == 'shared']
    assert collapsed == ['shared', 'g1', 'shared', 'g2', 'shared', 'g3', 'shared', 'g4', 'shared']


def test_code_and_outputs_are_kept_unchanged():
    sources = demo_chapter.notebooks()
    nb = merged(demo_chapter.notebooks())
    for fw in demo_chapter.FRAMEWORKS:
        originals = [c for c in sources[fw].cells if c.cell_type == 'code']
        copies = [c for g, f, c in tagged(nb) if f == fw and c.cell_type == 'code']
        assert [c.source for c in copies] == [c.source for c in originals]
        assert [c.outputs for c in copies] == [c.outputs for c in originals]
        assert [c.metadata.get('tags', []) for c in copies] == [c.metadata.get('tags', []) for c in originals]
    training = [c for _, f, c in tagged(nb) if f == 'jax' and 'Training on' in c.source]
    kinds = [o.output_type for o in training[0].outputs]
    assert kinds == ['stream', 'display_data', 'stream']
    assert training[0].outputs[1].data['image/png'] == demo_chapter.PNG_1X1


def test_cell_ids_are_unique_and_the_notebook_is_valid():
    nb = merged()
    ids = [c.id for c in nb.cells]
    assert len(ids) == len(set(ids))
    nbformat.validate(nb)


def test_notes_become_containers_with_their_text():
    nb = merged()
    notes = [(g, fw, c) for g, fw, c in tagged(nb) if c.cell_type == 'markdown']
    assert [(g, fw) for g, fw, _ in notes] == [(2, 'pytorch'), (4, 'jax'), (4, 'mxnet')]
    assert 'In PyTorch a block is an `nn.Module`.' in notes[0][2].source
    assert notes[0][2].source.rstrip().endswith('```')
    assert notes[0][2].metadata.get('tags') == ['framework-note']


def test_a_note_holding_a_code_block_gets_a_longer_fence():
    notebooks = demo_chapter.notebooks()
    note = next(c for c in notebooks['pytorch'].cells if merge.NOTE_TAG in merge.tags(c))
    note.source = 'Example:\n\n```python\nx = 1\n```'
    cell = next(c for g, fw, c in tagged(merged(notebooks)) if c.cell_type == 'markdown' and fw == 'pytorch')
    assert cell.source.startswith('````{container}') and cell.source.rstrip().endswith('\n````')


def test_header_goes_right_after_the_title():
    nb = merged(header_markdown='RUN-IT-YOURSELF TABLE\n')
    assert nb.cells[0].source.startswith('# Demo chapter\n')
    assert 'RUN-IT-YOURSELF TABLE' in nb.cells[0].source
    assert 'A chapter for testing' not in nb.cells[0].source
    assert nb.cells[1].source.startswith('A chapter for testing the book tooling')


def test_relative_figure_paths_are_rebased_to_the_page():
    nb = merged()
    assert '![A demo figure](../demo/figures/demo.svg)' in nb.cells[0].source
    same_place = merge.merge(demo_chapter.notebooks(), names=NAMES, chapter_dir='book/demo',
                             page_dir='book/demo')
    assert '![A demo figure](figures/demo.svg)' in same_place.cells[0].source


# --- failures -------------------------------------------------------------------------------------

def test_differing_prose_names_notebooks_cells_and_line():
    notebooks = demo_chapter.notebooks()
    cell = notebooks['jax'].cells[2]
    assert cell.source.startswith('## A block')
    cell.source = cell.source.replace('whatever the framework', 'in JAX too')
    with pytest.raises(merge.MergeError) as error:
        merged(notebooks)
    message = str(error.value)
    assert 'shared prose differs' in message
    assert 'book/demo/demo_pytorch.ipynb cell 2' in message
    assert 'book/demo/demo_jax.ipynb cell 2' in message
    assert 'line 3' in message
    assert "'The block doubles its input, whatever the framework.'" in message
    assert "'The block doubles its input, in JAX too.'" in message


def test_trailing_spaces_do_not_count_as_a_difference():
    notebooks = demo_chapter.notebooks()
    notebooks['mxnet'].cells[2].source += '   \n\n'
    merged(notebooks)


def test_a_shared_cell_missing_in_one_notebook_is_named():
    notebooks = demo_chapter.notebooks()
    remarks = next(i for i, c in enumerate(notebooks['tensorflow'].cells) if c.source == '## Remarks')
    del notebooks['tensorflow'].cells[remarks]
    with pytest.raises(merge.MergeError) as error:
        merged(notebooks)
    message = str(error.value)
    assert 'book/demo/demo_tensorflow.ipynb cell 6' in message   # now '## Summary'
    assert "'## Remarks'" in message and "'## Summary'" in message


def test_an_extra_shared_cell_at_the_end_is_named():
    notebooks = demo_chapter.notebooks()
    notebooks['mxnet'].cells.append(nbformat.v4.new_markdown_cell('## Exercises'))
    with pytest.raises(merge.MergeError) as error:
        merged(notebooks)
    message = str(error.value)
    assert 'book/demo/demo_mxnet.ipynb cell 9' in message and "'## Exercises'" in message
    assert 'without a counterpart' in message


def test_a_framework_without_code_where_others_have_code_is_a_structure_error():
    notebooks = demo_chapter.notebooks()
    cells = notebooks['mxnet'].cells
    training = next(i for i, c in enumerate(cells) if c.cell_type == 'code' and 'Training on' in c.source)
    del cells[training]
    with pytest.raises(merge.MergeError) as error:
        merged(notebooks)
    message = str(error.value)
    assert 'cell structure differs' in message
    assert "after the shared cell '## Training" in message
    assert 'book/demo/demo_mxnet.ipynb has no cells' in message
    assert 'book/demo/demo_mxnet.ipynb after cell 4, before cell 5: nothing' in message
    assert 'book/demo/demo_pytorch.ipynb after cell 5, before cell 7: 1 code cell (cell 6)' in message


def test_a_framework_note_alone_where_others_have_code_is_fine():
    notebooks = demo_chapter.notebooks()
    cells = notebooks['mxnet'].cells
    training = next(i for i, c in enumerate(cells) if c.cell_type == 'code' and 'Training on' in c.source)
    cells[training] = nbformat.v4.new_markdown_cell('MXNet skips training here.')
    cells[training].metadata['tags'] = ['framework-note']
    nb = merged(notebooks)
    assert any(fw == 'mxnet' and g == 3 and c.cell_type == 'markdown' for g, fw, c in tagged(nb))


def test_an_untagged_markdown_cell_in_one_notebook_breaks_the_shared_prose():
    notebooks = demo_chapter.notebooks()
    note = next(c for c in notebooks['pytorch'].cells if merge.NOTE_TAG in merge.tags(c))
    note.metadata['tags'] = []     # forgot the tag: now it is prose only PyTorch has
    with pytest.raises(merge.MergeError) as error:
        merged(notebooks)
    assert 'book/demo/demo_pytorch.ipynb cell 3' in str(error.value)
    assert 'In PyTorch a block is an `nn.Module`.' in str(error.value)


def test_raw_cells_are_refused_by_name():
    notebooks = demo_chapter.notebooks()
    notebooks['jax'].cells.insert(4, nbformat.v4.new_raw_cell('raw text'))
    with pytest.raises(merge.MergeError, match=r'book/demo/demo_jax.ipynb cell 4: raw cells'):
        merged(notebooks)


# --- training lines and the run-it-yourself block -------------------------------------------------

def test_training_runs_are_parsed_from_stdout():
    runs = merge.training_runs(demo_chapter.notebook('tensorflow'))
    assert runs == [dict(cell=5, device='cpu', budget='smoke',
                         reason='D2LMINI_BUDGET=auto and no GPU was found',
                         detail='at most 2 epochs of 2 training and 1 validation batches')]
    gpu = demo_chapter.notebook('pytorch')
    gpu.cells[6].outputs[0]['text'] = ("Training on cuda:0 (NVIDIA H200) with budget 'full' "
                                       "(D2LMINI_BUDGET=auto and a GPU was found): every epoch and "
                                       "batch the code asks for. Set D2LMINI_BUDGET=smoke for a quick check.\n")
    run, = merge.training_runs(gpu)
    assert (run['device'], run['budget'], run['reason']) == (
        'cuda:0 (NVIDIA H200)', 'full', 'D2LMINI_BUDGET=auto and a GPU was found')
    assert merge.training_runs(demo_chapter.notebook('jax', with_outputs=False)) == []


def entries(runs_for):
    return [dict(fw=fw, label=merge.LABELS[fw], colab_url=f'https://colab.example/{fw}.ipynb',
                 download=f'../demo/demo_{fw}.ipynb', runs=runs_for(fw))
            for fw in demo_chapter.FRAMEWORKS]


def test_run_info_lists_links_and_budget_per_framework():
    runs = {fw: merge.training_runs(demo_chapter.notebook(fw)) for fw in demo_chapter.FRAMEWORKS}
    runs['mxnet'] = []
    text = merge.run_info_markdown(entries(runs.get))
    for fw in demo_chapter.FRAMEWORKS:
        assert f'[Open in Colab](https://colab.example/{fw}.ipynb)' in text
        assert f'{{download}}`Download notebook <../demo/demo_{fw}.ipynb>`' in text
    rows = text.split('\n* - ')[2:]
    assert [r.split('\n')[0] for r in rows] == ['PyTorch', 'TensorFlow', 'JAX', 'MXNet']
    for row in rows[:3]:
        assert '**smoke** budget on **cpu** (D2LMINI\\_BUDGET=auto and no GPU was found)' in row
    assert 'no training in this notebook' in rows[3]
    assert 'Smoke-test outputs' in text


def test_run_info_has_no_smoke_warning_for_full_runs():
    full = [dict(cell=1, device='cuda', budget='full', reason='D2LMINI_BUDGET=full', detail='')]
    text = merge.run_info_markdown(entries(lambda fw: full))
    assert 'Smoke-test' not in text and '**full** budget on **cuda**' in text


def test_merge_chapter_writes_the_page(tmp_path):
    chapter, executed = tmp_path / 'book' / 'demo', tmp_path / '_build' / 'executed'
    chapter.mkdir(parents=True)
    executed.mkdir(parents=True)
    sources, done = {}, {}
    for fw, nb in demo_chapter.notebooks().items():
        sources[fw] = chapter / f'demo_{fw}.ipynb'
        done[fw] = executed / f'demo_{fw}.ipynb'
        nbformat.write(demo_chapter.notebook(fw, with_outputs=False), str(sources[fw]))
        nbformat.write(nb, str(done[fw]))
    page = tmp_path / 'book' / '_generated' / 'demo.ipynb'
    before = {fw: path.read_bytes() for fw, path in sources.items()}
    merge.merge_chapter('demo', done, sources, page, tmp_path, lambda path: f'https://colab/{path}')
    nb = nbformat.read(str(page), as_version=4)
    assert '[Open in Colab](https://colab/book/demo/demo_jax.ipynb)' in nb.cells[0].source
    assert '<../demo/demo_mxnet.ipynb>' in nb.cells[0].source
    assert '**smoke** budget on **cpu**' in nb.cells[0].source
    assert len([c for c in nb.cells if c.cell_type == 'code']) == 13
    assert {fw: path.read_bytes() for fw, path in sources.items()} == before


# --- markdown path rebasing -----------------------------------------------------------------------

@pytest.mark.parametrize('before, after', [
    ('![x](figures/a.svg)', '![x](../ch/figures/a.svg)'),
    ('[doc](other.md#part)', '[doc](../ch/other.md#part)'),
    ('<img src="figures/a.png" width="50%">', '<img src="../ch/figures/a.png" width="50%">'),
    ('```{figure} figures/a.svg\n:width: 60%\n\nCaption\n```', '```{figure} ../ch/figures/a.svg\n:width: 60%\n\nCaption\n```'),
    ('[ref]: figures/a.svg', '[ref]: ../ch/figures/a.svg'),
    ('{download}`the data <data.csv>`', '{download}`the data <../ch/data.csv>`'),
    # left alone: addresses, anchors, absolute paths, code
    ('[web](https://example.org/a.png) [a](#sec) ![r](/abs.png) ![m](mailto:x@y)',
     '[web](https://example.org/a.png) [a](#sec) ![r](/abs.png) ![m](mailto:x@y)'),
    ('`x[0](figures/a)` and ![x](f.svg)', '`x[0](figures/a)` and ![x](../ch/f.svg)'),
    ('```python\nplot[1](figures/a.svg)\n```\n![x](f.svg)', '```python\nplot[1](figures/a.svg)\n```\n![x](../ch/f.svg)'),
])
def test_rebase_markdown(before, after):
    assert merge.rebase_markdown(before, 'book/ch', 'book/_generated') == after


def test_framework_lists_agree_with_the_extension():
    import framework_tabs
    assert [list(pair) for pair in merge.FRAMEWORKS] == framework_tabs.DEFAULT_FRAMEWORKS
