"""d2lmini for MXNet 1.9.1 (Gluon): `from d2lmini import mxnet as d2l`.

Only what depends on MXNet lives here; models are HybridBlocks and the Trainer hybridizes
them, so the forward and backward passes run as one compiled graph.
"""
import os
import warnings

import numpy as np

# MXNet 1.9.1, its last release, still uses the `numpy.bool` alias that numpy 1.24 removed
# (numpy 2 brought it back). Restoring it lets MXNet run on numpy 1.24-1.26 too.
if 'bool' not in np.__dict__:
    np.bool = bool
# By default MXNet's OpenMP pool uses a single core; give it all of them.
os.environ.setdefault('OMP_NUM_THREADS', str(os.cpu_count() or 1))

import mxnet as mx  # noqa: E402 (must come after the two fixes above)
from mxnet import autograd, gluon, init  # noqa: E402

from d2lmini import fashion_mnist, training  # noqa: E402
from d2lmini.modules import Steps, mean_if  # noqa: E402
from d2lmini.hyperparameters import HyperParameters, add_to_class  # noqa: E402,F401 (API)
from d2lmini.loading import DataModule  # noqa: E402,F401 (API)
from d2lmini.seeding import register_framework_seeder, set_seed  # noqa: E402,F401 (API)
from d2lmini.summary import print_layer_shape  # noqa: E402


def cpu():
    return mx.cpu()


def gpu(i=0):
    return mx.gpu(i)


def num_gpus():
    return mx.context.num_gpus()


def try_gpu(i=0):
    return gpu(i) if num_gpus() >= i + 1 else cpu()


def _seed_mxnet(seed):
    mx.random.seed(seed)


register_framework_seeder(_seed_mxnet)

# Xavier-uniform weights (Gluon layers already default to zero biases): pass to `initialize`
# or `apply_init`.
init_cnn = init.Xavier(rnd_type='uniform', factor_type='avg', magnitude=3)


def initialize_missing(block, **kwargs):
    """Initialize the parameters that are not yet; keep those that are (Gluon warns about
    each one it skips, which here is expected)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        block.initialize(**kwargs)


class Module(Steps, gluon.HybridBlock, HyperParameters):
    """Base class of the book's models: a network plus its loss and optimizer."""

    def __init__(self):
        super().__init__()

    def loss(self, y_hat, y):
        raise NotImplementedError

    def hybrid_forward(self, F, X):
        return self.net(X)

    def configure_optimizers(self):
        return gluon.Trainer(self.collect_params(), 'sgd', {'learning_rate': self.lr})

    def apply_init(self, inputs, init=None, ctx=None):
        """Initialize (deferred until shapes are known), then run one forward pass."""
        self.initialize(init=init or mx.init.Uniform(), ctx=ctx or cpu(), force_reinit=True)
        self(*inputs)

    def layer_summary(self, X_shape):
        initialize_missing(self)
        X = mx.nd.random.normal(shape=X_shape)
        for layer in self.net:
            X = layer(X)
            print_layer_shape(layer.__class__.__name__, X.shape)


class Classifier(Module):
    def loss(self, y_hat, y, averaged=True):
        losses = gluon.loss.SoftmaxCrossEntropyLoss()(y_hat, y)
        return mean_if(losses, averaged)

    def accuracy(self, y_hat, y, averaged=True):
        correct = (y_hat.argmax(axis=1) == y.astype(y_hat.dtype)).astype('float32')
        return mean_if(correct, averaged)


class FashionMNIST(fashion_mnist.FashionMNIST):
    layout = 'NCHW'

    @staticmethod
    def to_framework(images, labels):
        return mx.nd.array(images, dtype='float32'), mx.nd.array(labels, dtype='int32')


class Trainer(training.Trainer):
    cpu, gpu, count_gpus = staticmethod(cpu), staticmethod(gpu), staticmethod(num_gpus)

    def prepare_model(self, model, first_batch):
        initialize_missing(model, ctx=self.device)
        model.collect_params().reset_ctx(self.device)
        model.hybridize(static_alloc=True, static_shape=True)
        self.optimizer = model.configure_optimizers()

    def prepare_batch(self, batch):
        return [a.as_in_context(self.device) for a in batch]

    def train_step(self, batch):
        with autograd.record():
            loss = self.model.training_step(batch)
        loss.backward()
        if self.gradient_clip_val > 0:
            grads = [p.grad(self.device) for p in self.model.collect_params().values()
                     if p.grad_req != 'null']
            gluon.utils.clip_global_norm(grads, self.gradient_clip_val)
        self.optimizer.step(1)  # the loss is already a batch mean
        return loss

    def eval_step(self, batch):
        return list(self.model.validation_step(batch))

    def to_numpy(self, scalars):
        # MXNet's engine is asynchronous and a loss is ready before its step's backward pass
        # and update have run: wait for all queued work, so that a sync point (and with it the
        # epoch's measured time) covers every step before it.
        mx.nd.waitall()
        return mx.nd.concat(*[s.reshape((1,)) for s in scalars], dim=0).asnumpy()
