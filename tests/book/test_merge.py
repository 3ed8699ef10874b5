"""Unit tests of book/tools/merge.py, runs.py and the run table (showing.py) on the demo chapter
fixture (no kernel, no Sphinx)."""
import nbformat
import pytest

from book.tools import kept_runs, merge, runs, showing
from d2lmini.frameworks import FRAMEWORKS, IDS
from fixtures import demo_chapter

NAMES = {fw: f'book/demo/demo_{fw}.ipynb' for fw in IDS}


def merged(notebooks=None, **kwargs):
    return merge.merge(notebooks or demo_chapter.notebooks(), NAMES, **kwargs)


def tagged(nb):
    """(group, framework, cell) for every framework cell of a merged notebook."""
    return [(c.metadata[merge.META_KEY]['group'], c.metadata[merge.META_KEY]['framework'], c)
            for c in nb.cells if merge.META_KEY in c.metadata]


def shared_sources(nb):
    return [c.source for c in nb.cells if merge.META_KEY not in c.metadata]


# --- grouping -------------------------------------------------------------------------------------

def test_shared_prose_appears_once_in_order():
    sources = shared_sources(merged())
    for heading in ('# Demo chapter', '## A model', '## Training', '## Remarks', '## Summary'):
        assert sum(s.startswith(heading) for s in sources) == 1, heading
    starts = [s.split('\n')[0] for s in sources]
    assert starts == ['# Demo chapter', '## A model', '## Training', '## Remarks', '## Summary']


def test_every_framework_cell_is_tagged_with_its_group_and_framework():
    nb = merged()
    found = tagged(nb)
    groups = {}
    for group, fw, cell in found:
        groups.setdefault(group, []).append((fw, cell.cell_type))
    # group 1: install and imports; 2: model (PyTorch note, JAX has two cells); 3: training;
    # 4: remarks (notes of JAX and MXNet only)
    assert groups[1] == [(fw, 'code') for fw in IDS for _ in range(2)]
    assert groups[2] == [('pytorch', 'markdown'), ('pytorch', 'code'), ('tensorflow', 'code'),
                         ('jax', 'code'), ('jax', 'code'), ('mxnet', 'code')]
    assert groups[3] == [(fw, 'code') for fw in IDS]
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


def test_code_and_outputs_are_kept_unchanged_but_run_records():
    sources = demo_chapter.notebooks()
    nb = merged(demo_chapter.notebooks())
    for fw in IDS:
        originals = [c for c in sources[fw].cells if c.cell_type == 'code']
        copies = [c for g, f, c in tagged(nb) if f == fw and c.cell_type == 'code']
        assert [c.source for c in copies] == [c.source for c in originals]
        assert [c.outputs for c in copies] == [[o for o in c.outputs if not runs.is_record(o)] for c in originals]
        assert [c.metadata.get('tags', []) for c in copies] == [c.metadata.get('tags', []) for c in originals]
    training = [c for _, f, c in tagged(nb) if f == 'jax' and 'trainer.fit' in c.source]
    assert [o.output_type for o in training[0].outputs] == ['display_data', 'stream']   # no record
    assert training[0].outputs[0].data['image/png'] == demo_chapter.PNG_1X1


def test_cell_ids_are_unique_and_the_notebook_is_valid():
    nb = merged()
    ids = [c.id for c in nb.cells]
    assert len(ids) == len(set(ids))
    nbformat.validate(nb)


def test_notes_become_framework_note_directives_with_their_text():
    nb = merged()
    notes = [(g, fw, c) for g, fw, c in tagged(nb) if c.cell_type == 'markdown']
    assert [(g, fw) for g, fw, _ in notes] == [(2, 'pytorch'), (4, 'jax'), (4, 'mxnet')]
    assert notes[0][2].source == '```{framework-note} pytorch 2\nIn PyTorch a model is an `nn.Module`.\n```\n'
    assert notes[0][2].metadata.get('tags') == ['framework-note']


def test_a_note_holding_a_code_block_gets_a_longer_fence():
    notebooks = demo_chapter.notebooks()
    note = next(c for c in notebooks['pytorch'].cells if merge.NOTE_TAG in merge.tags(c))
    note.source = 'Example:\n\n```python\nx = 1\n```'
    cell = next(c for g, fw, c in tagged(merged(notebooks)) if c.cell_type == 'markdown' and fw == 'pytorch')
    assert cell.source.startswith('````{framework-note}') and cell.source.rstrip().endswith('\n````')


def test_header_goes_right_after_the_title():
    nb = merged(header='RUN-IT-YOURSELF TABLE\n')
    assert nb.cells[0].source.startswith('# Demo chapter\n')
    assert 'RUN-IT-YOURSELF TABLE' in nb.cells[0].source
    assert 'A chapter for testing' not in nb.cells[0].source
    assert nb.cells[1].source.startswith('A chapter for testing the book tooling')


def test_markdown_is_copied_as_written():
    """The page is written beside the notebooks, so relative paths need no rewriting."""
    notebooks = demo_chapter.notebooks()
    notebooks_copy = demo_chapter.notebooks()
    for nb in notebooks.values():
        nb.cells[0].attachments = {'x.png': {'image/png': demo_chapter.PNG_1X1}}
    nb = merged(notebooks)
    assert nb.cells[0].source == notebooks_copy['pytorch'].cells[0].source
    assert nb.cells[0].attachments == {'x.png': {'image/png': demo_chapter.PNG_1X1}}


def with_sibling_link(notebooks, framework_of=lambda fw: fw):
    """The demo notebooks with a link to another chapter's notebook in a shared cell."""
    for fw, nb in notebooks.items():
        nb.cells[0].source += (f'\n\nAnswers: [exercise 2](../demo_exercises/demo_exercises_'
                               f'{framework_of(fw)}.ipynb#exercise-2).')
    return notebooks


def test_a_link_to_another_chapter_names_each_notebooks_framework_and_the_page_there():
    page = merged(with_sibling_link(demo_chapter.notebooks()))
    assert '[exercise 2](../demo_exercises/index.ipynb#exercise-2)' in page.cells[0].source
    assert '_pytorch.ipynb' not in page.cells[0].source
    assert merge.links_for('[a](../x/x_jax.ipynb#y) [b](../x/x_mxnet.ipynb)', 'tensorflow') == \
        '[a](../x/x_tensorflow.ipynb#y) [b](../x/x_tensorflow.ipynb)'
    # a link to a notebook of the same chapter folder name only: another chapter's page
    assert merge.page_links('[c](x_jax.ipynb) [d](../x/y_jax.ipynb)') == '[c](x_jax.ipynb) [d](../x/y_jax.ipynb)'


def test_a_link_to_another_frameworks_notebook_is_named():
    notebooks = with_sibling_link(demo_chapter.notebooks(),
                                  lambda fw: 'pytorch' if fw == 'mxnet' else fw)
    with pytest.raises(merge.MergeError) as error:
        merged(notebooks)
    assert ('book/demo/demo_mxnet.ipynb cell 0 links ../demo_exercises/demo_exercises_pytorch.ipynb'
            in str(error.value))
    assert 'demo_exercises_mxnet.ipynb' in str(error.value)


# --- failures -------------------------------------------------------------------------------------

def test_differing_prose_names_notebooks_cells_and_line():
    notebooks = demo_chapter.notebooks()
    cell = notebooks['jax'].cells[3]
    assert cell.source.startswith('## A model')
    cell.source = cell.source.replace('whatever the framework', 'in JAX too')
    with pytest.raises(merge.MergeError) as error:
        merged(notebooks)
    message = str(error.value)
    assert 'shared prose differs' in message
    assert 'book/demo/demo_pytorch.ipynb cell 3' in message
    assert 'book/demo/demo_jax.ipynb cell 3' in message
    assert 'line 3' in message
    assert "'A two-layer perceptron, whatever the framework.'" in message
    assert "'A two-layer perceptron, in JAX too.'" in message


def test_trailing_spaces_do_not_count_as_a_difference():
    notebooks = demo_chapter.notebooks()
    notebooks['mxnet'].cells[3].source += '   \n\n'
    merged(notebooks)


def test_a_shared_cell_missing_in_one_notebook_is_named():
    notebooks = demo_chapter.notebooks()
    remarks = next(i for i, c in enumerate(notebooks['tensorflow'].cells) if c.source == '## Remarks')
    del notebooks['tensorflow'].cells[remarks]
    with pytest.raises(merge.MergeError) as error:
        merged(notebooks)
    message = str(error.value)
    assert 'book/demo/demo_tensorflow.ipynb cell 7' in message   # now '## Summary'
    assert "'## Remarks'" in message and "'## Summary'" in message


def test_an_extra_shared_cell_at_the_end_is_named():
    notebooks = demo_chapter.notebooks()
    notebooks['mxnet'].cells.append(nbformat.v4.new_markdown_cell('## Exercises'))
    with pytest.raises(merge.MergeError) as error:
        merged(notebooks)
    message = str(error.value)
    assert 'book/demo/demo_mxnet.ipynb cell 10' in message and "'## Exercises'" in message
    assert 'without a counterpart' in message


def test_a_framework_without_code_where_others_have_code_is_a_structure_error():
    notebooks = demo_chapter.notebooks()
    cells = notebooks['mxnet'].cells
    training = next(i for i, c in enumerate(cells) if c.cell_type == 'code' and 'trainer.fit' in c.source)
    del cells[training]
    with pytest.raises(merge.MergeError) as error:
        merged(notebooks)
    message = str(error.value)
    assert 'cell structure differs' in message
    assert "after the shared cell '## Training" in message
    assert 'book/demo/demo_mxnet.ipynb has no cells' in message
    assert 'book/demo/demo_mxnet.ipynb after cell 5, before cell 6: nothing' in message
    assert 'book/demo/demo_pytorch.ipynb after cell 6, before cell 8: 1 code cell (cell 7)' in message


def test_a_framework_note_alone_where_others_have_code_is_fine():
    notebooks = demo_chapter.notebooks()
    cells = notebooks['mxnet'].cells
    training = next(i for i, c in enumerate(cells) if c.cell_type == 'code' and 'trainer.fit' in c.source)
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
    assert 'book/demo/demo_pytorch.ipynb cell 4' in str(error.value)
    assert 'In PyTorch a model is an `nn.Module`.' in str(error.value)


def test_raw_cells_are_refused_by_name():
    notebooks = demo_chapter.notebooks()
    notebooks['jax'].cells.insert(5, nbformat.v4.new_raw_cell('raw text'))
    with pytest.raises(merge.MergeError, match=r'book/demo/demo_jax.ipynb cell 5: raw cells'):
        merged(notebooks)


# --- run records and the run-it-yourself table -----------------------------------------------------

def test_run_records_are_found_in_the_outputs():
    assert runs.records(demo_chapter.notebook('tensorflow')) == [demo_chapter.record('tensorflow')]
    assert runs.records(demo_chapter.notebook('jax', with_outputs=False)) == []
    # two runs in one notebook, one of them in an output that also has a plain-text fallback
    nb = demo_chapter.notebook('jax')
    nb.cells[1].outputs = [nbformat.from_dict({'output_type': 'display_data', 'metadata': {},
                                               'data': {runs.MIME: {'run': 0}, 'text/plain': 'x'}})]
    assert runs.records(nb) == [{'run': 0}, demo_chapter.record('jax')]


def table(records_of, shown_of=lambda fw: None):
    return showing.run_table([(fw, f'https://colab.example/{fw.id}.ipynb', f'demo_{fw.id}.ipynb',
                                 records_of(fw.id), shown_of(fw.id)) for fw in FRAMEWORKS])


def test_run_table_lists_links_and_budget_and_device_per_framework():
    text = table(lambda fw: [] if fw == 'mxnet' else [demo_chapter.record(fw)])
    for fw in IDS:
        assert f'[Open in Colab](https://colab.example/{fw}.ipynb)' in text
        assert f'{{download}}`Download notebook <demo_{fw}.ipynb>`' in text
    rows = text.split('\n* - ')[2:]
    assert [r.split('\n')[0] for r in rows] == [fw.label for fw in FRAMEWORKS]
    for row in rows[:3]:
        assert row.endswith('**smoke** budget on **cpu** (D2LMINI\\_BUDGET=smoke)')
    assert 'no training in this notebook' in rows[3]
    assert '{ref}`needs an older Python <run-in-colab>`' in rows[3]
    assert 'Smoke-test outputs' in text
    assert 'at most 2 epochs of 2 training and 1 validation batches' in text


def test_run_table_names_a_gpu_and_has_no_smoke_warning_for_full_runs():
    full = lambda fw: [demo_chapter.record(fw, 'cuda:0 (NVIDIA H200)', 'full', 'D2LMINI_BUDGET=auto and a GPU was found')]
    text = table(full)
    assert 'Smoke-test' not in text
    assert '**full** budget on **cuda:0 (NVIDIA H200)** (D2LMINI\\_BUDGET=auto and a GPU was found)' in text


def test_run_table_says_when_a_run_did_not_finish():
    stopped = dict(demo_chapter.record('jax'), status='interrupted', epochs_run=1)
    text = table(lambda fw: [stopped] if fw == 'jax' else [])
    assert '(D2LMINI\\_BUDGET=smoke), interrupted after 1 of 3 epochs' in text


def test_run_table_names_the_reference_runs_shown_and_warns_of_stale_ones():
    full = lambda fw: [demo_chapter.record(fw, budget='full', reason='D2LMINI_BUDGET=full')]
    described = lambda fw, current=None: kept_runs.Reference(
        'demo', fw, *demo_chapter.reference_run(fw, [2.3] * 10, [0.1] * 10),
        current=fw != 'jax' if current is None else current)
    text = table(full, described)
    rows = text.split('\n* - ')[2:]
    shown = ('reference run: full budget, 10 epochs on CPU (Some CPU 9000, 2 cores), 1 h 02 min '
             'in one go')
    assert rows[0].endswith(f'{shown}, 2026-11-29, commit 0123456789ab')
    assert rows[2].endswith(f'{shown}, 2026-11-29, commit 0123456789ab '
                            '(**produced by an earlier version of this code**)')
    assert 'Smoke-test' not in text
    assert 'framework-stale-warning' in text and 'shown for JAX come from' in text

    current = table(full, lambda fw: described(fw, current=True))
    assert 'warning' not in current, 'every framework shows a current reference run'
    # a framework without a reference run still shows its smoke run, and says so
    mixed = table(lambda fw: [demo_chapter.record(fw)] if fw == 'mxnet' else full(fw),
                  lambda fw: None if fw == 'mxnet' else described(fw, current=True))
    assert 'Smoke-test outputs' in mixed and 'framework-stale-warning' not in mixed


def test_run_table_names_the_named_runs_shown_and_which_are_stale():
    full = lambda fw: [demo_chapter.record(fw, budget='full', reason='D2LMINI_BUDGET=full')] * 2
    def named(fw):
        return [kept_runs.Reference('demo', fw, *demo_chapter.reference_run(fw, [2.3] * 2, [0.1] * 2),
                                    current=not (fw == 'jax' and run == 'bn'), run=run)
                for run in ('bn', 'v3')]
    rows = table(full, named).split('\n* - ')[2:]
    shown = ('reference runs (bn, v3): full budget, 2 epochs on CPU (Some CPU 9000, 2 cores), '
             '1 h 02 min in one go, 2026-11-29, commit 0123456789ab')
    assert rows[0].endswith(shown)
    assert rows[2].endswith(f'{shown} (**bn produced by an earlier version of this code**)')
    assert 'shown for JAX come from' in table(full, named)


def test_a_reference_label_says_from_the_record_whether_the_run_was_resumed():
    """Provenance per framework, from its record (`reference.parts`), not in shared prose."""
    def label(parts):
        rec, nb = demo_chapter.reference_run('jax', [2.3] * 2, [0.1] * 2)
        if parts is not None:
            rec['reference']['parts'] = parts
        return showing.describe(kept_runs.Reference('demo', 'jax', rec, nb, current=True))
    assert ', 1 h 02 min in one go, 2026-11-29' in label(None)
    assert ', 1 h 02 min in one go, 2026-11-29' in label(1)
    assert '1 h 02 min in 2 parts (resumed from a checkpoint once), 2026' in label(2)
    assert '1 h 02 min in 3 parts (resumed from a checkpoint 2 times), 2026' in label(3)


def test_notes_only_for_a_notebook_read_alone_are_left_out_of_the_page():
    notebooks = {fw: demo_chapter.notebook(fw) for fw in IDS}
    for fw, nb in notebooks.items():
        nb.cells.insert(1, nbformat.v4.new_markdown_cell(
            f'This notebook is the {fw} version.', metadata={'tags': ['framework-note', 'notebook-only']}))
    page = merge.merge(notebooks, {fw: f'demo_{fw}.ipynb' for fw in IDS})
    assert not any('version.' in c.source for c in page.cells)
    assert [c.source for c in page.cells] == [c.source for c in merged().cells]
    assert len(notebooks['jax'].cells[1].source) > 0, 'the notebooks themselves keep it'
