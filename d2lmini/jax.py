"""d2lmini for JAX with Flax (linen) and Optax: `from d2lmini import jax as d2l`.

Only what depends on JAX lives here. Flax modules are frozen dataclasses, so a model's
hyperparameters are dataclass fields and its parameters live outside it, in the Trainer's
`state`. The whole train step (forward, gradient, Optax update) is one `jax.jit`.
Tensors are channels-last (NHWC).

On several devices (`Trainer(num_gpus=N)`, see `d2lmini.devices`) the same jitted step runs
over a `jax.sharding.Mesh` of them: the state is replicated (`NamedSharding(mesh, P())`), each
batch split along its first axis (`P('batch')`), and XLA partitions the step, all-reducing
the gradients and BatchNorm's batch statistics, so it computes what one device would. A CPU
device is one of XLA's host platform devices: `D2LMINI_CPU_DEVICES=N` (read when this module
is imported, before JAX starts) sets `jax_num_cpu_devices`, as
`XLA_FLAGS=--xla_force_host_platform_device_count=N` would. Several hosts are not supported
yet (`jax.distributed.initialize`).
"""
import functools
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
from jax.sharding import Mesh, NamedSharding, PartitionSpec, SingleDeviceSharding
import optax
import flax.serialization
from flax import linen as nn
from flax.linen.linear import canonicalize_padding
from jax import lax
from flax import traverse_util
from flax.training import train_state

from d2lmini import (chapter_code, costs, devices, fashion_mnist, initializers, jax_max_pool,
                     kept_runs, training, windows)
from d2lmini.steps import mean_if, smoothing_of
from d2lmini.hyperparameters import HyperParameters, add_to_class  # noqa: F401 (API)
from d2lmini.loading import DataModule  # noqa: F401 (API)
from d2lmini.seeding import draw_seed, set_seed  # noqa: F401 (API)
from d2lmini.callback import Callback  # noqa: F401 (API)
from d2lmini.costs import Chip, parameter_table, roofline_table  # noqa: F401 (API)
from d2lmini.intensity_plot import plot_intensity  # noqa: F401 (API)
from d2lmini.summary import layer_label, print_layer_shape
from d2lmini.jax_max_pool import max_pool  # noqa: F401 (API: d2l.max_pool)

load_chapter = chapter_code.loader('jax')   # d2l.load_chapter('googlenet').GoogleNet
# d2l.kept_run('googlenet'), d2l.plot_kept({...}), d2l.plot_beside_kept(trainer, 'googlenet')
kept_run, plot_kept, plot_beside_kept = kept_runs.bound('jax')


def _ask_for_cpu_devices():
    """`D2LMINI_CPU_DEVICES=N`: N host platform devices, if JAX has not started yet (if it
    has, the Trainer's start line says how many it found)."""
    count = devices.cpu_devices_requested()
    if count is None or 'xla_force_host_platform_device_count' in os.environ.get('XLA_FLAGS', ''):
        return
    try:
        jax.config.update('jax_num_cpu_devices', count)
    except RuntimeError:    # JAX already started: its devices stay as they are
        pass


_ask_for_cpu_devices()


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
    """A PRNG key drawn from d2lmini's seeded 'keys' stream (JAX itself has no global RNG)."""
    return jax.random.PRNGKey(draw_seed('keys'))


def definition_order(path):
    """Sort key that puts Flax parameter paths in the order the model defines them: numbered
    submodules by number (layers_2 before layers_10; a jitted init returns its dicts with
    sorted keys), kernel before bias."""
    def key(part):
        name, _, index = part.rpartition('_')
        return (name, int(index)) if index.isdigit() else (part, -1)
    return [key(part) for part in path[:-1]], (path[-1] != 'kernel', path[-1])


def init_cnn(params, key=None):
    """Xavier-uniform weights and zero biases for convolution and dense layers, unit scales
    for normalization layers; returns the new params pytree (float32 arrays).

    `params` may hold arrays or just shapes (`jax.ShapeDtypeStruct`). The kernels are drawn
    by `d2lmini.initializers` in definition order (see `definition_order`), so one seed gives
    the same weights in every framework; `key` is not used (it is accepted so that
    `apply_init` can pass one to any init function).
    """
    flat = traverse_util.flatten_dict(params)
    for path in sorted(flat, key=definition_order):
        if path[-1] == 'kernel':
            kernel = initializers.channels_last_kernel(tuple(flat[path].shape))
            flat[path] = jnp.asarray(kernel, flat[path].dtype)
    for path, value in flat.items():
        if path[-1] == 'bias':
            flat[path] = jnp.zeros(value.shape, value.dtype)
        elif path[-1] == 'scale':       # normalization layers start as the identity
            flat[path] = jnp.ones(value.shape, value.dtype)
        elif path[-1] != 'kernel':
            raise ValueError(f'init_cnn initializes kernels, biases and normalization scales '
                             f'only, not {"/".join(path)}')
    return traverse_util.unflatten_dict(flat)


class Module(nn.Module, HyperParameters, windows.WindowReporting):
    """Base class of the book's models. Subclasses declare hyperparameters as fields.

    `training` is True in the Trainer's training steps and False elsewhere: layers that
    behave differently read it, e.g. `nn.BatchNorm(use_running_average=not self.training)`
    and `nn.Dropout(rate, deterministic=not self.training)`. Methods that work on an unbound
    module (or on parameters passed in) are marked `nn.nowrap`, so that Flax does not try
    to set the module up when they are called.
    """
    input_layout = 'NHWC'     # of its batches (window_report)
    training: bool = False

    @nn.nowrap
    def save_hyperparameters(self, ignore=()):
        """Nothing to do: Flax modules are dataclasses, fields already are attributes."""

    @nn.nowrap
    def loss(self, y_hat, y):
        raise NotImplementedError

    def __call__(self, X, *args, **kwargs):
        return self.net(X, *args, **kwargs)

    @nn.nowrap
    def forward_pass(self, variables, inputs, training, key=None):
        """(logits, updated collections) for `inputs` under `variables` ({'params': ...,
        plus collections such as 'batch_stats'}). With `training`, collections other than
        'params' are updated (returned; {} if none) and `key` seeds dropout."""
        model = self if self.training == training else self.clone(training=training)
        mutable = [name for name in variables if name != 'params'] if training else []
        rngs = None if key is None else {'dropout': key}
        if mutable:
            return model.apply(variables, *inputs, rngs=rngs, mutable=mutable)
        return model.apply(variables, *inputs, rngs=rngs), {}

    @nn.nowrap
    def training_step(self, params, batch, collections=None, key=None):
        """(mean loss, updated collections) of a batch in training mode."""
        y_hat, updates = self.forward_pass({'params': params, **(collections or {})},
                                           batch[:-1], True, key)
        return self.loss(y_hat, batch[-1]), updates

    @nn.nowrap
    def validation_step(self, params, batch, collections=None):
        y_hat, _ = self.forward_pass({'params': params, **(collections or {})}, batch[:-1], False)
        return self.validation_loss(y_hat, batch[-1]), self.accuracy(y_hat, batch[-1])

    @nn.nowrap
    def validation_loss(self, y_hat, y):
        """The loss validation reports (see d2lmini.steps.Steps.validation_loss)."""
        return self.loss(y_hat, y)

    @nn.nowrap
    def configure_optimizers(self):
        return optax.sgd(self.lr)

    @nn.nowrap
    def apply_init(self, inputs, init=None, key=None):
        """The 'params' collection (a pytree of float32 arrays) for inputs like `inputs`,
        optionally re-initialized by `init(params_or_shapes, key)`. Other collections (such
        as BatchNorm's 'batch_stats') are made by the Trainer."""
        key = new_key() if key is None else key
        if 'params' not in jax.eval_shape(self.init, key, *inputs):
            raise training.no_parameters_error(self)     # not Flax's KeyError: 'params'
        if init is None:
            return jax.jit(self.init)(key, *inputs)['params']     # jit: eager init is slow
        # `init` draws every parameter anew, so Flax's own values are not needed: the
        # shapes are, and eval_shape traces them without computing (or compiling) anything.
        return init(jax.eval_shape(self.init, key, *inputs)['params'], key)

    @nn.nowrap
    def layer_summary(self, X_shape):
        """Print the output shape of each top-level layer of `self.net` (or, without a `net`,
        of each child module of the model), in call order, for an input of `X_shape` (NHWC),
        in inference mode. Shapes only: nothing is computed, and no key is drawn from
        d2lmini's seeded stream."""
        jax.eval_shape(functools.partial(self.init, method=self._print_layer_shapes),
                       jax.random.PRNGKey(0), jnp.zeros(X_shape, jnp.float32))

    def _print_layer_shapes(self, X):
        net = getattr(self, 'net', None)
        if isinstance(net, nn.Sequential):
            for layer in net.layers:
                X = layer(X)
                print_layer_shape(layer_label(None, layer), X.shape)
            return X
        top = net if isinstance(net, nn.Module) else self

        def report(call, args, kwargs, context):
            output = call(*args, **kwargs)
            module = context.module
            if context.method_name == '__call__' and module.parent is top:
                print_layer_shape(layer_label(module.name, module), output.shape)
            return output
        with nn.intercept_methods(report):
            return self(X)

    @nn.nowrap
    def cost_report(self, X_shape, unknown='raise'):
        """The multiply-adds, parameters, bytes moved and arithmetic intensity of each leaf
        layer, and their totals, for an input of `X_shape` (NHWC): a `d2lmini.costs.Report`
        (print it for a table), the same as in the other frameworks. Shapes only: nothing is
        computed, and no key is drawn from d2lmini's seeded stream.

        Leaves are Flax modules that call no other module, the functions that are layers of
        an `nn.Sequential` (pooling, activations: each is classified by its jaxpr, see
        `describe_function`) and every call of `d2l.max_pool`. A function called inside a
        module's own `__call__` (`nn.max_pool(x)` in a compact method, a concatenation) is
        not seen: its MACs are none, but its bytes are missing. `unknown`: 'raise'
        (CostError naming a layer the report does not know) or 'zero'."""
        layers = []
        jax.eval_shape(functools.partial(
            self.init, method=lambda module, X: module._describe_layers(X, layers)),
            jax.random.PRNGKey(0), jnp.zeros(X_shape, jnp.float32))
        return costs.Report(layers, X_shape[0], unknown)

    def _describe_layers(self, X, layers):
        """Run the model on X, appending a `costs.Layer` to `layers` for each leaf called."""
        net = getattr(self, 'net', None)
        top = net if isinstance(net, nn.Module) else self
        where = {'child': 0, 'path': ''}       # the top-level child running, and its path
        positions = {}                          # top-level children by order of first call
        calls = [0]                             # module calls so far: a leaf makes none

        def observe_pool(inputs, outputs, window_shape, strides, pads):
            layers.append(describe('max_pool', f'{where["path"]}/max_pool', 'max_pool',
                                   inputs.shape, outputs.shape, kernel=window_shape,
                                   stride=strides or 1, padding=pads))

        def describe(kind, name, class_name, in_shape, out_shape, **details):
            return costs.Layer.from_batches(name, class_name, where['child'], kind, in_shape,
                                            out_shape, 'NHWC', **details)

        def run_sequential(module, X):
            for index, layer in enumerate(module.layers):
                if module is top:
                    where['child'] = index
                if isinstance(layer, nn.Module):
                    X = layer(X)
                    continue
                where['path'] = f'{"/".join(module.scope.path)}/layers_{index}'
                pools, Y = len(layers), layer(X)
                if len(layers) == pools:        # no d2l.max_pool inside: look at its jaxpr
                    kind, details = describe_function(layer, X)
                    name = getattr(layer, '__name__', type(layer).__name__)
                    layers.append(describe(kind, where['path'], name, X.shape, Y.shape,
                                           **details))
                X = Y
            return X

        def intercept(call, args, kwargs, context):
            module = context.module
            if context.method_name != '__call__':
                return call(*args, **kwargs)
            calls[0] += 1
            before, outer = calls[0], dict(where)
            if module.parent is top and not isinstance(top, nn.Sequential):
                where['child'] = positions.setdefault(module.name, len(positions))
            where['path'] = '/'.join(module.scope.path)
            try:
                if isinstance(module, nn.Sequential) and len(args) == 1 and not kwargs:
                    return run_sequential(module, args[0])
                output = call(*args, **kwargs)
                if calls[0] == before:          # a leaf
                    layers.append(describe_module(module, args[0], output, describe))
                return output
            finally:
                where.update(outer)
        jax_max_pool.observers.append(observe_pool)
        try:
            with nn.intercept_methods(intercept):
                return self(X)
        finally:
            jax_max_pool.observers.remove(observe_pool)


def describe_module(module, X, Y, describe):
    """The `costs.Layer` of a leaf Flax module that turned X into Y (NHWC), made by
    `describe(kind, name, class_name, in_shape, out_shape, **details)`."""
    name, class_name = '/'.join(module.scope.path), type(module).__name__
    if isinstance(module, nn.Conv) and not isinstance(module, nn.ConvTranspose):
        return describe('conv', name, class_name, X.shape, Y.shape, kernel=module.kernel_size,
                        stride=module.strides or 1, groups=module.feature_group_count,
                        bias=module.use_bias, padding=conv_padding(module, X))
    if isinstance(module, nn.Dense):
        return describe('dense', name, class_name, X.shape, Y.shape, in_channels=X.shape[-1],
                        out_channels=module.features, bias=module.use_bias)
    kind = 'free' if isinstance(module, nn.Dropout) else 'unknown'
    return describe(kind, name, class_name, X.shape, Y.shape)


def conv_padding(module, X):
    """An `nn.Conv`'s zero padding for input X (NHWC) as (low, high) pairs per spatial axis:
    its `padding` ('SAME', 'VALID', 'CAUSAL', an int, or ints or pairs per axis) resolved as
    Flax resolves it ('SAME': what `lax.padtype_to_pads` gives for this input). 'CIRCULAR'
    and 'REFLECT' pad with input pixels, not zeros: ValueError."""
    kernel = tuple(module.kernel_size)
    padding = canonicalize_padding(module.padding, len(kernel))
    if padding == 'CAUSAL':
        return [(k - 1, 0) for k in kernel]
    if isinstance(padding, str) and padding in ('SAME', 'VALID'):
        strides = module.strides or 1
        strides = (strides,) * len(kernel) if isinstance(strides, int) else tuple(strides)
        return lax.padtype_to_pads(X.shape[1:-1], kernel, strides, padding)
    if isinstance(padding, str):
        raise ValueError(f'{module.name}: padding {padding!r} is not zero padding')
    return padding


def _equations(jaxpr):
    """The equations of a jaxpr, those of the jaxprs inside it (jit, custom rules) included."""
    for eqn in jaxpr.eqns:
        yield eqn
        for value in eqn.params.values():
            inner = getattr(value, 'jaxpr', value)
            if hasattr(inner, 'eqns'):
                yield from _equations(inner)


def describe_function(function, X):
    """(kind, details) of a function layer for `costs.Layer`, from its jaxpr for input X
    (NHWC): a pool (`reduce_window_max`/`_sum`, as `nn.max_pool`/`nn.avg_pool` make it), a
    global pool (a sum or maximum over the spatial axes, as `X.mean(axis=(1, 2))`), 'free'
    for any other function that keeps the number of values (activations, reshapes), else
    'unknown'."""
    closed = jax.make_jaxpr(function)(jax.ShapeDtypeStruct(X.shape, X.dtype))
    eqns = {eqn.primitive.name: eqn for eqn in _equations(closed.jaxpr)}
    Y = closed.out_avals[0]
    for primitive, kind in (('reduce_window_max', 'max_pool'),
                            ('reduce_window_sum', 'avg_pool')):
        if primitive in eqns:
            params = eqns[primitive].params
            return kind, dict(kernel=params['window_dimensions'][1:-1],
                              stride=params['window_strides'][1:-1],
                              padding=params['padding'][1:-1])
    channels_kept = Y.shape[0] == X.shape[0] and Y.shape[-1] == X.shape[-1]
    if X.ndim >= 3 and channels_kept and all(d == 1 for d in Y.shape[1:-1]):
        # over all spatial axes: a global pool, even of a 1x1 map (which keeps the size)
        spatial = set(range(1, X.ndim - 1))
        for primitive, kind in (('reduce_sum', 'global_avg_pool'),
                                ('reduce_max', 'global_max_pool')):
            if primitive in eqns and spatial <= set(eqns[primitive].params['axes']):
                return kind, {}
    if Y.size == X.size:
        return 'free', {}
    return 'unknown', {}


class Classifier(Module):
    """A model whose outputs are logits over classes.

    `loss(y_hat, y, averaged=True, label_smoothing=None)`: softmax cross-entropy in nats of
    logits `y_hat`, float32 (N, C),
    against integer labels `y`, int32 (N,): a scalar (the mean) if `averaged`, else (N,).
    `accuracy(y_hat, y, averaged=True)`: the fraction of argmax predictions equal to `y`, a
    float32 scalar in [0, 1] if `averaged`, else (N,) of 0.0/1.0. Inputs and results are
    jax.Arrays.
    Label smoothing (Szegedy et al., 2016, section 7): set `label_smoothing` = eps in [0, 1) on
    the model (a hyperparameter; default 0) and the training loss is the cross-entropy against
    targets (1 - eps) * one_hot(y) + eps / C, through the framework's own function
    (`optax.smooth_labels` on one-hot labels, then `optax.softmax_cross_entropy`). Validation
    reports the plain cross-entropy (`validation_loss`), so that runs with and without it
    compare.
    """
    @nn.nowrap
    def loss(self, y_hat, y, averaged=True, label_smoothing=None):
        eps = smoothing_of(self, label_smoothing)
        if eps:
            one_hot = jax.nn.one_hot(y, y_hat.shape[-1], dtype=y_hat.dtype)
            targets = optax.smooth_labels(one_hot, eps)
            losses = optax.softmax_cross_entropy(y_hat, targets)
        else:
            losses = optax.softmax_cross_entropy_with_integer_labels(y_hat, y)
        return mean_if(losses, averaged)

    @nn.nowrap
    def validation_loss(self, y_hat, y):
        return self.loss(y_hat, y, label_smoothing=0.0)

    @nn.nowrap
    def accuracy(self, y_hat, y, averaged=True):
        correct = (y_hat.argmax(axis=1) == y).astype(jnp.float32)
        return mean_if(correct, averaged)


class FashionMNIST(fashion_mnist.FashionMNIST):
    layout = 'NHWC'

    @staticmethod
    def to_framework(images, labels):
        return jnp.asarray(images), jnp.asarray(labels)


class TrainState(train_state.TrainState):
    """Flax's TrainState, plus the model's other collections (BatchNorm's 'batch_stats') and
    the PRNG key from which each step's dropout key is derived (with the step number, so a
    resumed run draws the same keys)."""
    collections: dict
    key: jax.Array


class Trainer(training.Trainer):
    """After `fit`, the trained parameters are in `trainer.state.params` (and BatchNorm
    statistics in `trainer.state.collections`)."""

    framework = 'jax'
    cpu, gpu, count_gpus = staticmethod(cpu), staticmethod(gpu), staticmethod(num_gpus)
    data_parallel = True

    def count_cpu_devices(self):
        return len(jax.devices('cpu'))

    def devices_for(self, placement):
        return jax.devices(placement.kind)[:placement.count]

    def _shardings(self):
        """(replicated, split): where the state goes, and where a batch goes (split along its
        first axis over the devices). One device: both are that device."""
        if len(self.devices) == 1:
            single = SingleDeviceSharding(self.device)
            return single, single
        mesh = Mesh(np.array(self.devices), ('batch',))
        return NamedSharding(mesh, PartitionSpec()), NamedSharding(mesh, PartitionSpec('batch'))

    def fit(self, model, data, params=None):
        """`params`: where to start (e.g. from `model.apply_init`); default: where the last
        fit of this model with this Trainer ended, or else Flax's own initialization."""
        if params is not None:
            self._prepared = None       # start anew from `params`
        self.initial_params = params
        self.replicated, self.split = self._shardings()
        with jax.default_device(self.device):
            super().fit(model, data)

    def device_model(self):
        return self.device.device_kind if self.on_gpu else None

    def versions(self):
        import flax
        return {'jax': jax.__version__, 'jaxlib': jax.lib.__version__, 'flax': flax.__version__,
                'optax': optax.__version__}

    def threads(self):
        import os
        return {'XLA_FLAGS': os.environ.get('XLA_FLAGS')}

    def prepare_model(self, model, first_batch):
        inputs, key = first_batch[:-1], new_key()
        params = self.initial_params
        self._example_inputs = tuple(jax.ShapeDtypeStruct((1, *a.shape[1:]), a.dtype) for a in inputs)
        shapes = jax.eval_shape(model.init, key, *inputs)
        if 'params' not in shapes:
            raise training.no_parameters_error(model)
        others = [name for name in shapes if name != 'params']
        variables = {}
        if params is None or others:    # Flax's init: for params, or for the other collections
            variables = jax.jit(model.init)(key, *inputs)
        params = variables['params'] if params is None else params
        optimizer = model.configure_optimizers()
        if self.gradient_clip_val > 0:
            optimizer = optax.chain(optax.clip_by_global_norm(self.gradient_clip_val), optimizer)
        state = TrainState.create(apply_fn=model.apply, params=params, tx=optimizer,
                                  collections={name: variables[name] for name in others},
                                  key=new_key())
        # On the devices from the start, as the step's outputs will be: parameters left
        # uncommitted (as `apply_init` makes them) would make `jit` compile the step twice.
        self.state = jax.device_put(state, self.replicated)

        def train_step(state, batch):
            key = jax.random.fold_in(state.key, state.step)
            (loss, collections), grads = jax.value_and_grad(model.training_step, has_aux=True)(
                state.params, batch, state.collections, key)
            return state.apply_gradients(grads=grads, collections=collections or state.collections), loss

        def eval_step(state, batch):
            return model.validation_step(state.params, batch, state.collections)

        # Donating the old state lets XLA update parameters in place (not supported on CPU).
        self.donate = self.on_gpu
        # The state stays replicated; the batch's sharding (split) makes the step data parallel.
        self.compiled_train_step = jax.jit(train_step, donate_argnums=0 if self.donate else (),
                                           out_shardings=self.replicated)
        self.compiled_eval_step = jax.jit(eval_step, out_shardings=self.replicated)

    def prepare_batch(self, batch):
        # The Trainer refuses a training batch the devices cannot share evenly; a validation
        # batch that they cannot (the last one) is evaluated whole on each.
        split = self.split if len(batch[-1]) % len(self.devices) == 0 else self.replicated
        return tuple(jax.device_put(a, split) for a in batch)

    def train_step(self, batch):
        self.state, loss = self.compiled_train_step(self.state, batch)
        return loss

    def eval_step(self, batch):
        return list(self.compiled_eval_step(self.state, batch))

    def model_structure(self):
        # The traced forward pass, for one example: its operations and shapes are the model.
        variables = {'params': self.state.params, **self.state.collections}
        traced = jax.make_jaxpr(lambda v, x: self.model.forward_pass(v, x, False)[0])(
            variables, self._example_inputs)
        # and the model class's own code (its optimizer, its loss), which the trace leaves out
        return str(traced) + '\n' + training.user_code({type(self.model)})

    def output_shape(self, model, inputs):
        # Shapes only: eval_shape traces the forward pass without computing it.
        variables = {'params': self.state.params, **self.state.collections}
        return jax.eval_shape(lambda v, x: model.forward_pass(v, x, False)[0],
                              variables, tuple(inputs)).shape

    def to_numpy(self, scalars):
        return np.asarray(jnp.stack(scalars))

    def parameter_arrays(self):
        variables = {'params': self.state.params, **self.state.collections}
        return {'/'.join(path): np.array(value)
                for path, value in traverse_util.flatten_dict(variables).items()}

    def snapshot(self):
        # The state is immutable, so keeping it is a copy; donated buffers are reused, though.
        return jax.tree_util.tree_map(jnp.copy, self.state) if self.donate else self.state

    def restore(self, snapshot):
        self.state = snapshot

    def save_state(self, directory):
        (directory / 'state.msgpack').write_bytes(flax.serialization.to_bytes(self.state))

    def load_state(self, directory):
        restored = flax.serialization.from_bytes(self.state,
                                                 (directory / 'state.msgpack').read_bytes())
        # The checkpoint holds whole arrays: it resumes on any number of devices.
        self.state = jax.device_put(restored, self.replicated)
