"""`make reference` (book/tools/reference.py): a chapter notebook run with the full budget and
checkpoints, resumed after an interruption, and kept with its record in the chapter's folder;
then read back (kept_runs.py), shown (showing.py) and quoted (run_numbers.py)."""
import json
import math
import os
import re
import signal
import time

import nbformat
import pytest

from book.tools import chapters, execute, figures, kept_runs, reference, run_numbers, runs, showing
from fixtures import demo_chapter
from d2lmini import checkpoint
from d2lmini import notebook as notebook_outputs

CODE = '''from torch import nn
from d2lmini import torch as d2l


class MLP(d2l.Classifier):
    def __init__(self, lr=0.1):
        super().__init__()
        self.save_hyperparameters()
        self.net = nn.Sequential(nn.Flatten(), nn.LazyLinear(16), nn.ReLU(), nn.LazyLinear(10))


d2l.set_seed(0)
data = d2l.FashionMNIST(batch_size=64).take(train_examples=640, val_examples=128)
model = MLP()
model.apply_init([next(iter(data.get_dataloader(True)))[0]], d2l.init_cnn)
trainer = d2l.Trainer(max_epochs={epochs})
trainer.fit(model, data)'''


def write_notebook(path, epochs):
    nb = nbformat.v4.new_notebook()
    nb.metadata['kernelspec'] = {'name': 'd2lmini-pytorch', 'display_name': 'd2lmini (PyTorch)',
                                 'language': 'python'}
    nb.cells = [nbformat.v4.new_markdown_cell('# Tiny'),
                nbformat.v4.new_code_cell(CODE.format(epochs=epochs), metadata={'tags': ['train']})]
    nbformat.write(nb, str(path))


@pytest.fixture
def tiny_source(tmp_path, monkeypatch):
    """Where the tests' one-chapter book keeps its PyTorch notebook (book/tiny/ under tmp_path),
    with no checkpoint folder set from outside."""
    monkeypatch.delenv('D2LMINI_CHECKPOINT_DIR', raising=False)
    folder = tmp_path / 'book' / 'tiny'
    folder.mkdir(parents=True)
    return folder / 'tiny_pytorch.ipynb'


def test_a_reference_run_resumes_and_keeps_its_record(tiny_source, tmp_path, capsys):
    source = tiny_source
    folder = source.parent
    write_notebook(source, epochs=1)        # a run that stops after epoch 1 ...
    reference.run('tiny', 'pytorch', root=tmp_path)
    write_notebook(source, epochs=3)        # ... and is asked for 3: it resumes at epoch 2
    path = reference.run('tiny', 'pytorch', root=tmp_path)[None]
    log = capsys.readouterr().out
    assert 'tiny/pytorch epoch 3/3: train loss' in log
    record = json.loads(path.read_text())
    assert record['status'] == 'finished' and record['budget']['name'] == 'full'
    assert [row['epoch'] for row in record['history']] == [1, 2, 3]
    assert record['resumed_from']['epoch'] == 1
    assert record['reference']['code_hash'] == chapters.code_hash(source)
    # epoch 1 belongs to a run that finished on its own: this record's times leave it out
    assert record['reference']['parts'] == 1 and record['reference']['all_parts_recorded'] is False
    kept = nbformat.read(str(folder / 'reference' / 'tiny_pytorch.ipynb'), as_version=4)
    assert runs.records(kept)[0]['history'] == record['history']
    text = json.dumps(kept.cells[-1].outputs)
    assert 'Resuming from the checkpoint ../../_build/reference/tiny/pytorch' in text
    assert str(tmp_path) not in text, 'the kept outputs must not show local paths'
    assert 'D2LMINI_CHECKPOINT_DIR' not in os.environ, 'the settings leaked into this process'
    # the source notebook now carries the run's outputs, after a label saying what they are
    cell = showing.train_cell(nbformat.read(str(source), as_version=4), 'source')
    assert showing.is_label(cell.outputs[0])
    assert 'Outputs of the reference run' in cell.outputs[0]['data']['text/plain']
    shown, record = runs.records(nbformat.from_dict({'cells': [cell]}))[0], runs.records(kept)[0]
    assert shown['resumed_from']['checkpoint'] == 'epoch-0001-step-00000'   # not the build's path
    assert {**shown, 'resumed_from': record['resumed_from']} == record
    refs = kept_runs.load_all('tiny', root=tmp_path)
    assert showing.show_in_sources('tiny', refs, root=tmp_path, write=False) == []


def test_a_run_resumed_in_another_process_adds_up_its_parts(tiny_source, tmp_path):
    """Time and load of a process that was cut off count in the record of the run it began."""
    source = tiny_source
    write_notebook(source, epochs=1)
    directory = reference.checkpoint_dir('tiny', 'pytorch', root=tmp_path)
    directory.mkdir(parents=True)
    cut = dict(started_at='2026-01-01T00:00:00+00:00', code_hash=chapters.code_hash(source),
               git_commit=None, execution_s=1000.0, max_load_average=7.5, other_cpu_s=100.0,
               resumed_from=None, reached=None)     # cut off before its first checkpoint
    (directory / 'reference-parts.json').write_text(json.dumps([cut]))
    path = reference.run('tiny', 'pytorch', root=tmp_path)[None]
    record = json.loads(path.read_text())['reference']
    assert record['parts'] == 2 and record['started_at'] == cut['started_at']
    assert record['other_cpu_s'] >= 100
    assert record['other_cpu_share'] == round(
        record['other_cpu_s'] / (record['execution_s'] * os.cpu_count()), 4)
    assert record['execution_s'] > 1000 and record['max_load_average'] == 7.5
    assert record['all_parts_recorded'] is True

    write_notebook(source, epochs=2)        # a cut-off part of other code is not added up:
    (directory / 'reference-parts.json').write_text(json.dumps([cut]))   # the run starts afresh
    path = reference.run('tiny', 'pytorch', root=tmp_path)[None]
    record = json.loads(path.read_text())['reference']
    assert record['parts'] == 1 and record['started_at'] != cut['started_at']


def test_a_part_is_noted_while_it_runs_and_a_lost_one_is_told(tiny_source, tmp_path, monkeypatch):
    """A process killed without warning keeps its part (noted every POLL_S seconds); when a
    part was lost all the same, the record says its times do not cover the whole run."""
    write_notebook(tiny_source, epochs=1)
    directory = reference.checkpoint_dir('tiny', 'pytorch', root=tmp_path)
    parts_path = directory / 'reference-parts.json'
    monkeypatch.setattr(reference, 'POLL_S', 0.05)
    seen = []

    def killed(*args, **kwargs):            # a kernel that is still training when it is noted
        deadline = time.time() + 10
        while not parts_path.exists() and time.time() < deadline:
            time.sleep(0.05)
        seen.extend(json.loads(parts_path.read_text()))
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(reference.execute, 'execute', killed)
        with pytest.raises(KeyboardInterrupt):
            reference.run('tiny', 'pytorch', root=tmp_path)
    assert len(seen) == 1 and seen[0]['finished'] is False and seen[0]['resumed_from'] is None
    assert 'execution_s' in seen[0] and 'other_cpu_s' in seen[0]

    # parts that account for every checkpoint, or not
    assert reference.parts_account_for_every_checkpoint([]) is True
    assert reference.parts_account_for_every_checkpoint(
        [dict(resumed_from=None, reached='epoch-0001-step-00000'),
         dict(resumed_from='epoch-0001-step-00000', reached='epoch-0002-step-00000')]) is True
    assert reference.parts_account_for_every_checkpoint(
        [dict(resumed_from=None, reached='epoch-0001-step-00000'),
         dict(resumed_from='epoch-0002-step-00000', reached='epoch-0003-step-00000')]) is False
    assert reference.parts_account_for_every_checkpoint([dict(started_at='a part kept before '
                                                              'parts said where they began')]) is False


def test_a_stopped_run_says_what_was_kept_and_how_to_resume(monkeypatch, capsys):
    """SIGTERM (or Ctrl-C) ends `make reference` with a message, not nbclient's traceback."""
    def interrupted(chapter, framework, runs=None):
        os.kill(os.getpid(), signal.SIGTERM)
        try:
            time.sleep(10)
        except KeyboardInterrupt:
            raise AssertionError('nbclient cleaning up') from None     # as it does
        raise AssertionError('SIGTERM did not stop the run')

    monkeypatch.setattr(reference, 'run', interrupted)
    before = signal.getsignal(signal.SIGTERM)
    assert reference.main(['--chapter', 'googlenet', '--frameworks', 'jax']) == 128 + signal.SIGTERM
    message = capsys.readouterr().err
    assert 'googlenet/jax was stopped by SIGTERM' in message
    assert '_build/reference/googlenet/jax/: run the same command to resume' in message
    assert signal.getsignal(signal.SIGTERM) is before, 'the handler outlived the command'

    def stopped_while_executing(chapter, framework, runs=None):
        raise execute.Stopped(signal.SIGINT)    # as execute raises it: the handler above never ran

    monkeypatch.setattr(reference, 'run', stopped_while_executing)
    assert reference.main(['--chapter', 'googlenet', '--frameworks', 'tensorflow']) == 128 + signal.SIGINT
    assert 'googlenet/tensorflow was stopped by SIGINT' in capsys.readouterr().err

    def failing(chapter, framework, runs=None):     # a failure with no signal is not hidden
        raise AssertionError('a real failure')

    monkeypatch.setattr(reference, 'run', failing)
    with pytest.raises(AssertionError, match='a real failure'):
        reference.main(['--chapter', 'googlenet', '--frameworks', 'jax'])


# --- showing reference runs ---------------------------------------------------------------------

# what GoogLeNet's chapter.yml says: Fashion-MNIST's 10 classes, gaps after epochs 1, 5 and 10
FACTS = run_numbers.Facts(classes=10, near_chance=0.05, gap_epochs=(1, 5, 10))


def made_up(fw, losses, accuracies, current=True, seconds=3720):
    return kept_runs.Reference('demo', fw, *demo_chapter.reference_run(fw, losses, accuracies,
                                                                        seconds), current)


@pytest.mark.parametrize('current', [True, False])
def test_a_training_cell_shows_the_reference_outputs_after_their_label(current):
    ref = made_up('tensorflow', [2.3, 1.0], [0.1, 0.6], current=current)
    nb = showing.show(demo_chapter.notebook('tensorflow'), ref, 'demo_tensorflow.ipynb')
    label, *outputs = showing.train_cell(nb, 'demo').outputs
    assert outputs == showing.train_cell(ref.notebook, 'ref').outputs
    text = label['data']['text/plain']
    assert ('full budget, 2 epochs on CPU (Some CPU 9000, 2 cores), 1 h 02 min in one go, 2026-11-29, '
            'commit 0123456789ab') in text
    assert ('produced by an earlier version of this code' in text) is not current
    assert ('produced by an earlier version of this code' in label['data']['text/html']) is not current
    # shown again (a second build, or --show-only twice): still one label
    again = showing.show(nb, ref, 'demo_tensorflow.ipynb')
    assert showing.train_cell(again, 'demo').outputs == [label, *outputs]


def test_a_notebook_without_one_training_cell_is_refused_by_name():
    nb = demo_chapter.notebook('jax')
    showing.train_cell(nb, 'x').metadata['tags'] = []
    with pytest.raises(kept_runs.ReferenceRunError, match="demo_jax.ipynb: no code cell tagged "
                                                          "'train' trains the run without a name"):
        showing.show(nb, made_up('jax', [2.3], [0.1]), 'demo_jax.ipynb')


def test_training_cells_must_each_train_a_run_of_their_own():
    nb = demo_chapter.notebook('jax')
    twin = nbformat.from_dict(dict(showing.train_cell(nb, 'x')))
    nb.cells.append(twin)
    with pytest.raises(kept_runs.ReferenceRunError, match="two code cells tagged 'train' train "
                                                          "the run without a name"):
        showing.train_cells(nb, 'demo_jax.ipynb')
    twin.metadata['tags'] = ['train', 'run-with-bn']
    assert list(showing.train_cells(nb, 'demo_jax.ipynb')) == [None, 'with-bn']
    assert showing.train_cell(nb, 'x', 'with-bn') is twin
    twin.metadata['tags'] = ['train', 'run-With_BN']
    with pytest.raises(kept_runs.ReferenceRunError, match='names its run with other characters'):
        showing.train_cells(nb, 'demo_jax.ipynb')


def write_two_runs(path, epochs_b):
    """A notebook with two named training cells: run 'a' (1 epoch) and run 'b'."""
    nb = nbformat.v4.new_notebook()
    nb.metadata['kernelspec'] = {'name': 'd2lmini-pytorch', 'display_name': 'd2lmini (PyTorch)',
                                 'language': 'python'}
    first = CODE.format(epochs=1)
    second = CODE.format(epochs=epochs_b).replace('MLP()', 'MLP(lr=0.2)')
    nb.cells = [nbformat.v4.new_markdown_cell('# Two runs'),
                nbformat.v4.new_code_cell(first, metadata={'tags': ['train', 'run-a']}),
                nbformat.v4.new_code_cell(second, metadata={'tags': ['train', 'run-b']})]
    nbformat.write(nb, str(path))


def test_a_notebook_of_named_runs_keeps_a_record_per_run_and_resumes_each(tiny_source, tmp_path,
                                                                           capsys):
    source = tiny_source
    write_two_runs(source, epochs_b=1)
    reference.run('tiny', 'pytorch', root=tmp_path)
    write_two_runs(source, epochs_b=2)          # run b is asked for one more epoch
    paths = reference.run('tiny', 'pytorch', root=tmp_path)
    assert {run: path.name for run, path in paths.items()} == {'a': 'pytorch.a.json',
                                                               'b': 'pytorch.b.json'}
    a, b = (json.loads(paths[run].read_text()) for run in 'ab')
    assert len(a['history']) == 1 and len(b['history']) == 2
    assert a['reference']['run'] == 'a' and b['reference']['run'] == 'b'
    assert b['resumed_from']['epoch'] == 1      # b went on from its own checkpoint ...
    assert a['resumed_from']['epoch'] == 1      # ... and a, finished, was read back from its own
    assert a['history'][0]['train_loss'] != b['history'][0]['train_loss']   # two runs, not one
    log = capsys.readouterr().out
    # each run's epochs in the log, named by its folder, though both ran between two polls
    folders = {path.name for path in checkpoint.run_folders(reference.checkpoint_dir('tiny', 'pytorch', tmp_path))}
    assert len(folders) == 2
    for folder in folders:
        assert f'tiny/pytorch {folder} epoch 1/' in log
    assert re.search(r'tiny/pytorch \S+ epoch 2/2: train loss', log)
    named = kept_runs.load_named('tiny', root=tmp_path)
    assert list(named) == ['a', 'b'] and named['b']['pytorch'].record == b
    assert named['a']['pytorch'].current and named['a']['pytorch'].name == 'tiny/pytorch/a'
    assert kept_runs.load_all('tiny', root=tmp_path) == {}      # no unnamed run here
    # each training cell of the source notebook shows its own run's outputs, labelled
    nb = nbformat.read(str(source), as_version=4)
    for run, record in (('a', a), ('b', b)):
        cell = showing.train_cell(nb, 'source', run)
        assert showing.is_label(cell.outputs[0])
        shown = runs.records(nbformat.from_dict({'cells': [cell]}))[0]
        assert shown['history'] == record['history']


def test_named_runs_can_be_made_a_few_at_a_time(tiny_source, tmp_path):
    """RUNS=: the runs not chosen are not trained, and keep what the kept notebook shows of
    them; a name no training cell trains is refused before any work."""
    source = tiny_source
    write_two_runs(source, epochs_b=1)
    with pytest.raises(kept_runs.ReferenceRunError, match='trains no run named c; its named '
                                                          'runs: a, b'):
        reference.run('tiny', 'pytorch', root=tmp_path, runs=['c'])
    paths = reference.run('tiny', 'pytorch', root=tmp_path, runs=['b'])
    assert list(paths) == ['b'] and not kept_runs.record_path('tiny', 'pytorch', 'a', tmp_path).exists()
    kept_path = source.parent / 'reference' / source.name
    kept = nbformat.read(str(kept_path), as_version=4)
    assert showing.train_cell(kept, 'kept', 'a').outputs == []          # not run
    b_outputs = showing.train_cell(kept, 'kept', 'b').outputs
    assert b_outputs and 'skip-execution' not in str(kept)
    paths = reference.run('tiny', 'pytorch', root=tmp_path, runs=['a'])
    assert list(paths) == ['a']
    kept = nbformat.read(str(kept_path), as_version=4)
    assert showing.train_cell(kept, 'kept', 'b').outputs == b_outputs     # kept from before
    assert runs.records(nbformat.from_dict({'cells': [showing.train_cell(kept, 'kept', 'a')]}))
    part = json.loads(kept_runs.record_path('tiny', 'pytorch', 'a', tmp_path).read_text())
    assert part['reference']['run'] == 'a'


def test_a_stale_reference_is_found_by_its_code_hash(tmp_path):
    folder = tmp_path / 'book' / 'demo'
    (folder / 'reference').mkdir(parents=True)
    source = folder / 'demo_mxnet.ipynb'
    nbformat.write(demo_chapter.notebook('mxnet'), str(source))
    ref = made_up('mxnet', [2.3], [0.1])
    ref.record['reference']['code_hash'] = chapters.code_hash(source)
    nbformat.write(ref.notebook, str(folder / 'reference' / source.name))
    (folder / 'reference' / 'mxnet.json').write_text(json.dumps(ref.record))
    assert kept_runs.load('demo', 'mxnet', root=tmp_path).current
    assert kept_runs.load('demo', 'pytorch', root=tmp_path) is None
    nb = nbformat.read(str(source), as_version=4)
    nb.cells[2].source += '\n# one more comment'         # the code changes: the run is stale
    nbformat.write(nb, str(source))
    assert not kept_runs.load('demo', 'mxnet', root=tmp_path).current
    (folder / 'reference' / 'mxnet.json').write_text('{')
    with pytest.raises(kept_runs.ReferenceRunError, match='mxnet.json .*make reference'):
        kept_runs.load('demo', 'mxnet', root=tmp_path)


def test_quotes_come_from_the_records():
    ln10 = math.log(10)
    refs = {'pytorch': made_up('pytorch', [ln10 + 0.01, ln10 - 0.02, 1.2, 0.5, 0.4],
                               [0.10, 0.12, 0.55, 0.80, 0.86]),
            'jax': made_up('jax', [ln10, 1.9, 1.0, 0.6, 0.45], [0.10, 0.30, 0.62, 0.78, 0.84],
                           seconds=7000)}
    values = run_numbers.quotes(refs, FACTS)
    assert {key: values[f'pytorch.{key}'] for key in (
        'val_acc', 'val_loss', 'train_loss', 'epochs', 'minutes', 'examples_per_s',
        'plateau_epochs', 'label')} == dict(
        val_acc='0.860', val_loss='0.400', train_loss='0.400', epochs='5', minutes='62',
        examples_per_s='102', plateau_epochs='2', label='PyTorch')
    assert values['jax.plateau_epochs'] == '1' and values['jax.minutes'] == '117'
    assert values['tensorflow.val_acc'] == run_numbers.MISSING and values['count'] == '2'
    assert values['val_acc_range'] == '0.840–0.860' and values['plateau_range'] == '1–2'
    assert (values['gap.e1.train_loss'], values['gap.e1.val_acc']) == ('0.0100', '0.0000')
    assert (values['gap.e5.train_loss'], values['gap.e5.val_acc']) == ('0.0500', '0.0200')
    assert values['gap.e10.train_loss'] == values['gap.e10.val_acc'] == run_numbers.MISSING
    assert (values['gap.max.train_loss'], values['gap.max.train_loss_epoch']) == ('0.3826', '2')
    assert (values['gap.max.val_acc'], values['gap.max.val_acc_epoch']) == ('0.1800', '2')
    assert values['minutes_range'] == '62–117'
    tiny = {'a': made_up('jax', [2.0], [0.5]), 'b': made_up('jax', [2.00002], [0.5])}
    assert run_numbers.quotes(tiny, FACTS)['gap.e1.train_loss'] == 'below 0.0001', 'a false zero'
    assert run_numbers.quotes(tiny, FACTS)['gap.e1.val_acc'] == '0.0000'
    rows = values['table'].splitlines()
    assert rows[0].startswith('| framework | epochs | train loss | val loss | val acc |')
    assert rows[1].startswith('| :-- | --: |')
    assert rows[2] == '| PyTorch | 5 | 0.400 | 0.400 | 0.860 | 62 | 102 | 2 |'
    assert rows[3].startswith(f'| TensorFlow | {run_numbers.MISSING} |') and len(rows) == 6


def test_a_chapter_says_what_its_runs_are_read_against(tmp_path):
    """Chance and the quoted gap epochs come from chapter.yml; a chapter that declares none
    gets every number but those (quoting one of them is refused by name)."""
    assert run_numbers.Facts.of('googlenet') == FACTS
    assert FACTS.chance_loss == math.log(10)
    folder = tmp_path / 'book' / 'demo'
    folder.mkdir(parents=True)
    assert run_numbers.Facts.of('demo', root=tmp_path) == run_numbers.Facts()
    refs = {'pytorch': made_up('pytorch', [2.3, 1.0], [0.1, 0.7]),
            'jax': made_up('jax', [2.3, 1.1], [0.1, 0.6])}
    values = run_numbers.quotes(refs, run_numbers.Facts())
    assert 'pytorch.plateau_epochs' not in values and 'plateau_range' not in values
    assert not [key for key in values if key.startswith('gap.e')]
    assert values['gap.max.val_acc'] == '0.1000' and values['pytorch.val_acc'] == '0.700'
    assert 'ln 10' not in values['table'] and values['table'].count('|') == 6 * 8
    with pytest.raises(showing.QuoteError, match='"pytorch.plateau_epochs"'):
        showing.quote('<span data-reference="pytorch.plateau_epochs"></span>', values)
    (folder / 'chapter.yml').write_text('reference:\n  classes: 10\n  gap_epochs: [2]\n')
    with pytest.raises(chapters.ChapterError, match='classes and near_chance go together'):
        run_numbers.Facts.of('demo', root=tmp_path)
    (folder / 'chapter.yml').write_text('reference:\n  chance: 2.3\n')
    with pytest.raises(chapters.ChapterError, match='unknown keys chance'):
        run_numbers.Facts.of('demo', root=tmp_path)


def test_quote_fills_the_marked_places_and_refuses_unknown_keys():
    values = {'gap.e1.val_acc': '0.0035', 'val_acc_range': '0.84–0.85',
              'table': '| a | b |\n| --: | --: |\n| 1 | 2 |\n'}
    text = ('The gap was <span data-reference="gap.e1.val_acc"></span> and the accuracies '
            '<span data-reference="val_acc_range">0.1–0.2</span>.\n\n'
            '<!-- reference: table -->\n<!-- end reference: table -->\n\nAfter.')
    quoted = showing.quote(text, values)
    assert quoted == ('The gap was <span data-reference="gap.e1.val_acc">0.0035</span> and the '
                      'accuracies <span data-reference="val_acc_range">0.84–0.85</span>.\n\n'
                      '<!-- reference: table -->\n\n| a | b |\n| --: | --: |\n| 1 | 2 |\n\n'
                      '<!-- end reference: table -->\n\nAfter.')
    assert showing.quote(quoted, values) == quoted, 'quoting twice changed the text'
    assert showing.quote('no marks here', values) == 'no marks here'
    with pytest.raises(showing.QuoteError, match='x.ipynb, cell 3: .*"gap.e7.val_acc".*val_acc_range'):
        showing.quote('<span data-reference="gap.e7.val_acc"></span>', values, 'x.ipynb, cell 3')


def test_what_the_googlenet_prose_says_of_the_gaps_holds_for_its_runs():
    """The prose reads the quoted gaps: the runs are furthest apart where the loss leaves its
    plateau (the epoch or two after it) and close up again by epochs 5 and 10."""
    refs = kept_runs.load_all('googlenet')
    if len(refs) < 2:
        pytest.skip('fewer than two reference runs: no gaps to read')
    facts = run_numbers.Facts.of('googlenet')
    plateau = max(run_numbers.plateau_epochs(ref.record['history'], facts) for ref in refs.values())
    for field in ('train_loss', 'val_acc'):
        largest, epoch = run_numbers.largest_gap(refs, field)
        assert epoch in (plateau + 1, plateau + 2), f'{field}: largest gap after epoch {epoch}'
        assert run_numbers.gap(refs, 5, field) < largest and run_numbers.gap(refs, 10, field) < largest
    assert run_numbers.gap(refs, 1, 'train_loss') < run_numbers.gap(refs, 1, 'val_acc'), (
        'the prose says accuracy differs more than the loss after epoch 1')


def test_the_comparison_figure_draws_every_framework(tmp_path):
    refs = {fw: made_up(fw, [2.3, 1.0], [0.1, 0.7]) for fw in ('tensorflow', 'mxnet')}
    path = run_numbers.draw(refs, tmp_path / 'curves.svg', FACTS)
    svg = path.read_text()
    assert 'TensorFlow' in svg and 'MXNet' in svg and 'PyTorch' not in svg
    assert 'ln 10 (chance)' in svg
    assert run_numbers.draw(refs, tmp_path / 'again.svg', FACTS).read_text() == svg, 'not reproducible'
    # a chapter that declares no classes has no chance line
    assert 'chance' not in run_numbers.draw(refs, tmp_path / 'plain.svg', run_numbers.Facts()).read_text()


@pytest.mark.parametrize('chapter', chapters.chapters())
def test_source_notebooks_are_in_step_with_the_reference_runs(chapter):
    """On GitHub or in Colab a chapter notebook shows its reference run, and the prose quotes its
    numbers as the records give them, before anything runs (MyST's {{ ... }} would show raw)."""
    refs = kept_runs.load_all(chapter)
    for behind, what in ((showing.show_in_sources(chapter, refs, write=False),
                          'the training cell does not show the reference run (labelled as it is now)'),
                         (showing.quote_in_sources(chapter, refs, write=False),
                          'the prose does not quote the reference runs as their records are now')):
        assert not behind, (f'{", ".join(p.name for p in behind)}: {what}; run `python -m '
                            'book.tools.reference --show-only`')
    for path in chapters.notebooks(chapter).values():
        prose = [c.source for c in nbformat.read(str(path), as_version=4).cells if c.cell_type == 'markdown']
        assert not any('{{' in text for text in prose), f'{path.name}: {{{{ ... }}}} shows raw in Colab'


def test_the_watcher_tells_this_runs_cpu_time_from_other_processes(tmp_path, monkeypatch):
    """The record's other_cpu_s: the machine's busy time less this process's and its children's."""
    import subprocess
    import sys
    watcher = reference.Watcher(tmp_path, 'test')
    # a child that has ended (as the kernel at the end of a run): its time is this run's own
    work = subprocess.run([sys.executable, '-c', 'import time; t = time.process_time()\n'
                           'while time.process_time() - t < 0.5: pass'])
    assert work.returncode == 0 and watcher.own_delta() >= 0.5
    assert watcher.own_delta() < 0.1, 'counted twice'
    # the machine busy for 10 s, 3 of them this run's: 7 s someone else's
    monkeypatch.setattr(watcher, 'machine_busy', lambda: watcher.busy + 10.0)
    monkeypatch.setattr(watcher, 'own_delta', lambda: 3.0)
    before = watcher.other_cpu_s
    watcher.measure()
    assert watcher.other_cpu_s - before == 7.0


def test_the_commit_is_dirty_only_when_the_code_that_runs_differs(tmp_path):
    import subprocess
    git = lambda *args: subprocess.run(['git', '-c', 'user.name=t', '-c', 'user.email=t@t', *args],
                                       cwd=tmp_path, check=True, capture_output=True)
    source = tmp_path / 'book' / 'tiny' / 'tiny_pytorch.ipynb'
    source.parent.mkdir(parents=True)
    write_notebook(source, epochs=1)
    (tmp_path / 'd2lmini').mkdir()
    (tmp_path / 'd2lmini' / 'x.py').write_text('x = 1\n')
    git('init', '-q')
    git('add', '.')
    git('commit', '-qm', 'start')
    commit = reference.git_commit(source, tmp_path)
    assert len(commit) == 40
    nb = nbformat.read(str(source), as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output('stream', text='another run\n')]
    nbformat.write(nb, str(source))
    assert reference.git_commit(source, tmp_path) == commit, 'outputs are not code'
    write_notebook(source, epochs=2)
    assert reference.git_commit(source, tmp_path) == commit + '-dirty'
    write_notebook(source, epochs=1)
    (tmp_path / 'd2lmini' / 'x.py').write_text('x = 2\n')
    assert reference.git_commit(source, tmp_path) == commit + '-dirty'


@pytest.mark.parametrize('chapter', chapters.chapters())
def test_the_comparison_figure_is_the_one_the_records_draw(chapter, tmp_path):
    refs = kept_runs.load_all(chapter)
    if not refs:
        pytest.skip(f'{chapter} has no reference run')
    drawn = run_numbers.draw(refs, tmp_path / run_numbers.FIGURE,
                             run_numbers.Facts.of(chapter)).read_bytes()
    assert run_numbers.figure_path(chapter).read_bytes() == drawn, (
        'the comparison figure is not drawn from the records as they are: run '
        '`python -m book.tools.reference --show-only`')
    for path in chapters.notebooks(chapter).values():
        png = figures.url(chapter, run_numbers.FIGURE.removesuffix('.svg'))
        assert f']({png})' in path.read_text(), f'{path.name} does not show it'


def test_the_shown_outputs_hold_nothing_of_the_build_machine():
    """Checkpoint notices (marked by d2lmini) go; epoch lines come from the record, without the
    marks of a resume; the run record names its checkpoint without the build's path; the install
    cell's "installed already" goes (it is true of the build machine only)."""
    ref = made_up('tensorflow', [2.3, 1.0], [0.1, 0.6])
    kept = showing.train_cell(ref.notebook, 'ref')
    mark = lambda kind: {notebook_outputs.OUTPUT_KEY: kind}
    ref.record['resumed_from'] = dict(checkpoint='../../_build/reference/demo/x/epoch-0001-step-00002',
                                      epoch=1, step=2)
    kept.outputs = [
        nbformat.v4.new_output('display_data', data={'text/plain': 'Resuming from ../../_build/x'},
                               metadata=mark(notebook_outputs.CHECKPOINT_NOTICE)),
        nbformat.v4.new_output('display_data', data={'text/plain': 'epoch 1/2: ... (from the checkpoint)'},
                               metadata=mark(notebook_outputs.EPOCH_LINES)),
        nbformat.v4.new_output('display_data', data={runs.MIME: ref.record, 'text/plain': ''})]
    nb = demo_chapter.notebook('tensorflow')
    install = nbformat.v4.new_code_cell('pass', outputs=[nbformat.v4.new_output(
        'stream', text='d2lmini is installed already\n')], metadata={'tags': ['colab-install']})
    nb.cells.insert(0, install)
    showing.show(nb, ref, 'demo_tensorflow.ipynb')
    label, lines, run = showing.train_cell(nb, 'demo').outputs
    assert lines.data['text/plain'] == (
        'epoch 1/2: train loss 2.3000, val loss 2.3000, val acc 0.100, 100.0 examples/s on cpu\n'
        'epoch 2/2: train loss 1.0000, val loss 1.0000, val acc 0.600, 101.0 examples/s on cpu')
    assert run.data[runs.MIME]['resumed_from']['checkpoint'] == 'epoch-0001-step-00002'
    assert ref.record['resumed_from']['checkpoint'].startswith('../../_build'), 'the record is kept'
    assert nb.cells[0].outputs == [] and '_build' not in nbformat.writes(nb)


@pytest.mark.parametrize('chapter', chapters.chapters())
def test_no_saved_output_holds_build_paths_or_build_machine_text(chapter):
    for path in chapters.notebooks(chapter).values():
        nb = nbformat.read(str(path), as_version=4)
        for index, cell in enumerate(c for c in nb.cells if c.cell_type == 'code'):
            text = json.dumps(cell.get('outputs', []))
            for clue in ('_build', 'from the checkpoint', 'installed already', '127.0.0.1'):
                assert clue not in text, f'{path.name}, code cell {index}: an output holds {clue!r}'
            if showing.INSTALL_TAG in cell.metadata.get('tags', []):
                assert not cell.outputs, f'{path.name}: the install cell keeps an output'


def test_an_interrupted_reference_run_of_other_code_starts_afresh(tiny_source, tmp_path, capsys):
    source = tiny_source
    write_notebook(source, epochs=1)
    reference.run('tiny', 'pytorch', root=tmp_path)
    # as if that run had been interrupted, by code that has changed since
    parts_path = reference.checkpoint_dir('tiny', 'pytorch', tmp_path) / 'reference-parts.json'
    parts = json.loads(parts_path.read_text())
    parts[-1].update(finished=False, code_hash='older code')
    parts_path.write_text(json.dumps(parts))
    path = reference.run('tiny', 'pytorch', root=tmp_path)[None]
    assert 'changed since the interrupted run began; starting afresh' in capsys.readouterr().out
    record = json.loads(path.read_text())
    assert record.get('resumed_from') is None and record['reference']['parts'] == 1


def test_named_runs_are_quoted_against_the_baseline_cut_to_their_budget():
    """The worked exercises' numbers (run_numbers.named_quotes): each named run per framework,
    ranges over the frameworks, differences between runs, and the baseline (another
    chapter's reference runs) read over the named runs' epochs only."""
    facts = run_numbers.Facts(classes=10, near_chance=0.05, baseline='demo', budget_epochs=2)
    baseline = {fw: made_up(fw, [2.30, 2.29, 1.5, 0.9], [0.10, 0.20, 0.5, 0.7])
                for fw in ('pytorch', 'jax')}
    named = {'bn': {'pytorch': made_up('pytorch', [0.90, 0.50], [0.70, 0.80]),
                    'jax': made_up('jax', [0.95, 0.45], [0.72, 0.79]),
                    'mxnet': made_up('mxnet', [2.30, 2.28], [0.10, 0.11])}}
    values = run_numbers.named_quotes(['bn', 'v3'], named, facts, baseline)
    assert values['run.baseline.pytorch.val_acc'] == '0.200'        # after epoch 2, not 4
    assert values['run.baseline.pytorch.train_loss_e1'] == '2.300'
    assert values['run.baseline.pytorch.left_chance'] == '3'        # over its whole record
    assert values['run.bn.pytorch.left_chance'] == '1'
    assert values['run.bn.mxnet.left_chance'] == '>2'               # still at chance
    assert values['run.bn.left_chance_range'] == '1–>2'
    assert values['run.bn.val_acc_range'] == '0.110–0.800'
    assert values['run.bn.pytorch.seconds_per_epoch'] == '60'
    # per framework that has both runs: pytorch +0.600, jax +0.590
    assert values['delta.bn.baseline.val_acc_range'] == '+0.590 to +0.600'
    assert values['delta.baseline.bn.train_loss_range'] == '+1.790 to +1.840'
    assert values['ratio.bn.baseline.seconds_per_epoch_range'] == '1.00'
    # times from another kind of machine are not divided by these
    baseline['jax'].record['host'] = dict(baseline['jax'].record['host'], cpu_model='Other CPU')
    baseline['pytorch'].record['host'] = dict(baseline['pytorch'].record['host'], cpu_model='Other CPU')
    values = run_numbers.named_quotes(['bn', 'v3'], named, facts, baseline)
    assert values['ratio.bn.baseline.seconds_per_epoch_range'] == run_numbers.MISSING
    assert values['delta.bn.baseline.val_acc_range'] == '+0.590 to +0.600'
    # a run that no framework has kept yet: every key there, none made up
    assert values['run.v3.val_acc_range'] == run_numbers.MISSING
    assert values['run.v3.tensorflow.val_acc'] == run_numbers.MISSING
    assert values['delta.v3.bn.val_acc_range'] == run_numbers.MISSING
    table = values['runs.table'].splitlines()
    assert table[0].startswith('| run | framework | train loss, epoch 1 |')
    assert table[2] == '| baseline | PyTorch | 2.300 | 2.290 | 2.290 | 0.200 | 3 | 60 |'
    assert len(table) == 2 + 2 + 3          # header, 2 baseline rows, 3 of bn
