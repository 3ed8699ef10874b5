"""d2l.plot_beside_kept (d2lmini/kept_runs.py): a chapter's kept reference run, found as its
notebooks are, drawn with a reader's own run over it."""
import json
import types

import pytest

from d2lmini import kept_runs
from d2lmini.chapter_code import ChapterCodeError


def record(losses, accuracies, budget='full', device='cpu'):
    return dict(history=[dict(epoch=i + 1, train_loss=loss, val_loss=loss, val_acc=acc)
                         for i, (loss, acc) in enumerate(zip(losses, accuracies))],
                budget=dict(name=budget), device=dict(name=device))


KEPT = record([2.30, 2.28, 1.74], [0.32, 0.28, 0.63])


def keep(book, chapter='demo', framework='pytorch', content=None):
    folder = book / chapter / 'reference'
    folder.mkdir(parents=True)
    (folder / f'{framework}.json').write_text(content if content is not None else json.dumps(KEPT))


def test_the_kept_run_is_found_beside_the_running_notebook(tmp_path, monkeypatch):
    keep(tmp_path / 'book')
    (tmp_path / 'book' / 'exercises').mkdir()
    monkeypatch.chdir(tmp_path / 'book' / 'exercises')
    monkeypatch.delenv('D2LMINI_BOOK', raising=False)
    assert kept_runs.kept_run('demo', 'pytorch') == KEPT


def test_a_missing_or_malformed_kept_run_says_what_and_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.setenv('D2LMINI_BOOK', str(tmp_path / 'book'))
    monkeypatch.setattr(kept_runs.chapter_code, 'RELEASE_URL', f'file://{tmp_path}/nowhere')
    with pytest.raises(ChapterCodeError, match=r"The chapter 'demo' keeps no pytorch reference run "
                                               r"that could be read here .*D2LMINI_BOOK"):
        kept_runs.kept_run('demo', 'pytorch')
    keep(tmp_path / 'book', content='{"status": "finished"}')
    with pytest.raises(ChapterCodeError, match=r'pytorch\.json is not a run record'):
        kept_runs.kept_run('demo', 'pytorch')
    with pytest.raises(KeyError):
        kept_runs.kept_run('demo', 'theano')


def lines(plot, panel):
    """(label, x, y, colour) of each line of a panel, in drawing order."""
    ax = plot.figure.axes[panel]
    return [(line.get_label(), list(line.get_xdata()), list(line.get_ydata()), line.get_color())
            for line in ax.get_lines()]


def test_the_readers_run_is_drawn_over_the_kept_one(tmp_path, monkeypatch):
    keep(tmp_path / 'book')
    monkeypatch.setenv('D2LMINI_BOOK', str(tmp_path / 'book'))
    mine = record([2.2, float('nan'), 1.1], [0.4, 0.5, 0.7], budget='smoke')
    mine['history'][1]['train_loss'] = None         # a non-finite loss, as records store it
    trainer = types.SimpleNamespace(record=mine)
    plot = kept_runs.bound('pytorch')[2](trainer, 'demo')
    (kept_label, kx, ky, _), (my_label, mx, my, colour) = lines(plot, 0)
    assert kept_label == 'kept: demo (3 epochs, budget full, cpu)'
    assert (kx, ky) == ([1, 2, 3], [2.30, 2.28, 1.74])
    assert my_label == 'your run (3 epochs, budget smoke, cpu)' and colour == 'black'
    assert (mx, my) == ([1, 3], [2.2, 1.1])          # the missing value left out
    (_, _, kept_acc, _), (_, _, my_acc, _) = lines(plot, 1)
    assert kept_acc == [0.32, 0.28, 0.63] and my_acc == [0.4, 0.5, 0.7]
    assert plot.figure.axes[1].get_ylabel() == 'validation accuracy'
    assert plot._repr_png_().startswith(b'\x89PNG')


def test_several_runs_are_drawn_in_order_with_the_highlighted_one_last():
    runs = {'a': record([2.3, 2.0], [0.3, 0.5]), 'mine': record([2.1, 1.5], [0.4, 0.6]),
            'b': record([2.3, 1.9], [0.3, 0.55])}
    plot = kept_runs.plot_runs(runs, fields=('val_loss',), highlight='mine')
    assert [label for label, *_ in lines(plot, 0)] == ['a', 'b', 'mine']
    assert len(plot.figure.axes) == 1
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['accuracy'\]"):
        kept_runs.plot_runs(runs, fields=('accuracy',))
    with pytest.raises(ValueError, match='neither a run record nor a Trainer that has run a fit'):
        kept_runs.plot_runs({'x': types.SimpleNamespace(record=None)})


def keep_named(book, run, content, chapter='exercises', framework='pytorch'):
    folder = book / chapter / 'reference'
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f'{framework}.{run}.json').write_text(json.dumps(content))


def test_a_named_run_is_read_from_its_own_record(tmp_path, monkeypatch):
    mine = record([0.9, 0.5], [0.7, 0.8])
    keep_named(tmp_path / 'book', 'batch-norm', mine)
    monkeypatch.setenv('D2LMINI_BOOK', str(tmp_path / 'book'))
    monkeypatch.setattr(kept_runs.chapter_code, 'RELEASE_URL', f'file://{tmp_path}/nowhere')
    kept_run, _, _ = kept_runs.bound('pytorch')
    assert kept_run('exercises', 'batch-norm') == mine
    with pytest.raises(ChapterCodeError, match=r"keeps no pytorch reference run named 'residual'"):
        kept_run('exercises', 'residual')


def test_kept_runs_are_drawn_with_those_trained_here_in_their_place(tmp_path, monkeypatch):
    """A question's figure: the kept runs, cut to the budget; a run trained in the notebook
    replaces the kept one of its name; one not kept yet is named under the figure."""
    keep(tmp_path / 'book', chapter='demo')
    keep_named(tmp_path / 'book', 'bn', record([0.9, 0.5], [0.7, 0.8]))
    monkeypatch.setenv('D2LMINI_BOOK', str(tmp_path / 'book'))
    monkeypatch.setattr(kept_runs.chapter_code, 'RELEASE_URL', f'file://{tmp_path}/nowhere')
    _, plot_kept, _ = kept_runs.bound('pytorch')
    runs = {'baseline': ('demo', None), 'bn': ('exercises', 'bn'), 'v3': ('exercises', 'v3')}
    plot = plot_kept(runs, epochs=2)
    assert [(label, x, y) for label, x, y, _ in lines(plot, 0)] == [
        ('baseline', [1, 2], [2.30, 2.28]), ('bn', [1, 2], [0.9, 0.5])]    # cut to 2 epochs
    assert 'not kept yet (no reference run to read): v3' in [t.get_text() for t in plot.figure.texts]
    mine = types.SimpleNamespace(record=record([1.2, 0.6], [0.6, 0.75], budget='smoke'))
    plot = plot_kept(runs, epochs=2, fresh={'v3': mine, 'bn': mine})
    drawn = lines(plot, 1)
    assert [label for label, *_ in drawn] == ['baseline', 'bn (trained here)', 'v3 (trained here)']
    assert [y for _, _, y, _ in drawn[1:]] == [[0.6, 0.75]] * 2
    assert drawn[1][3] != drawn[2][3]           # several of them: each in a colour of its own
    assert plot.figure.texts == []              # nothing missing
