"""d2lmini's API, run in each framework (`--framework` picks which ones this environment has)."""
import json

import numpy as np
import pytest

from d2lmini import checkpoint, frameworks, record
from d2lmini.errors import CheckpointError, NonFiniteLossError
from kits import KITS

API = ('add_to_class', 'HyperParameters', 'Module', 'Classifier', 'DataModule', 'FashionMNIST',
       'Trainer', 'cpu', 'gpu', 'num_gpus', 'try_gpu', 'init_cnn', 'set_seed', 'load_chapter',
       'plot_beside_kept')
TRAIN_EXAMPLES = 64 * 50     # about 50 steps of batch 64


@pytest.fixture
def kit(framework):
    return KITS[framework]()


@pytest.fixture
def d2l(kit):
    return kit.d2l


@pytest.fixture(autouse=True)
def full_budget(monkeypatch):
    # The tests size their own runs; the budget must not cut them short.
    monkeypatch.setenv('D2LMINI_BUDGET', 'full')


def small_data(d2l, batch_size=64, train_examples=TRAIN_EXAMPLES, val_examples=1000):
    return d2l.FashionMNIST(batch_size=batch_size).take(train_examples=train_examples,
                                                        val_examples=val_examples)


def train_small_cnn(kit, seed=0, lr=0.1, data=None, max_epochs=1, linear=False):
    kit.d2l.set_seed(seed)
    data = data or small_data(kit.d2l)
    model, params = kit.make_model(data, lr=lr, linear=linear)
    trainer = kit.d2l.Trainer(max_epochs=max_epochs)
    kit.fit(trainer, model, data, params)
    return trainer, model


def test_api_names(d2l):
    missing = [name for name in API if not hasattr(d2l, name)]
    assert not missing, f'd2lmini.{d2l.__name__} lacks {missing}'
    expected = d2l.gpu(0) if d2l.num_gpus() > 0 else d2l.cpu()
    assert str(d2l.try_gpu()) == str(expected)


def test_add_to_class_and_hyperparameters(d2l):
    class Widget(d2l.HyperParameters):
        def __init__(self, a, b=2, ignored=None):
            self.save_hyperparameters(ignore=['ignored'])

    @d2l.add_to_class(Widget)
    def total(self):
        return self.a + self.b

    widget = Widget(1, b=5)
    assert widget.total() == 6 and not hasattr(widget, 'ignored')


def test_batches_at_96x96(kit, d2l):
    data = d2l.FashionMNIST(batch_size=32, resize=(96, 96))
    X, y = next(iter(data.train_dataloader()))
    X, y = kit.to_numpy(X), kit.to_numpy(y)
    expected = (32, 1, 96, 96) if kit.layout == 'NCHW' else (32, 96, 96, 1)
    assert X.shape == expected and X.dtype == np.float32
    assert 0 <= X.min() and X.max() <= 1 and X.max() > 0.9
    assert y.shape == (32,) and np.issubdtype(y.dtype, np.integer) and 0 <= y.min() <= y.max() <= 9
    assert len(data.val_dataloader()) == int(np.ceil(10000 / 32))


def test_resize_matches_framework_bilinear(kit, d2l):
    images = d2l.FashionMNIST().val[0][:8]
    reference = kit.reference_resize(images.astype(np.float32) / 255, (96, 96))
    if reference is None:
        pytest.skip(f'{kit.module_name} has no half-pixel bilinear resize to compare with')
    data = d2l.FashionMNIST(batch_size=8, resize=(96, 96))
    X = kit.to_numpy(next(iter(data.val_dataloader()))[0])
    X = X[:, 0] if kit.layout == 'NCHW' else X[..., 0]
    np.testing.assert_allclose(X, reference, atol=1e-5)


def test_layer_summary_prints_each_layer(kit, d2l, capsys):
    model, _ = kit.make_model(small_data(d2l))
    shape = (1, 1, 28, 28) if kit.layout == 'NCHW' else (1, 28, 28, 1)
    model.layer_summary(shape)
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) >= 3 and all('output shape' in line for line in lines)
    assert lines[-1].endswith('output shape: (1, 10)')


def test_init_cnn_is_xavier_uniform_with_zero_biases(kit, d2l):
    d2l.set_seed(0)
    model, params = kit.make_model(small_data(d2l))
    by_size = {a.size: a for a in kit.parameter_arrays(model, params)}
    conv, dense = by_size[8 * 1 * 3 * 3], by_size[1568 * 10]
    assert not by_size[8].any() and not by_size[10].any(), 'biases must start at zero'
    for kernel, fan_in, fan_out in ((conv, 9, 72), (dense, 1568, 10)):
        bound = np.sqrt(6 / (fan_in + fan_out))   # Xavier-uniform: U(-bound, bound)
        assert np.abs(kernel).max() <= bound + 1e-6
        assert np.abs(kernel).max() > 0.8 * bound
    # a uniform distribution on (-b, b) has standard deviation b / sqrt(3)
    assert dense.std() == pytest.approx(np.sqrt(6 / 1578) / np.sqrt(3), rel=0.05)


def test_a_run_is_drawn_beside_the_chapters_kept_reference_run(kit, monkeypatch):
    """d2l.plot_beside_kept finds the chapter's record of this framework (book/googlenet/
    reference/, from the checkout's root) and draws the run over it."""
    monkeypatch.delenv('D2LMINI_BOOK', raising=False)
    trainer, _ = train_small_cnn(kit, data=small_data(kit.d2l, train_examples=128))
    plot = kit.d2l.plot_beside_kept(trainer, 'googlenet')
    kept, mine = plot.figure.axes[0].get_lines()
    reference = json.loads(open(f'book/googlenet/reference/{kit.framework_id}.json').read())
    assert list(kept.get_ydata()) == [row['train_loss'] for row in reference['history']]
    assert list(mine.get_ydata()) == [trainer.history[0]['train_loss']]


def test_training_lowers_the_loss(kit, capsys):
    trainer, _ = train_small_cnn(kit)
    losses = np.array(trainer.losses)
    assert len(losses) == TRAIN_EXAMPLES // 64
    assert losses[:5].mean() > 2.0, 'an untrained 10-class model starts near ln 10 = 2.30'
    assert losses[-5:].mean() < losses[:5].mean() - 0.8
    assert trainer.history[-1]['val_acc'] > 0.6
    out = capsys.readouterr().out
    assert "Training on cpu with budget 'full'" in out
    assert 'epoch 1/1: train loss' in out and 'examples/s on cpu' in out


def test_same_seed_same_losses_and_weights_in_one_process(kit):
    runs = [train_small_cnn(kit, seed=seed, data=small_data(kit.d2l, train_examples=1280))
            for seed in (7, 7, 8)]
    (first, first_model), (second, second_model), (other, _) = runs
    np.testing.assert_array_equal(first.losses, second.losses)
    np.testing.assert_array_equal(kit.weights(first, first_model),
                                  kit.weights(second, second_model))
    assert first.losses != other.losses


def test_smoke_budget_caps_epochs_and_batches(kit, monkeypatch, capsys):
    monkeypatch.setenv('D2LMINI_BUDGET', 'auto')
    # As on a machine without a GPU, whether this one has one or not.
    monkeypatch.setattr(kit.d2l.Trainer, 'gpu_available', lambda self: False)
    trainer, _ = train_small_cnn(kit, max_epochs=5)
    assert len(trainer.history) == 2 and len(trainer.losses) == 2 * 2
    assert "budget 'smoke' (D2LMINI_BUDGET=auto and no GPU was found)" in capsys.readouterr().out


def poison(data, at_call, action):
    """Make the data module's `at_call`-th batch conversion do `action` to the images."""
    convert, calls = data.to_framework, []

    def poisoned(images, labels):
        calls.append(1)
        if len(calls) == at_call:
            images = action(images)
        return convert(images, labels)
    data.to_framework = poisoned
    return data


def test_nan_loss_stops_training_and_restores_the_last_finite_weights(kit):
    # Batch conversions 1 and 2 initialize and prepare the model: call 5 feeds step 3.
    kit.d2l.set_seed(0)
    data = poison(small_data(kit.d2l, train_examples=640), 5, lambda images: images * np.nan)
    model, params = kit.make_model(data, linear=True)     # (a ReLU may turn NaN into 0)
    trainer = kit.d2l.Trainer(max_epochs=1)
    initial = kit.weights(trainer, model) if params is None else None
    with pytest.raises(NonFiniteLossError, match=r'loss became nan in epoch 1, step 3\b') as info:
        kit.fit(trainer, model, data, params)
    assert (info.value.epoch, info.value.step) == (1, 3)
    assert 'restored to its weights from before training' in str(info.value)
    assert trainer.status == 'failed'
    restored = kit.weights(trainer, model)
    assert np.isfinite(restored).all()
    if initial is not None:     # JAX keeps its weights in the trainer: checked by the refit
        np.testing.assert_array_equal(restored, initial)
    # The model is still good: a second fit (without the poisoned batch) trains it.
    data.to_framework = type(data).to_framework
    kit.fit(trainer, model, data, None)
    assert trainer.status == 'finished' and np.isfinite(trainer.losses).all()
    assert trainer.losses[0] < 3 and np.mean(trainer.losses[-3:]) < trainer.losses[0] - 0.5


def test_nan_after_a_sync_point_restores_the_weights_of_that_sync_point(kit):
    # 50 steps, a sync point every 13: a NaN at step 20 goes back to the weights after step 13.
    data = poison(small_data(kit.d2l), 22, lambda images: images * np.nan)
    with pytest.raises(NonFiniteLossError, match='weights after step 13 of epoch 1'):
        train_small_cnn(kit, data=data, linear=True)


def test_keyboard_interrupt_keeps_every_completed_step_and_reraises(kit, capsys):
    def interrupt(images):
        raise KeyboardInterrupt
    kit.d2l.set_seed(0)
    data = poison(small_data(kit.d2l), 12, interrupt)
    model, params = kit.make_model(data)
    trainer = kit.d2l.Trainer(max_epochs=1)
    before = kit.weights(trainer, model) if params is None else None
    with pytest.raises(KeyboardInterrupt):
        kit.fit(trainer, model, data, params)
    assert trainer.interrupted and trainer.status == 'interrupted'
    assert 'Interrupted in epoch 1 after step 9 of 50' in capsys.readouterr().out
    # 9 steps done and no sync point reached yet (every 13 steps): all 9 losses are kept.
    assert len(trainer.losses) == 9 and np.isfinite(trainer.losses).all()
    assert trainer.record['status'] == 'interrupted' and trainer.record['steps'] == 9
    after = kit.weights(trainer, model)
    assert np.isfinite(after).all()
    if before is not None:
        assert not np.allclose(before, after), 'the steps done before Ctrl-C must be kept'
    else:
        assert int(trainer.state.step) == 9


def test_gradient_clipping_bounds_each_update(kit):
    """With plain SGD one step moves the weights by lr * (clipped gradient), whose global L2
    norm is at most lr * gradient_clip_val; without clipping the step is far larger."""
    def one_step(clip):
        kit.d2l.set_seed(0)
        data = small_data(kit.d2l, train_examples=64)
        model, params = kit.make_model(data, lr=0.1)
        trainer = kit.d2l.Trainer(max_epochs=1, gradient_clip_val=clip)
        before = (kit.weights(trainer, model) if params is None else
                  np.concatenate([a.astype(np.float64).ravel()
                                  for a in kit.parameter_arrays(model, params)]))
        kit.fit(trainer, model, data, params)
        return np.linalg.norm(kit.weights(trainer, model) - before)
    clip = 1e-3
    clipped, free = one_step(clip), one_step(0)
    assert 0 < clipped <= 0.1 * clip * (1 + 1e-3)
    assert free > 10 * 0.1 * clip


def test_bad_arguments_fail_where_they_are_given(d2l):
    cases = [
        (lambda: d2l.FashionMNIST(batch_size=0), 'batch_size=0'),
        (lambda: d2l.FashionMNIST(batch_size=2.5), 'batch_size=2.5'),
        (lambda: d2l.FashionMNIST(batch_size=True), 'batch_size=True'),
        (lambda: d2l.FashionMNIST(batch_size=60_001), 'batch_size=60001 is larger than'),
        (lambda: d2l.FashionMNIST(resize=(0, 0)), r'resize\[0\]=0'),
        (lambda: d2l.FashionMNIST(resize=96), 'resize=96'),
        (lambda: d2l.FashionMNIST(resize=(96, -1)), r'resize\[1\]=-1'),
        (lambda: d2l.Trainer(max_epochs=0), 'max_epochs=0'),
        (lambda: d2l.Trainer(max_epochs=2.0), 'max_epochs=2.0'),
        (lambda: d2l.Trainer(max_epochs=1, num_gpus=-1), 'num_gpus=-1'),
        (lambda: d2l.Trainer(max_epochs=1, gradient_clip_val=-1), 'gradient_clip_val=-1'),
        (lambda: d2l.Trainer(max_epochs=1, gradient_clip_val=float('nan')), 'gradient_clip_val=nan'),
        (lambda: d2l.Trainer(max_epochs=1, checkpoint_dir=3), 'checkpoint_dir=3'),
        (lambda: d2l.Trainer(max_epochs=1, checkpoint_dir=''), "checkpoint_dir=''"),
        (lambda: d2l.Trainer(max_epochs=1, callbacks=[print]), 'not a d2lmini Callback'),
        (lambda: d2l.Trainer(max_epochs=1, callbacks=d2l.Callback()), 'must be a list'),
        (lambda: d2l.set_seed('zero'), "seed='zero'"),
        (lambda: d2l.set_seed(-1), 'seed=-1'),
    ]
    for make, message in cases:
        with pytest.raises(ValueError, match=message):
            make()


def test_fit_names_arguments_given_the_wrong_way_round(kit):
    kit.d2l.set_seed(0)
    data = small_data(kit.d2l, train_examples=128)
    model, params = kit.make_model(data)
    with pytest.raises(TypeError, match='data is a SmallCNN, which has no train_dataloader'):
        kit.fit(kit.d2l.Trainer(max_epochs=1), data, model, params)


def test_no_training_or_validation_batch_is_reported_before_training(kit, capsys):
    kit.d2l.set_seed(0)
    data = small_data(kit.d2l)
    model, params = kit.make_model(data)
    data = data.take(train_examples=10)                     # < one batch of 64, dropped
    with pytest.raises(ValueError, match=r'yields no training batch \(10 examples in batches '
                                         r'of 64, the last partial batch dropped\)'):
        kit.fit(kit.d2l.Trainer(max_epochs=1), model, data, params)
    with pytest.raises(ValueError, match=r'no batch: 10 examples in batches of 64'):
        next(iter(data.train_dataloader()))                  # not a bare StopIteration
    data = small_data(kit.d2l, val_examples=0)
    with pytest.raises(ValueError, match='yields no validation batch'):
        kit.fit(kit.d2l.Trainer(max_epochs=1), model, data, params)
    assert 'Training on' not in capsys.readouterr().out


def test_callbacks_run_in_order_and_the_run_record_describes_the_run(kit, monkeypatch):
    from d2lmini.training import Callback
    calls = []

    class Recorder(Callback):
        def on_fit_start(self, trainer):
            calls.append('fit_start')

        def on_epoch_start(self, trainer):
            calls.append(f'epoch_start {trainer.epoch}')

        def on_train_step_end(self, trainer):
            calls.append('step')

        def on_epoch_end(self, trainer):
            calls.append(f'epoch_end {len(trainer.history)}')

        def on_fit_end(self, trainer):
            calls.append(f'fit_end {trainer.status}')
    kit.d2l.set_seed(3)
    data = small_data(kit.d2l, train_examples=128, val_examples=100)
    model, params = kit.make_model(data)
    trainer = kit.d2l.Trainer(max_epochs=2, callbacks=[Recorder()])
    kit.fit(trainer, model, data, params)
    assert calls == ['fit_start', 'epoch_start 0', 'step', 'step', 'epoch_end 1',
                     'epoch_start 1', 'step', 'step', 'epoch_end 2', 'fit_end finished']
    run = trainer.record
    assert json.loads(json.dumps(run, allow_nan=False)) == run
    assert run['framework'] == next(fw.id for fw in frameworks.FRAMEWORKS
                                    if fw.module == kit.module_name)
    assert run['budget']['name'] == 'full' and run['device']['type'] == 'cpu'
    assert (run['epochs_requested'], run['epochs_run'], run['steps']) == (2, 2, 4)
    assert run['history'] == trainer.history and run['status'] == 'finished'
    assert run['seed'] == 3 and run['batch_size'] == 64 and run['wall_time_s'] > 0
    assert run['host']['cpu_count'] >= 1 and run['versions']['d2lmini']


def test_run_record_is_a_display_output_in_a_notebook(kit, monkeypatch):
    shown = []
    import IPython.display
    monkeypatch.setattr(IPython.display, 'display',
                        lambda *objects, **kwargs: shown.append((objects, kwargs)))
    monkeypatch.setattr(record.RunRecorder, '__init__',
                        lambda self, live=None: setattr(self, 'live', True))
    trainer, _ = train_small_cnn(kit, data=small_data(kit.d2l, train_examples=128))
    bundles = [objects[0] for objects, kwargs in shown if kwargs.get('raw')]
    assert bundles == [{record.MIME_TYPE: trainer.record, 'text/plain': ''}]


def test_a_second_fit_continues_from_the_trained_weights(kit):
    kit.d2l.set_seed(0)
    data = small_data(kit.d2l)
    model, params = kit.make_model(data)
    trainer = kit.d2l.Trainer(max_epochs=1)
    kit.fit(trainer, model, data, params)
    first = list(trainer.losses)
    kit.fit(trainer, model, data, None)
    assert np.mean(trainer.losses[:5]) < np.mean(first[:5]) - 0.8
    assert np.mean(trainer.losses[:5]) < np.mean(first[-5:]) + 0.5


def batch_norm_and_dropout_model(kit, data):
    return kit.make_model(data, net=kit.make_bn_dropout_net())


def test_batch_norm_and_dropout_train_repeatably(kit):
    def run():
        kit.d2l.set_seed(5)
        data = small_data(kit.d2l, train_examples=640, val_examples=256)
        model, params = batch_norm_and_dropout_model(kit, data)
        trainer = kit.d2l.Trainer(max_epochs=1)
        kit.fit(trainer, model, data, params)
        return trainer
    first, second = run(), run()
    np.testing.assert_array_equal(first.losses, second.losses)     # dropout draws repeat
    assert np.mean(first.losses[-3:]) < np.mean(first.losses[:3]) - 0.3
    assert first.history[0]['val_acc'] > 0.4                       # inference mode works


def test_layer_summary_has_no_side_effects(kit, capsys):
    kit.d2l.set_seed(0)
    data = small_data(kit.d2l, train_examples=128)
    model, params = batch_norm_and_dropout_model(kit, data)
    trainer = kit.d2l.Trainer(max_epochs=1)
    kit.fit(trainer, model, data, params)       # BatchNorm statistics are no longer the initial ones
    state = kit.state_arrays(model, params)
    shape = (2, 1, 28, 28) if kit.layout == 'NCHW' else (2, 28, 28, 1)
    kit.d2l.set_seed(1)
    model.layer_summary(shape)
    after_summary = kit.d2l.FashionMNIST(batch_size=8).train_dataloader().rng.integers(1 << 30)
    kit.d2l.set_seed(1)
    without_summary = kit.d2l.FashionMNIST(batch_size=8).train_dataloader().rng.integers(1 << 30)
    assert after_summary == without_summary, 'the summary drew from the seeded stream'
    for before, after in zip(state, kit.state_arrays(model, params)):
        np.testing.assert_array_equal(before, after)
    assert capsys.readouterr().out.strip().splitlines()[-1].endswith('output shape: (2, 10)')


def test_layer_summary_walks_a_model_without_a_sequential_net(kit, capsys):
    data = small_data(kit.d2l, train_examples=128)
    model = kit.make_named_model()
    kit.init_model(model, data)
    shape = (1, 1, 28, 28) if kit.layout == 'NCHW' else (1, 28, 28, 1)
    model.layer_summary(shape)
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ['stem', 'head']
    assert lines[-1].endswith('output shape: (1, 10)')
    kit.make_named_model().layer_summary(shape)     # not built yet: still one line a child
    assert [line.split()[0] for line in capsys.readouterr().out.strip().splitlines()] == \
        ['stem', 'head']


def checkpointed_run(kit, directory, max_epochs, at_call=None, seed=11):
    """A fresh model and data, as a new process would make them, trained with checkpoints;
    `at_call`: raise KeyboardInterrupt in that batch conversion."""
    kit.d2l.set_seed(seed)
    data = small_data(kit.d2l, train_examples=640, val_examples=200)
    if at_call is not None:
        def interrupt(images):
            raise KeyboardInterrupt
        data = poison(data, at_call, interrupt)
    model, params = kit.make_model(data)
    trainer = kit.d2l.Trainer(max_epochs=max_epochs, checkpoint_dir=directory)
    kit.fit(trainer, model, data, params)
    return trainer, model


def test_a_resumed_run_repeats_an_uninterrupted_one_exactly(kit, tmp_path, capsys):
    whole, whole_model = checkpointed_run(kit, tmp_path / 'whole', max_epochs=3)
    checkpointed_run(kit, tmp_path / 'cut', max_epochs=1)                  # stops after epoch 1
    with pytest.raises(KeyboardInterrupt):                                 # Ctrl-C in epoch 2
        checkpointed_run(kit, tmp_path / 'cut', max_epochs=3, at_call=9)
    assert 'Checkpoint written to' in capsys.readouterr().out
    resumed, resumed_model = checkpointed_run(kit, tmp_path / 'cut', max_epochs=3)
    out = capsys.readouterr().out
    assert 'Resuming from the checkpoint' in out and 'continuing with epoch 2, step 7' in out
    assert resumed.losses == whole.losses
    for ours, theirs in zip(resumed.history, whole.history):
        assert {k: ours[k] for k in ('train_loss', 'val_loss', 'val_acc')} == \
               {k: theirs[k] for k in ('train_loss', 'val_loss', 'val_acc')}
    np.testing.assert_array_equal(kit.weights(resumed, resumed_model),
                                  kit.weights(whole, whole_model))
    assert resumed.record['resumed_from']['epoch'] == 1


def test_a_checkpoint_that_does_not_fit_is_refused_and_kept(kit, tmp_path):
    checkpointed_run(kit, tmp_path, max_epochs=1)
    latest = tmp_path / (tmp_path / 'latest').read_text()
    kit.d2l.set_seed(0)
    data = small_data(kit.d2l, train_examples=640, val_examples=200)
    model, params = kit.make_model(data, linear=True)                      # another model
    with pytest.raises(CheckpointError, match=r'holds another run: hyperparameters.linear \(False vs True\)'):
        kit.fit(kit.d2l.Trainer(max_epochs=2, checkpoint_dir=tmp_path), model, data, params)
    meta = json.loads((latest / 'trainer.json').read_text())
    meta['signature']['framework'] = 'another'
    (latest / 'trainer.json').write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match=r'written by another, this is'):
        checkpointed_run(kit, tmp_path, max_epochs=2)
    (latest / 'trainer.json').write_text('{"format": 1, "sign')              # truncated
    with pytest.raises(CheckpointError, match=f'{latest / "trainer.json"} is missing or corrupt'):
        checkpointed_run(kit, tmp_path, max_epochs=2)
    assert (latest / 'trainer.json').read_text() == '{"format": 1, "sign'    # nothing overwritten


def test_a_corrupt_weights_file_is_named(kit, tmp_path):
    checkpointed_run(kit, tmp_path, max_epochs=1)
    latest = tmp_path / (tmp_path / 'latest').read_text()
    for file in latest.iterdir():
        if file.name != 'trainer.json':
            file.write_bytes(file.read_bytes()[:40])
    with pytest.raises(CheckpointError, match=f'Could not load the checkpoint {latest}'):
        checkpointed_run(kit, tmp_path, max_epochs=2)


def test_checkpoint_dir_comes_from_the_environment(kit, tmp_path, monkeypatch):
    monkeypatch.setenv(checkpoint.ENV_VAR, str(tmp_path))
    checkpointed_run(kit, None, max_epochs=1)
    [folder] = checkpoint.run_folders(tmp_path)          # the run's own folder inside it
    assert (folder / 'latest').read_text() == 'epoch-0001-step-00000'


def test_chapter_exercise_batch_norm_after_every_convolution_trains(kit):
    """The chapter's first exercise: its GoogLeNet with `conv_relu` swapped for a version with
    batch normalization between convolution and ReLU, trained on real data."""
    from book.tools.chapters import load_code
    ns = load_code('googlenet', kit.framework_id)
    ns['conv_relu'] = kit.conv_bn_relu()
    d2l = ns['d2l']
    d2l.set_seed(0)
    data = d2l.FashionMNIST(batch_size=16, resize=(32, 32)).take(train_examples=16 * 6,
                                                                 val_examples=32)
    model = ns['GoogleNet'](lr=0.05)
    params = kit.init_model(model, data)
    statistics = {}

    class KeepStatistics(d2l.training.Callback):
        def on_fit_start(self, trainer):
            statistics.update({name: value for name, value in trainer.parameter_arrays().items()
                               if 'mean' in name})
    trainer = d2l.Trainer(max_epochs=1, callbacks=[KeepStatistics()])
    kit.fit(trainer, model, data, params)
    assert statistics, 'the model has no batch-normalization statistics'
    after = trainer.parameter_arrays()
    assert all(not np.array_equal(after[name], value) for name, value in statistics.items())
    assert np.isfinite(trainer.losses).all() and np.isfinite(trainer.history[0]['val_loss'])


def test_chapter_googlenet_repeats_in_one_process(kit):
    """Two seeded runs of the chapter's GoogLeNet in one process give the same losses and
    weights (in TensorFlow the second used to part from the first after four steps)."""
    from book.tools.chapters import load_code
    ns = load_code('googlenet', kit.framework_id)
    d2l = ns['d2l']

    def run():
        d2l.set_seed(0)
        data = d2l.FashionMNIST(batch_size=32, resize=(64, 64)).take(train_examples=32 * 8,
                                                                     val_examples=32)
        model = ns['GoogleNet'](lr=0.05)
        params = kit.init_model(model, data)
        trainer = d2l.Trainer(max_epochs=1)
        kit.fit(trainer, model, data, params)
        return trainer.losses, kit.weights(trainer, model)
    (first_losses, first_weights), (second_losses, second_weights) = run(), run()
    assert first_losses == second_losses
    np.testing.assert_array_equal(first_weights, second_weights)


def test_ctrl_c_during_a_step_stops_after_that_step(kit, capsys):
    """A real SIGINT, as Jupyter's interrupt button or Ctrl-C sends it, arriving during step 5:
    the step completes, then training stops with its weights and all five losses kept."""
    import os
    import signal
    from d2lmini.training import Callback

    class PressCtrlC(Callback):
        def on_train_step_end(self, trainer):
            if trainer.step == 5:
                os.kill(os.getpid(), signal.SIGINT)
    kit.d2l.set_seed(0)
    data = small_data(kit.d2l, train_examples=640)
    model, params = kit.make_model(data)
    trainer = kit.d2l.Trainer(max_epochs=1, callbacks=[PressCtrlC()])
    # Python's own handler, or SIG_IGN where the tests were started in the background of a
    # shell, which ignores SIGINT for such jobs: the fit must put back whichever it found
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt):
        kit.fit(trainer, model, data, params)
    assert len(trainer.losses) == 5 and trainer.interrupted
    assert 'Interrupted in epoch 1 after step 5 of 10' in capsys.readouterr().out
    assert signal.getsignal(signal.SIGINT) is before      # handler restored


def test_the_start_line_says_what_became_of_num_gpus(kit, capsys):
    """No silent fallback: GPUs asked for but absent (or more devices than there are, or than
    an adapter without data parallelism trains on) are named on the start line."""
    kit.d2l.set_seed(0)
    data = small_data(kit.d2l, train_examples=128, val_examples=64)
    model, params = kit.make_model(data)
    trainer = kit.d2l.Trainer(max_epochs=1, num_gpus=2)
    kit.fit(trainer, model, data, params)
    line = capsys.readouterr().out.splitlines()[0]
    if kit.d2l.num_gpus() == 0:
        label = frameworks.get(trainer.framework).label
        assert line.endswith(f'(num_gpus=2 was asked for, but {label} finds no GPU: '
                             f'this run uses the CPU)'), line
    elif kit.d2l.num_gpus() < 2 or not trainer.data_parallel:
        assert line.endswith(trainer.placement.note) and trainer.placement.note, line
    else:
        assert line.startswith('Training on 2 devices (gpu:0, gpu:1)'), line


def test_pytorch_apply_init_leaves_batchnorm_statistics_and_the_mode_alone(framework):
    """apply_init's shape-finding pass runs in eval mode, as the other frameworks' does: a
    pass in training mode would move BatchNorm's running statistics once, and a model's first
    outputs in inference mode would then differ from the other frameworks'."""
    if framework != 'pytorch':
        pytest.skip('PyTorch only')
    import torch
    from torch import nn
    from d2lmini import torch as d2l

    class Net(d2l.Classifier):
        def __init__(self):
            super().__init__()
            self.net = nn.Sequential(nn.LazyConv2d(4, 3), nn.LazyBatchNorm2d(), nn.ReLU(),
                                     nn.Flatten(), nn.LazyLinear(10))

    model = Net()
    model.apply_init([torch.randn(8, 1, 8, 8) * 3 + 1], d2l.init_cnn)
    norm = model.net[1]
    assert torch.equal(norm.running_mean, torch.zeros(4))
    assert torch.equal(norm.running_var, torch.ones(4)) and int(norm.num_batches_tracked) == 0
    assert model.training           # the mode it had, for the Trainer
