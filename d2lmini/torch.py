"""d2lmini for PyTorch: `from d2lmini import torch as d2l`.

Only what depends on PyTorch lives here: the model base class, the train and eval steps,
devices and tensor conversion. Everything else comes from the shared core.
"""
import torch
from torch import nn
from torch.nn import functional as F

from d2lmini import fashion_mnist, training
from d2lmini.modules import Steps, mean_if
from d2lmini.hyperparameters import HyperParameters, add_to_class  # noqa: F401 (API)
from d2lmini.loading import DataModule  # noqa: F401 (API)
from d2lmini.seeding import register_framework_seeder, set_seed  # noqa: F401 (API)
from d2lmini.summary import print_layer_shape


def cpu():
    return torch.device('cpu')


def gpu(i=0):
    return torch.device(f'cuda:{i}')


def num_gpus():
    return torch.cuda.device_count()


def try_gpu(i=0):
    return gpu(i) if num_gpus() >= i + 1 else cpu()


register_framework_seeder(torch.manual_seed)


def init_cnn(module):
    """Xavier-uniform weights and zero biases for convolution and dense layers."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.xavier_uniform_(module.weight)
        if module.bias is not None:
            nn.init.zeros_(module.bias)


class Module(Steps, nn.Module, HyperParameters):
    """Base class of the book's models: a network plus its loss and optimizer."""

    def __init__(self):
        super().__init__()

    def loss(self, y_hat, y):
        raise NotImplementedError

    def forward(self, X):
        return self.net(X)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def apply_init(self, inputs, init=None):
        """Run one forward pass so lazy layers learn their shapes, then initialize."""
        with torch.no_grad():
            self.forward(*inputs)
        if init is not None:
            self.net.apply(init)

    def layer_summary(self, X_shape):
        X = torch.randn(*X_shape)
        with torch.no_grad():
            for layer in self.net:
                X = layer(X)
                print_layer_shape(layer.__class__.__name__, X.shape)


class Classifier(Module):
    def loss(self, y_hat, y, averaged=True):
        return F.cross_entropy(y_hat, y, reduction='mean' if averaged else 'none')

    def accuracy(self, y_hat, y, averaged=True):
        correct = (y_hat.argmax(dim=1) == y).to(torch.float32)
        return mean_if(correct, averaged)


class FashionMNIST(fashion_mnist.FashionMNIST):
    layout = 'NCHW'

    @staticmethod
    def to_framework(images, labels):
        return torch.from_numpy(images), torch.from_numpy(labels).long()


class Trainer(training.Trainer):
    cpu, gpu, count_gpus = staticmethod(cpu), staticmethod(gpu), staticmethod(num_gpus)

    @property
    def memory_format(self):
        # On the CPU, oneDNN's convolutions run fastest channels-last (NHWC): GoogLeNet trains
        # about 1.2x faster than in the default NCHW. Values and shapes stay the same.
        return torch.channels_last if self.device.type == 'cpu' else torch.preserve_format

    def prepare_model(self, model, first_batch):
        model.to(self.device, memory_format=self.memory_format)
        self.optimizer = model.configure_optimizers()

    def prepare_batch(self, batch):
        return [a.to(self.device, non_blocking=True, memory_format=self.memory_format
                     if a.dim() == 4 else torch.preserve_format) for a in batch]

    def train_step(self, batch):
        self.model.train()
        loss = self.model.training_step(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.gradient_clip_val > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.gradient_clip_val)
        self.optimizer.step()
        return loss.detach()

    def eval_step(self, batch):
        self.model.eval()
        with torch.no_grad():
            return [value.detach() for value in self.model.validation_step(batch)]

    def to_numpy(self, scalars):
        return torch.stack(scalars).cpu().numpy()
