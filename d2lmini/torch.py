"""d2lmini for PyTorch: `from d2lmini import torch as d2l`.

Only what depends on PyTorch lives here: the model base class, the train and eval steps,
devices and tensor conversion. Everything else comes from the shared core.
"""
import copy

import torch
from torch import nn
from torch.nn import functional as F

from d2lmini import chapter_code, costs, fashion_mnist, initializers, training, windows
from d2lmini.steps import Steps, mean_if
from d2lmini.hyperparameters import HyperParameters, add_to_class  # noqa: F401 (API)
from d2lmini.loading import DataModule  # noqa: F401 (API)
from d2lmini.seeding import register_framework_seeder, set_seed  # noqa: F401 (API)
from d2lmini.callback import Callback  # noqa: F401 (API)
from d2lmini.costs import Chip, parameter_table, roofline_table  # noqa: F401 (API)
from d2lmini.intensity_plot import plot_intensity  # noqa: F401 (API)
from d2lmini.summary import shape_printing_hook, top_level_children

load_chapter = chapter_code.loader('pytorch')   # d2l.load_chapter('googlenet').GoogleNet


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
    """Xavier-uniform weights and zero biases for convolution and dense layers (pass to
    `apply_init`), drawn by `d2lmini.initializers`: one seed, the same weights in every
    framework."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        with torch.no_grad():
            weights = initializers.xavier_uniform(tuple(module.weight.shape))
            module.weight.copy_(torch.from_numpy(weights))
            if module.bias is not None:
                module.bias.zero_()


class Module(Steps, nn.Module, HyperParameters, windows.WindowReporting):
    """Base class of the book's models: a network plus its loss and optimizer."""
    input_layout = 'NCHW'     # of its batches (window_report)

    def __init__(self):
        super().__init__()

    def loss(self, y_hat, y):
        raise NotImplementedError

    def forward(self, X):
        return self.net(X)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def apply_init(self, inputs, init=None):
        """Run one forward pass so lazy layers learn their shapes, then apply `init` to every
        submodule (e.g. `init_cnn`). Returns None: the weights live in the model."""
        with torch.no_grad():
            self.forward(*inputs)
        if init is not None:
            self.apply(init)

    def layer_summary(self, X_shape):
        """Print the output shape of each top-level child of `self.net` (or, without a `net`,
        of the model), in the order the forward pass calls them, for a random input of
        `X_shape` (NCHW). Runs in eval mode without gradients: parameters, buffers (such as
        BatchNorm statistics), the training flag and the global RNG are left unchanged."""
        children = top_level_children(self, lambda net: isinstance(net, nn.Module),
                                       lambda top: top.named_children())
        self._forward_with_hooks(X_shape, [child.register_forward_hook(shape_printing_hook(name))
                                           for name, child in children])

    def cost_report(self, X_shape, unknown='raise'):
        """The multiply-adds, parameters, bytes moved and arithmetic intensity of each leaf
        layer, and their totals, for an input of `X_shape` (NCHW): a `d2lmini.costs.Report`
        (print it for a table). Leaves are found as `layer_summary`'s children are, and
        described from one forward pass with the same care (nothing changes). `unknown`:
        'raise' (CostError naming a layer the report does not know) or 'zero'."""
        children = top_level_children(self, lambda net: isinstance(net, nn.Module),
                                       lambda top: top.named_children())
        layers, hooks = [], []
        for position, (child_name, child) in enumerate(children):
            for name, module in child.named_modules(prefix=child_name):
                if next(module.children(), None) is None:       # a leaf
                    hooks.append(module.register_forward_hook(
                        costs.recording_hook(layers, describe_layer, name, position)))
        self._forward_with_hooks(X_shape, hooks)
        return costs.Report(layers, X_shape[0], unknown)


    def _forward_with_hooks(self, X_shape, hooks):
        """One forward pass of a random input of `X_shape` in eval mode without gradients,
        then remove `hooks`: parameters, buffers, the training flag and the global RNG are
        left unchanged."""
        X = torch.randn(*X_shape, generator=torch.Generator().manual_seed(0))
        was_training = self.training
        try:
            self.eval()
            with torch.no_grad():
                self.forward(X.to(next(self.parameters(), X).device))
        finally:
            self.train(was_training)
            for hook in hooks:
                hook.remove()


# Leaf modules that compute no multiply-adds and are not rows of a cost report (elementwise
# functions, reshapes); anything else unknown is reported (d2lmini/costs.py).
FREE_LAYERS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
               nn.Hardswish, nn.Identity, nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout1d,
               nn.Dropout2d, nn.Dropout3d)


def conv_padding(module):
    """A convolution's zero padding, as `costs.Layer` takes it: its `padding` (ints), or for
    'valid' none and for 'same' what PyTorch pads: dilation * (kernel - 1) per axis, the
    extra pixel after."""
    if module.padding == 'valid':
        return 0
    if module.padding == 'same':
        totals = [d * (k - 1) for d, k in zip(module.dilation, module.kernel_size)]
        return [(t // 2, t - t // 2) for t in totals]
    return module.padding


def describe_layer(module, name, child, in_shape, out_shape):
    """A `d2lmini.costs.Layer` for a leaf module that turned an input of `in_shape` into an
    output of `out_shape` (NCHW batch shapes)."""
    def layer(kind, **details):
        return costs.Layer.from_batches(name, type(module).__name__, child, kind, in_shape,
                                        out_shape, 'NCHW', **details)
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return layer('conv', kernel=module.kernel_size, stride=module.stride,
                     groups=module.groups, bias=module.bias is not None,
                     padding=conv_padding(module))
    if isinstance(module, nn.Linear):
        return layer('dense', in_channels=module.in_features, out_channels=module.out_features,
                     bias=module.bias is not None)
    pools = {nn.MaxPool1d: 'max_pool', nn.MaxPool2d: 'max_pool', nn.MaxPool3d: 'max_pool',
             nn.AvgPool1d: 'avg_pool', nn.AvgPool2d: 'avg_pool', nn.AvgPool3d: 'avg_pool'}
    if type(module) in pools:
        return layer(pools[type(module)], kernel=module.kernel_size, stride=module.stride,
                     padding=module.padding)
    if (isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                            nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d))
            and all(d == 1 for d in out_shape[2:])):
        return layer('global_max_pool' if 'Max' in type(module).__name__ else 'global_avg_pool')
    if isinstance(module, (nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d)):
        # (left, right, top, bottom, ...): the last axis first
        pairs = [module.padding[i:i + 2] for i in range(0, len(module.padding), 2)]
        return layer('pad', padding=pairs[::-1])
    return layer('free' if isinstance(module, FREE_LAYERS) else 'unknown')


class Classifier(Module):
    """A model whose outputs are logits over classes.

    `loss(y_hat, y, averaged=True)`: softmax cross-entropy in nats of logits `y_hat`, float32 (N, C),
    against integer labels `y`, int64 (N,): a scalar (the mean) if `averaged`, else (N,).
    `accuracy(y_hat, y, averaged=True)`: the fraction of argmax predictions equal to `y`, a
    float32 scalar in [0, 1] if `averaged`, else (N,) of 0.0/1.0. Inputs and results are
    torch.Tensors.
    """
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
    framework = 'pytorch'
    cpu, gpu, count_gpus = staticmethod(cpu), staticmethod(gpu), staticmethod(num_gpus)

    @property
    def memory_format(self):
        # On the CPU, oneDNN's convolutions run fastest channels-last (NHWC): GoogLeNet trains
        # 1.2x to 1.6x faster than in the default NCHW (bench/README.md). Values and shapes
        # stay the same.
        return torch.channels_last if self.device.type == 'cpu' else torch.preserve_format

    def device_model(self):
        return torch.cuda.get_device_name(self.device) if self.on_gpu else None

    def versions(self):
        return {'torch': torch.__version__}

    def threads(self):
        return {'torch_num_threads': torch.get_num_threads(),
                'torch_num_interop_threads': torch.get_num_interop_threads()}

    def prepare_model(self, model, first_batch):
        if any(nn.parameter.is_lazy(p) for p in model.parameters()):
            # Lazy layers not yet shaped by `apply_init`: one forward pass gives them their
            # shapes (and PyTorch's default initialization) before they can be moved.
            with torch.no_grad():
                model(*[a.to(self.device) for a in first_batch[:-1]])
        if next(model.parameters(), None) is None:
            raise training.no_parameters_error(model)     # not SGD's "empty parameter list"
        if not any(p.requires_grad for p in model.parameters()):
            raise training.no_parameters_error(model, frozen=True)
        model.to(self.device, memory_format=self.memory_format)
        self.optimizer = model.configure_optimizers()

    def model_structure(self):
        return repr(self.model) + '\n' + training.user_code({type(m) for m in self.model.modules()})

    def output_shape(self, model, inputs):
        was_training = model.training
        try:
            model.eval()
            with torch.no_grad():
                return tuple(model(*[a[:1] for a in inputs]).shape)
        finally:
            model.train(was_training)

    def parameter_arrays(self):
        return {name: value.detach().cpu().numpy().copy()
                for name, value in self.model_and_optimizer()[0].items()}

    def model_and_optimizer(self):
        return self.model.state_dict(), self.optimizer.state_dict()

    def snapshot(self):
        model_state, optimizer_state = self.model_and_optimizer()
        return ({name: value.clone() for name, value in model_state.items()},
                copy.deepcopy(optimizer_state))

    def restore(self, snapshot):
        self.model.load_state_dict(snapshot[0])
        self.optimizer.load_state_dict(snapshot[1])

    def save_state(self, directory):
        model_state, optimizer_state = self.model_and_optimizer()
        # The random generators too: dropout draws from them, and a resumed run must draw
        # what the uninterrupted one would have.
        rng = {'cpu': torch.get_rng_state(),
               'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}
        torch.save({'model': model_state, 'optimizer': optimizer_state, 'rng': rng},
                   directory / 'state.pt')

    def load_state(self, directory):
        state = torch.load(directory / 'state.pt', map_location=self.device, weights_only=True)
        self.restore((state['model'], state['optimizer']))
        torch.set_rng_state(state['rng']['cpu'].cpu())
        if state['rng']['cuda'] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all([s.cpu() for s in state['rng']['cuda']])

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
