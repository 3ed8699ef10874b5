"""d2lmini's API, run in each framework (`--framework` picks which ones this environment has)."""
import numpy as np
import pytest

from d2lmini.errors import NonFiniteLossError
from kits import KITS

API = ('add_to_class', 'HyperParameters', 'Module', 'Classifier', 'DataModule', 'FashionMNIST',
       'Trainer', 'cpu', 'gpu', 'num_gpus', 'try_gpu', 'init_cnn', 'set_seed')
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
    data = d2l.FashionMNIST(batch_size=batch_size)
    data.train = tuple(a[:train_examples] for a in data.train)
    data.val = tuple(a[:val_examples] for a in data.val)
    return data


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
    assert d2l.num_gpus() == 0 and d2l.try_gpu() is not None   # this machine has no GPU


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


def test_same_seed_same_losses(kit):
    first, _ = train_small_cnn(kit, seed=7, data=small_data(kit.d2l, train_examples=640))
    second, _ = train_small_cnn(kit, seed=7, data=small_data(kit.d2l, train_examples=640))
    other, _ = train_small_cnn(kit, seed=8, data=small_data(kit.d2l, train_examples=640))
    np.testing.assert_array_equal(first.losses, second.losses)
    assert first.losses != other.losses


def test_smoke_budget_caps_epochs_and_batches(kit, monkeypatch, capsys):
    monkeypatch.setenv('D2LMINI_BUDGET', 'auto')        # no GPU here: auto means smoke
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


def test_nan_loss_stops_training_naming_epoch_and_step(kit):
    # Batch conversions 1 and 2 initialize and prepare the model: call 5 feeds step 3.
    data = poison(small_data(kit.d2l), 5, lambda images: images * np.nan)
    with pytest.raises(NonFiniteLossError, match=r'loss became nan in epoch 1, step 3\b') as info:
        train_small_cnn(kit, data=data, linear=True)   # (a ReLU may turn NaN into 0)
    assert (info.value.epoch, info.value.step) == (1, 3)


def test_keyboard_interrupt_keeps_trained_weights(kit, capsys):
    def interrupt(images):
        raise KeyboardInterrupt
    kit.d2l.set_seed(0)
    data = poison(small_data(kit.d2l), 12, interrupt)
    model, params = kit.make_model(data)
    trainer = kit.d2l.Trainer(max_epochs=1)
    before = kit.weights(trainer, model) if params is None else None
    kit.fit(trainer, model, data, params)            # returns normally
    assert 'Interrupted in epoch 1 after 9 steps' in capsys.readouterr().out
    after = kit.weights(trainer, model)
    assert np.isfinite(after).all()
    if before is not None:
        assert not np.allclose(before, after), 'the steps done before Ctrl-C must be kept'
    else:
        assert int(trainer.state.step) == 9


def test_gradient_clipping_trains(kit):
    kit.d2l.set_seed(0)
    data = small_data(kit.d2l, train_examples=640)
    model, params = kit.make_model(data)
    trainer = kit.d2l.Trainer(max_epochs=1, gradient_clip_val=0.1)
    kit.fit(trainer, model, data, params)
    assert np.isfinite(trainer.losses).all() and trainer.losses[-1] < trainer.losses[0]
