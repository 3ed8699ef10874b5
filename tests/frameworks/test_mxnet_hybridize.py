"""The MXNet Trainer hybridizes models: a model that cannot be hybridized gets an error that
says so, and trains with `hybridize=False`."""
import numpy as np
import pytest

from test_frameworks import small_data


@pytest.fixture(autouse=True)
def full_budget(monkeypatch):
    monkeypatch.setenv('D2LMINI_BUDGET', 'full')


def imperative_model(d2l):
    import mxnet as mx
    from mxnet import gluon

    class Model(d2l.Classifier):
        def __init__(self):
            super().__init__()
            self.lr = 0.1
            self.dense = gluon.nn.Dense(10)

        def hybrid_forward(self, F, X):
            # mx.nd instead of F: fine imperatively, but a graph passes Symbols, not NDArrays
            return self.dense(mx.nd.relu(X))
    return Model()


def test_unhybridizable_model_is_explained_and_trains_without_hybridize():
    from d2lmini import mxnet as d2l
    d2l.set_seed(0)
    data = small_data(d2l, train_examples=640, val_examples=200)
    with pytest.raises(TypeError, match=r'hybridizes Model .*cannot be hybridized.*'
                                        r'hybridize=False'):
        d2l.Trainer(max_epochs=1).fit(imperative_model(d2l), data)
    trainer = d2l.Trainer(max_epochs=1, hybridize=False)
    trainer.fit(imperative_model(d2l), data)
    assert np.isfinite(trainer.losses).all() and trainer.losses[-1] < trainer.losses[0]


def test_hybridize_must_be_a_bool():
    from d2lmini import mxnet as d2l
    with pytest.raises(ValueError, match="hybridize='no'"):
        d2l.Trainer(max_epochs=1, hybridize='no')
