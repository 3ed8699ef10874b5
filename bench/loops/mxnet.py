"""MXNet Gluon: the model hybridized (one cached graph), Gluon's SGD Trainer."""
import mxnet as mx
from mxnet import autograd, gluon


def version():
    return f'mxnet {mx.__version__}'


def wait(batch):
    mx.nd.waitall()


class HandLoop:
    def __init__(self, model, params, lr, device):
        model.collect_params().reset_ctx(device)
        model.hybridize(static_alloc=True, static_shape=True)
        self.model, self.device = model, device
        self.optimizer = gluon.Trainer(model.collect_params(), 'sgd', {'learning_rate': lr})
        self.loss = gluon.loss.SoftmaxCrossEntropyLoss()

    def epoch(self, loader):
        losses = []
        for X, y in loader:
            X, y = X.as_in_context(self.device), y.as_in_context(self.device)
            with autograd.record():
                loss = self.loss(self.model(X), y).mean()
            loss.backward()
            self.optimizer.step(1)
            losses.append(loss)
        losses = mx.nd.concat(*losses, dim=0).asnumpy()
        mx.nd.waitall()     # the losses are ready before the last backward pass and update
        return losses

    def evaluate(self, X, y):
        X, y = X.as_in_context(self.device), y.as_in_context(self.device)
        return float(self.loss(self.model(X), y).mean().asscalar())
