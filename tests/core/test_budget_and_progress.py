"""Budgets, progress output and the hyperparameter helpers."""
import pytest

from d2lmini import budget, progress


def test_auto_budget_follows_the_gpu(monkeypatch):
    monkeypatch.delenv('D2LMINI_BUDGET', raising=False)
    assert budget.resolve(gpu_available=True).name == 'full'
    smoke = budget.resolve(gpu_available=False)
    assert smoke.name == 'smoke' and smoke.epochs(10) == 2 and smoke.train_batches(469) == 2
    assert 'D2LMINI_BUDGET=full' in smoke.describe()


def test_explicit_budgets_override_the_device(monkeypatch):
    monkeypatch.setenv('D2LMINI_BUDGET', 'full')
    full = budget.resolve(gpu_available=False)
    assert full.name == 'full' and full.epochs(10) == 10 and full.val_batches(79) == 79
    monkeypatch.setenv('D2LMINI_BUDGET', 'Smoke')
    assert budget.resolve(gpu_available=True).name == 'smoke'


def test_one_parser_for_the_budget_variable():
    assert budget.choice({'D2LMINI_BUDGET': ' Smoke '}) == 'smoke'
    assert budget.choice({'D2LMINI_BUDGET': ''}) == 'auto' == budget.choice({})
    with pytest.raises(ValueError, match="'tiny' is not one of"):
        budget.choice({'D2LMINI_BUDGET': 'tiny'})


def test_budget_fields_are_checked():
    with pytest.raises(ValueError, match="name='medium'"):
        budget.Budget('medium', 'test')
    with pytest.raises(ValueError, match='max_epochs=0'):
        budget.Budget('smoke', 'test', max_epochs=0)
    with pytest.raises(ValueError, match='max_train_batches=1.5'):
        budget.Budget('smoke', 'test', max_train_batches=1.5)


def test_unknown_budget_is_an_error(monkeypatch):
    monkeypatch.setenv('D2LMINI_BUDGET', 'tiny')
    with pytest.raises(ValueError, match="'tiny' is not one of full, smoke, auto"):
        budget.resolve(gpu_available=False)


def test_board_draws_nothing_in_a_terminal(monkeypatch):
    shown = []
    import IPython.display
    monkeypatch.setattr(IPython.display, 'display', lambda *args, **kwargs: shown.append(args))
    board = progress.ProgressBoard()
    assert not board.live            # pytest is not a Jupyter kernel
    board.draw(1, 2.3, 'train loss')
    board.show()
    board.show(empty=True)
    assert shown == []               # nothing displayed (and no window opened)


def test_board_redraws_one_output_in_a_notebook(monkeypatch):
    shown = []

    class Handle:
        def update(self, image):
            shown.append(('update', image))

    def display(image, display_id):
        shown.append(('display', image))
        return Handle()
    import IPython.display
    monkeypatch.setattr(IPython.display, 'display', display)
    board = progress.ProgressBoard(live=True)
    for step in range(3):
        board.draw(step, 2.3 - step, 'train loss')
        board.show()
    assert [kind for kind, _ in shown] == ['display', 'update', 'update']
    assert shown[-1][1].data.startswith(b'\x89PNG')


def test_epoch_line_without_a_speed():
    line = progress.epoch_line(3, 10, 0.5, 0.6, 0.789, None, 'cpu')
    assert 'n/a examples/s' in line


def test_epoch_line():
    line = progress.epoch_line(3, 10, 0.51234, 0.6, 0.789, 1234.5, 'cpu')
    assert line == ('epoch 3/10: train loss 0.5123, val loss 0.6000, val acc 0.789, '
                    '1234.5 examples/s on cpu')


def test_notebook_text_outputs_are_marked_by_kind(monkeypatch, capsys):
    """The book's build drops checkpoint notices and rewrites epoch lines by these marks."""
    from d2lmini import notebook
    shown = []

    class Handle:
        def update(self, bundle, **kwargs):
            shown.append((bundle, kwargs))
    import IPython.display
    monkeypatch.setattr(IPython.display, 'display',
                        lambda bundle, **kwargs: shown.append((bundle, kwargs)) or Handle())
    notebook.show_text('Checkpoints go to x.', notebook.CHECKPOINT_NOTICE)
    assert capsys.readouterr().out == 'Checkpoints go to x.\n' and shown == []   # a terminal
    monkeypatch.setattr(notebook, 'in_notebook', lambda: True)
    notebook.show_text('Checkpoints go to x.', notebook.CHECKPOINT_NOTICE)
    lines = progress._LiveText()
    lines.add_line('epoch 1/2: ...')
    lines.add_line('epoch 2/2: ...')
    marks = [kwargs['metadata'] for _, kwargs in shown]
    assert shown[0][0] == {'text/plain': 'Checkpoints go to x.'}
    assert marks == [{notebook.OUTPUT_KEY: 'checkpoint-notice'}] + [{notebook.OUTPUT_KEY: 'epoch-lines'}] * 2
    assert shown[-1][0] == {'text/plain': 'epoch 1/2: ...\nepoch 2/2: ...'}
