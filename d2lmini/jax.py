"""d2lmini for JAX with Flax (linen) and Optax: `from d2lmini import jax as d2l`.

Only what depends on JAX lives here. Flax modules are frozen dataclasses, so a model's
hyperparameters are dataclass fields and its parameters live outside it, in the Trainer's
`state`. The whole train step (forward, gradient, Optax update) is one `jax.jit`.
Tensors are channels-last (NHWC).
"""
import functools
import itertools
import math
import os

# XLA's CPU backend hands convolutions to YNNPACK by default; its own (Eigen) convolutions
# train GoogLeNet here about 1.2x faster (bench/README.md). XLA reads XLA_FLAGS when JAX
# first uses a device, which importing jax does not; a setting of the user's own wins.
if 'xla_cpu_experimental_ynn_fusion_type' not in os.environ.get('XLA_FLAGS', ''):
    os.environ['XLA_FLAGS'] = (os.environ.get('XLA_FLAGS', '')
                               + ' --xla_cpu_experimental_ynn_fusion_type=').strip()

import numpy as np
import jax
import jax.numpy as jnp
from jax import lax
import optax
from flax import linen as nn
from flax import traverse_util
from flax.training import train_state

from d2lmini import fashion_mnist, training
from d2lmini.modules import mean_if
from d2lmini.hyperparameters import HyperParameters, add_to_class  # noqa: F401 (API)
from d2lmini.loading import DataModule  # noqa: F401 (API)
from d2lmini.seeding import draw_seed, set_seed  # noqa: F401 (API)
from d2lmini.summary import print_layer_shape


def cpu():
    return jax.devices('cpu')[0]


def gpu(i=0):
    return jax.devices('gpu')[i]


def num_gpus():
    try:
        return len(jax.devices('gpu'))
    except RuntimeError:    # no GPU backend at all
        return 0


def try_gpu(i=0):
    return gpu(i) if num_gpus() >= i + 1 else cpu()


def new_key():
    """A PRNG key drawn from d2lmini's seeded stream (JAX itself has no global RNG)."""
    return jax.random.PRNGKey(draw_seed())


def init_cnn(params, key):
    """Xavier-uniform weights and zero biases for convolution and dense layers.

    `params` may hold arrays or just shapes (`jax.ShapeDtypeStruct`). All kernels are cut
    from one uniform draw, scaled per layer: one random-number kernel to compile instead of
    one per layer, which on the CPU takes seconds each.
    """
    flat = traverse_util.flatten_dict(params)
    kernels = [path for path in flat if path[-1] == 'kernel']
    sizes = [math.prod(flat[path].shape) for path in kernels]
    uniform = jax.random.uniform(key, (sum(sizes),), minval=-1.0, maxval=1.0)
    start = 0
    for path, size in zip(kernels, sizes):
        shape = flat[path].shape
        receptive_field = math.prod(shape[:-2])     # (..., in, out): HWIO or (in, out)
        fan_in, fan_out = shape[-2] * receptive_field, shape[-1] * receptive_field
        bound = math.sqrt(6 / (fan_in + fan_out))
        flat[path] = (uniform[start:start + size] * bound).reshape(shape).astype(flat[path].dtype)
        start += size
    for path, value in flat.items():
        if path[-1] == 'bias':
            flat[path] = jnp.zeros(value.shape, value.dtype)
        elif path[-1] != 'kernel':
            raise ValueError(f'init_cnn initializes kernels and biases only, not {"/".join(path)}')
    return traverse_util.unflatten_dict(flat)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def max_pool(inputs, window_shape, strides=None, padding='VALID'):
    """`flax.linen.max_pool` for NHWC-style (batch, spatial..., features) inputs, with the same
    outputs and gradients, ties included, computed several times faster on the CPU.

    Flax pools with XLA's `reduce_window`, whose gradient (`select_and_scatter`) the CPU
    backend expands into index-tracking reductions and a scatter: in GoogLeNet's train step
    that took over 40% of the time. Here the forward pass is the elementwise maximum of the
    window's strided views of the padded input, and the backward pass sends each output's
    gradient to the first maximum in window order, as `select_and_scatter` does.
    """
    return functools.reduce(jnp.maximum, _max_pool_views(inputs, window_shape, strides, padding))


def _max_pool_geometry(inputs, window_shape, strides, padding):
    strides = tuple(strides or (1,) * len(window_shape))
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(inputs.shape[1:-1], window_shape, strides, padding)
    pads = ((0, 0), *(tuple(p) for p in padding), (0, 0))
    sizes = [(n + lo + hi - k) // s + 1
             for n, (lo, hi), k, s in zip(inputs.shape[1:-1], pads[1:-1], window_shape, strides)]
    return strides, pads, sizes


def _max_pool_views(inputs, window_shape, strides, padding):
    """The strided views of the padded input, one per window offset, in row-major order."""
    if inputs.ndim != len(window_shape) + 2:
        raise ValueError(f'max_pool expects (batch, spatial..., features), got {inputs.shape}')
    strides, pads, sizes = _max_pool_geometry(inputs, window_shape, strides, padding)
    padded = jnp.pad(inputs, pads, constant_values=-jnp.inf)    # as reduce_window pads
    return tuple(
        lax.slice(padded, (0, *offset, 0),
                  (padded.shape[0], *(o + s * (n - 1) + 1
                                      for o, s, n in zip(offset, strides, sizes)),
                   padded.shape[-1]),
                  (1, *strides, 1))
        for offset in itertools.product(*(range(k) for k in window_shape)))


def _max_pool_fwd(inputs, window_shape, strides, padding):
    outputs = max_pool(inputs, window_shape, strides, padding)
    return outputs, (inputs, outputs)


def _max_pool_bwd(window_shape, strides, padding, residuals, grad):
    inputs, outputs = residuals
    views, to_inputs = jax.vjp(
        lambda x: _max_pool_views(x, window_shape, strides, padding), inputs)
    # The first maximum in window order takes the gradient: `first` is its offset's index.
    first = jnp.full(outputs.shape, len(views) - 1, jnp.int8)
    for index in reversed(range(len(views) - 1)):
        first = jnp.where(views[index] == outputs, jnp.int8(index), first)
    # Computed once and stored: fused into each of its nine uses, it would be recomputed.
    first, grad = lax.optimization_barrier((first, grad))
    return to_inputs(tuple(jnp.where(first == index, grad, 0) for index in range(len(views))))


max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def layer_name(layer):
    return getattr(layer, '__name__', None) or layer.__class__.__name__


class Module(nn.Module, HyperParameters):
    """Base class of the book's models. Subclasses declare hyperparameters as fields.

    Methods that work on an unbound module (or on parameters passed in) are marked
    `nn.nowrap`, so that Flax does not try to set the module up when they are called.
    """

    @nn.nowrap
    def save_hyperparameters(self, ignore=()):
        """Nothing to do: Flax modules are dataclasses, fields already are attributes."""

    @nn.nowrap
    def loss(self, y_hat, y):
        raise NotImplementedError

    def __call__(self, X, *args, **kwargs):
        return self.net(X, *args, **kwargs)

    @nn.nowrap
    def training_step(self, params, batch):
        return self.loss(self.apply({'params': params}, *batch[:-1]), batch[-1])

    @nn.nowrap
    def validation_step(self, params, batch):
        y_hat = self.apply({'params': params}, *batch[:-1])
        return self.loss(y_hat, batch[-1]), self.accuracy(y_hat, batch[-1])

    @nn.nowrap
    def configure_optimizers(self):
        return optax.sgd(self.lr)

    @nn.nowrap
    def apply_init(self, inputs, init=None, key=None):
        """Parameters for inputs like `inputs`, optionally re-initialized by `init`."""
        key = new_key() if key is None else key
        if init is None:
            return jax.jit(self.init)(key, *inputs)['params']     # jit: eager init is slow
        # `init` draws every parameter anew, so Flax's own values are not needed: the
        # shapes are, and eval_shape traces them without computing (or compiling) anything.
        return init(jax.eval_shape(self.init, key, *inputs)['params'], key)

    @nn.nowrap
    def layer_summary(self, X_shape, key=None):
        # Shapes only: eval_shape traces the network without computing anything.
        jax.eval_shape(functools.partial(self.init, method=self._print_layer_shapes),
                       new_key() if key is None else key, jnp.zeros(X_shape))

    def _print_layer_shapes(self, X):
        for layer in self.net.layers:
            X = layer(X)
            print_layer_shape(layer_name(layer), X.shape)
        return X


class Classifier(Module):
    @nn.nowrap
    def loss(self, y_hat, y, averaged=True):
        losses = optax.softmax_cross_entropy_with_integer_labels(y_hat, y)
        return mean_if(losses, averaged)

    @nn.nowrap
    def accuracy(self, y_hat, y, averaged=True):
        correct = (y_hat.argmax(axis=1) == y).astype(jnp.float32)
        return mean_if(correct, averaged)


class FashionMNIST(fashion_mnist.FashionMNIST):
    layout = 'NHWC'

    @staticmethod
    def to_framework(images, labels):
        return jnp.asarray(images), jnp.asarray(labels)


class Trainer(training.Trainer):
    """After `fit`, the trained parameters are in `trainer.state.params`."""

    cpu, gpu, count_gpus = staticmethod(cpu), staticmethod(gpu), staticmethod(num_gpus)

    def fit(self, model, data, params=None):
        """`params`: where to start (e.g. from `model.apply_init`); default: Flax's init."""
        self.initial_params = params
        with jax.default_device(self.device):
            super().fit(model, data)

    def prepare_model(self, model, first_batch):
        params = self.initial_params
        if params is None:
            params = model.apply_init(first_batch[:-1])
        optimizer = model.configure_optimizers()
        if self.gradient_clip_val > 0:
            optimizer = optax.chain(optax.clip_by_global_norm(self.gradient_clip_val), optimizer)
        state = train_state.TrainState.create(apply_fn=model.apply, params=params, tx=optimizer)
        # On the device from the start, as the step's outputs will be: parameters left
        # uncommitted (as `apply_init` makes them) would make `jit` compile the step twice.
        self.state = jax.device_put(state, self.device)

        def train_step(state, batch):
            loss, grads = jax.value_and_grad(model.training_step)(state.params, batch)
            return state.apply_gradients(grads=grads), loss

        # Donating the old state lets XLA update parameters in place (not supported on CPU).
        self.compiled_train_step = jax.jit(train_step, donate_argnums=0 if self.on_gpu else ())
        self.compiled_eval_step = jax.jit(model.validation_step)

    def prepare_batch(self, batch):
        return tuple(jax.device_put(a, self.device) for a in batch)

    def train_step(self, batch):
        self.state, loss = self.compiled_train_step(self.state, batch)
        return loss

    def eval_step(self, batch):
        return list(self.compiled_eval_step(self.state.params, batch))

    def to_numpy(self, scalars):
        return np.asarray(jnp.stack(scalars))
