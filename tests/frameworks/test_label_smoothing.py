"""Label smoothing in every framework's Classifier: the training loss against smoothed targets,
through the framework's own loss option, and plain cross-entropy for validation."""
import numpy as np
import pytest

from kits import KITS

RNG = np.random.default_rng(0)
LOGITS = RNG.standard_normal((6, 5)).astype(np.float32) * 3
LABELS = np.array([0, 4, 2, 2, 1, 3], np.int32)


def smoothed_cross_entropy(logits, labels, eps):
    """Per example, in float64: -sum_j t_j log softmax(logits)_j, t = (1 - eps) one_hot + eps / C."""
    logits = logits.astype(np.float64)
    log_softmax = logits - np.log(np.exp(logits - logits.max(1, keepdims=True)).sum(1, keepdims=True)) \
        - logits.max(1, keepdims=True)
    classes = logits.shape[1]
    targets = (1 - eps) * np.eye(classes)[labels] + eps / classes
    return -(targets * log_softmax).sum(1)


def classifier(d2l, framework, eps):
    """A bare d2lmini Classifier whose `label_smoothing` hyperparameter is `eps` (None: unset)."""
    if framework == 'jax':      # a Flax module is a frozen dataclass: the setting is a field
        if eps is None:
            return d2l.Classifier()
        smoothed = type('Smoothed', (d2l.Classifier,), {'__annotations__': {'label_smoothing': float},
                                                        'label_smoothing': eps})
        return smoothed()
    model = d2l.Classifier()
    if eps is not None:
        model.label_smoothing = eps
    return model


def tensors(framework, logits, labels):
    if framework == 'pytorch':
        import torch
        return torch.tensor(logits), torch.tensor(labels).long()
    if framework == 'tensorflow':
        import tensorflow as tf
        return tf.constant(logits), tf.constant(labels)
    if framework == 'jax':
        import jax.numpy as jnp
        return jnp.asarray(logits), jnp.asarray(labels)
    import mxnet as mx
    return mx.nd.array(logits), mx.nd.array(labels, dtype='int32')


@pytest.fixture
def d2l(framework):
    return KITS[framework]().d2l


@pytest.mark.parametrize('eps', [0.0, 0.1, 0.4])
def test_the_training_loss_is_cross_entropy_against_smoothed_targets(d2l, framework, eps):
    model = classifier(d2l, framework, eps)
    y_hat, y = tensors(framework, LOGITS, LABELS)
    expected = smoothed_cross_entropy(LOGITS, LABELS, eps)
    each = KITS[framework]().to_numpy(model.loss(y_hat, y, averaged=False))
    # float32: log-softmax of logits up to about 10 is exact to a few 1e-6 absolute
    np.testing.assert_allclose(each, expected, rtol=1e-5, atol=1e-5)
    mean = float(KITS[framework]().to_numpy(model.loss(y_hat, y)))
    assert mean == pytest.approx(expected.mean(), rel=1e-5)
    if eps:     # smoothing raises the loss of confident, correct logits: the test can tell
        assert not np.allclose(expected, smoothed_cross_entropy(LOGITS, LABELS, 0.0), rtol=1e-3)


def test_an_argument_overrides_the_model_setting_and_validation_reports_plain_cross_entropy(
        d2l, framework):
    kit = KITS[framework]()
    model = classifier(d2l, framework, 0.3)
    y_hat, y = tensors(framework, LOGITS, LABELS)
    plain = smoothed_cross_entropy(LOGITS, LABELS, 0.0).mean()
    assert float(kit.to_numpy(model.loss(y_hat, y, label_smoothing=0.0))) == pytest.approx(plain,
                                                                                          rel=1e-5)
    assert float(kit.to_numpy(model.validation_loss(y_hat, y))) == pytest.approx(plain, rel=1e-5)
    unset = classifier(d2l, framework, None)        # no setting: no smoothing
    assert float(kit.to_numpy(unset.loss(y_hat, y))) == pytest.approx(plain, rel=1e-5)


@pytest.mark.parametrize('eps', [1.0, -0.1, '0.1', True])
def test_a_smoothing_outside_0_to_1_is_refused_naming_it(d2l, framework, eps):
    model = classifier(d2l, framework, None)
    y_hat, y = tensors(framework, LOGITS, LABELS)
    with pytest.raises(ValueError, match=r'label_smoothing=.* is not allowed: it must be a number '
                                         r'in \[0, 1\)'):
        model.loss(y_hat, y, label_smoothing=eps)


def test_the_validation_step_reports_plain_cross_entropy(d2l, framework, monkeypatch):
    monkeypatch.setenv('D2LMINI_BUDGET', 'full')
    kit = KITS[framework]()
    data = d2l.FashionMNIST(batch_size=16).take(train_examples=16, val_examples=16)
    model = kit.classifier(kit.make_activation_net('relu'))
    batch = next(iter(data.val_dataloader()))
    if framework == 'jax':
        model = type('Smoothed', (type(model),), {'__annotations__': {'label_smoothing': float},
                                                  'label_smoothing': 0.3})()
        params = kit.init_model(model, data)
        reported, _ = model.validation_step(params, batch)
        y_hat, _ = model.forward_pass({'params': params}, batch[:-1], False)
    else:
        model.label_smoothing = 0.3
        kit.init_model(model, data)
        reported, _ = model.validation_step(batch)
        y_hat = model.forward_pass(batch[:-1], training=False)
    def number(tensor):     # a scalar, detached from a PyTorch graph
        return float(kit.to_numpy(tensor.detach() if hasattr(tensor, 'detach') else tensor))
    plain = number(model.loss(y_hat, batch[-1], label_smoothing=0.0))
    smoothed = number(model.loss(y_hat, batch[-1]))
    assert number(reported) == pytest.approx(plain, rel=1e-6)
    assert smoothed != pytest.approx(plain, rel=1e-3)
