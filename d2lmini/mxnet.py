"""d2lmini for MXNet 1.9.1 (Gluon): `from d2lmini import mxnet as d2l`.

Only what depends on MXNet lives here; models are HybridBlocks and the Trainer hybridizes
them, so the forward and backward passes run as one compiled graph.

On several devices (`Trainer(num_gpus=N)`, see `d2lmini.devices`), the model's parameters
live on one context per device (`mx.gpu(i)`, or `mx.cpu(i)` for `D2LMINI_CPU_DEVICES=N`); each
training batch is split into equal parts (`gluon.utils.split_and_load`), each device runs the
forward and backward pass of its part, and Gluon's Trainer sums the gradients through a
kvstore ('device') before every device applies the same update. Dropout draws its masks on
each device from a seed of its own: the same distribution as on one device, other numbers.
A model with BatchNorm is refused on several devices (Gluon's BatchNorm keeps statistics per
device; d2lmini does not swap in its SyncBatchNorm yet). Several machines (kvstore
'dist_sync') are not supported yet. MXNet's CPU wheel has no GPU support: GPUs need a CUDA
build of MXNet.
"""
import json
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

from d2lmini import (chapter_code, costs, devices, fashion_mnist, initializers,  # noqa: E402
                     kept_runs, training, windows)
from d2lmini.steps import Steps, mean_if, smoothing_of  # noqa: E402
from d2lmini.hyperparameters import HyperParameters, add_to_class  # noqa: E402,F401 (API)
from d2lmini.loading import DataModule  # noqa: E402,F401 (API)
from d2lmini.seeding import register_framework_seeder, set_seed  # noqa: E402,F401 (API)
from d2lmini.callback import Callback  # noqa: F401 (API)
from d2lmini.costs import Chip, parameter_table, roofline_table  # noqa: F401 (API)
from d2lmini.intensity_plot import plot_intensity  # noqa: F401 (API)
from d2lmini.summary import shape_printing_hook, top_level_children  # noqa: E402

load_chapter = chapter_code.loader('mxnet')   # d2l.load_chapter('googlenet').GoogleNet
# d2l.kept_run('googlenet'), d2l.plot_kept({...}), d2l.plot_beside_kept(trainer, 'googlenet')
kept_run, plot_kept, plot_beside_kept = kept_runs.bound('mxnet')


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

class _XavierUniform(init.Initializer):
    """Xavier-uniform weights drawn by `d2lmini.initializers` (one seed, the same weights in
    every framework); biases zero and normalization scales one, as Gluon's defaults are.
    Gluon initializes parameters in the order the first forward pass meets them."""

    def _init_weight(self, name, array):
        array[:] = initializers.xavier_uniform(tuple(array.shape))


# Pass to `initialize` or `apply_init`.
init_cnn = _XavierUniform()


def initialize_missing(block, **kwargs):
    """Initialize the parameters that are not yet; keep those that are (Gluon warns about
    each one it skips, which here is expected)."""
    with warnings.catch_warnings():
        warnings.simplefilter('ignore')
        block.initialize(**kwargs)


class Module(Steps, gluon.HybridBlock, HyperParameters, windows.WindowReporting):
    """Base class of the book's models: a network plus its loss and optimizer."""
    input_layout = 'NCHW'     # of its batches (window_report)

    def __init__(self):
        super().__init__()

    def loss(self, y_hat, y):
        raise NotImplementedError

    def hybrid_forward(self, F, X):
        return self.net(X)

    def configure_optimizers(self):
        return gluon.Trainer(self.collect_params(), 'sgd', {'learning_rate': self.lr})

    def apply_init(self, inputs, init=None, ctx=None):
        """Initialize every parameter with `init` (default uniform; shapes are inferred on the
        forward pass that follows), then run one forward pass. Returns None: the weights live in
        the model."""
        self.initialize(init=init or mx.init.Uniform(), ctx=ctx or cpu(), force_reinit=True)
        self(*inputs)

    def layer_summary(self, X_shape):
        """Print the output shape of each top-level child of `self.net` (or, without a `net`,
        of the model), in the order the forward pass calls them, for a random input of
        `X_shape` (NCHW). Runs in inference mode without recording gradients; parameters
        that exist are left unchanged (missing ones are initialized, as the first forward
        pass would), and so is MXNet's global RNG."""
        # Gluon keeps a block's children in registration order
        children = top_level_children(self, lambda net: isinstance(net, gluon.Block),
                                       lambda top: top._children.items())
        self._forward_with_hooks(X_shape, [child.register_forward_hook(shape_printing_hook(name))
                                           for name, child in children])

    def cost_report(self, X_shape, unknown='raise'):
        """The multiply-adds, parameters, bytes moved and arithmetic intensity of each leaf
        layer, and their totals, for an input of `X_shape` (NCHW): a `d2lmini.costs.Report`
        (print it for a table), the same as in the other frameworks. Leaves are described
        from one forward pass with `layer_summary`'s care (nothing changes but missing
        parameters, which are initialized). `unknown`: 'raise' (CostError naming a layer
        the report does not know) or 'zero'."""
        children = top_level_children(self, lambda net: isinstance(net, gluon.Block),
                                      lambda top: top._children.items())
        layers, hooks = [], []
        for position, (child_name, child) in enumerate(children):
            for name, block in leaf_blocks(child, child_name):
                hooks.append(block.register_forward_hook(
                    costs.recording_hook(layers, describe_layer, name, position)))
        self._forward_with_hooks(X_shape, hooks)
        return costs.Report(layers, X_shape[0], unknown)

    def _forward_with_hooks(self, X_shape, hooks):
        """One forward pass of a random input of `X_shape` in inference mode, imperatively
        (so that the hooks run), then detach `hooks`."""
        initialize_missing(self)
        X = mx.nd.array(np.random.default_rng(0).standard_normal(X_shape), dtype='float32')
        # A hybridized model runs as one graph, past its children's hooks: run it imperatively.
        hybridized, flags = self._active, dict(self._flags)
        self.hybridize(False)
        try:
            with autograd.predict_mode():
                self(X)
        finally:
            for hook in hooks:
                hook.detach()
            if hybridized:
                self.hybridize(True, **flags)


def _counted(block):
    """Whether the cost report describes `block` itself: convolutions, dense layers and
    pooling, even with an activation block inside (`activation='relu'`)."""
    return (isinstance(block, gluon.nn.conv_layers._Conv) and block._op_name == 'Convolution'
            or isinstance(block, (gluon.nn.Dense, gluon.nn.conv_layers._Pooling)))


def leaf_blocks(block, name):
    """(name, block) of each block in `block` that the cost report describes: those it
    counts, and blocks without children."""
    if _counted(block) or not block._children:
        yield name, block
        return
    for child_name, child in block._children.items():
        yield from leaf_blocks(child, f'{name}.{child_name}')


# Leaf blocks that compute no multiply-adds and are not rows of a cost report (elementwise
# functions, reshapes); anything else unknown is reported (d2lmini/costs.py).
FREE_LAYERS = (gluon.nn.Activation, gluon.nn.LeakyReLU, gluon.nn.ELU, gluon.nn.Flatten,
               gluon.nn.Dropout)


def describe_layer(block, name, child, in_shape, out_shape):
    """A `d2lmini.costs.Layer` for a leaf block that turned an input of `in_shape` into an
    output of `out_shape` (NCHW batch shapes)."""
    def layer(kind, **details):
        return costs.Layer.from_batches(name, type(block).__name__, child, kind, in_shape,
                                        out_shape, 'NCHW', **details)
    if isinstance(block, gluon.nn.Dense):
        if block._flatten:      # it reads its input as one vector per example
            in_shape = (in_shape[0], int(np.prod(in_shape[1:])))
        return layer('dense', in_channels=block.weight.shape[1], out_channels=block._units,
                     bias=block.bias is not None)
    if _counted(block):
        options = block._kwargs
        if 'num_group' in options:
            return layer('conv', kernel=options['kernel'], stride=options['stride'],
                         groups=options['num_group'], bias=not options['no_bias'],
                         padding=options['pad'])
        if options['global_pool']:
            return layer(f'global_{options["pool_type"]}_pool')
        return layer(f'{options["pool_type"]}_pool', kernel=options['kernel'],
                     stride=options['stride'], padding=options['pad'])
    return layer('free' if isinstance(block, FREE_LAYERS) else 'unknown')


class Classifier(Module):
    """A model whose outputs are logits over classes.

    `loss(y_hat, y, averaged=True, label_smoothing=None)`: softmax cross-entropy in nats of
    logits `y_hat`, float32 (N, C),
    against integer labels `y`, int32 (N,): a scalar (the mean) if `averaged`, else (N,).
    `accuracy(y_hat, y, averaged=True)`: the fraction of argmax predictions equal to `y`, a
    float32 scalar in [0, 1] if `averaged`, else (N,) of 0.0/1.0. Inputs and results are
    NDArrays.
    Label smoothing (Szegedy et al., 2016, section 7): set `label_smoothing` = eps in [0, 1) on
    the model (a hyperparameter; default 0) and the training loss is the cross-entropy against
    targets (1 - eps) * one_hot(y) + eps / C, through the framework's own loss on smoothed
    one-hot targets (`SoftmaxCrossEntropyLoss(sparse_label=False)`: Gluon's loss has no
    smoothing option). Validation reports the plain cross-entropy (`validation_loss`), so that
    runs with and without it compare.
    """
    def loss(self, y_hat, y, averaged=True, label_smoothing=None):
        eps = smoothing_of(self, label_smoothing)
        if eps:
            classes = y_hat.shape[-1]
            targets = mx.nd.one_hot(y, classes, dtype=y_hat.dtype) * (1 - eps) + eps / classes
            losses = gluon.loss.SoftmaxCrossEntropyLoss(sparse_label=False)(y_hat, targets)
        else:
            losses = gluon.loss.SoftmaxCrossEntropyLoss()(y_hat, y)
        return mean_if(losses, averaged)

    def validation_loss(self, y_hat, y):
        return self.loss(y_hat, y, label_smoothing=0.0)

    def accuracy(self, y_hat, y, averaged=True):
        correct = (y_hat.argmax(axis=1) == y.astype(y_hat.dtype)).astype('float32')
        return mean_if(correct, averaged)


class FashionMNIST(fashion_mnist.FashionMNIST):
    layout = 'NCHW'

    @staticmethod
    def to_framework(images, labels):
        return mx.nd.array(images, dtype='float32'), mx.nd.array(labels, dtype='int32')


def batchnorm_layers(model):
    """The structural names of `model`'s BatchNorm blocks ('net.1')."""
    names, stack = [], [('', model)]
    while stack:
        prefix, block = stack.pop()
        if isinstance(block, gluon.nn.BatchNorm):
            names.append(prefix)
        stack.extend((f'{prefix}.{name}'.lstrip('.'), child)
                     for name, child in reversed(block._children.items()))
    return names


def update_counts(optimizer, device):
    """{parameter index: updates so far} of an MXNet optimizer on `device` (each device keeps its
    own; they are equal in a data-parallel run)."""
    return optimizer._all_index_update_counts.get(device.device_id, {})


def _state_structure(state, name, arrays):
    """The nesting of an optimizer state (None, an NDArray, or a tuple or list of these) as
    JSON, its arrays put into `arrays` under names derived from `name`."""
    if state is None:
        return None
    if isinstance(state, (tuple, list)):
        return [_state_structure(s, f'{name}.{i}', arrays) for i, s in enumerate(state)]
    arrays[name] = state
    return name


def _state_from(spec, arrays, ctx):
    if spec is None:
        return None
    if isinstance(spec, list):
        return tuple(_state_from(s, arrays, ctx) for s in spec)
    return arrays[spec].as_in_context(ctx)


class Trainer(training.Trainer):
    """The Trainer of `d2lmini.training`, plus `hybridize`: whether to compile the model into
    one graph (`HybridBlock.hybridize`) before training, which makes each step several times
    faster. A model whose forward pass does what a graph cannot (Python control flow on
    values, NDArray-only functions) needs `hybridize=False`."""
    framework = 'mxnet'
    cpu, gpu, count_gpus = staticmethod(cpu), staticmethod(gpu), staticmethod(num_gpus)
    data_parallel = True

    def count_cpu_devices(self):
        # MXNet makes a context for any cpu(i): as many as D2LMINI_CPU_DEVICES asks for
        return devices.cpu_devices_requested() or 1

    def devices_for(self, placement):
        if placement.count == 1:
            return super().devices_for(placement)
        return [getattr(mx, placement.kind)(i) for i in range(placement.count)]

    def __init__(self, max_epochs, num_gpus=0, gradient_clip_val=0, checkpoint_dir=None,
                 callbacks=(), hybridize=True):
        if not isinstance(hybridize, bool):
            raise ValueError(f'hybridize={hybridize!r} is not allowed: use True or False.')
        super().__init__(max_epochs, num_gpus, gradient_clip_val, checkpoint_dir, callbacks)
        self.hybridize = hybridize

    def device_model(self):
        return None     # MXNet 1.9 does not report the GPU's name

    def versions(self):
        return {'mxnet': mx.__version__}

    def threads(self):
        return {'OMP_NUM_THREADS': os.environ.get('OMP_NUM_THREADS')}

    def prepare_model(self, model, first_batch):
        if not list(model.collect_params().values()):
            raise training.no_parameters_error(model)     # not gluon.Trainer's raw TypeError
        layers = batchnorm_layers(model)
        if len(self.devices) > 1 and layers:
            raise devices.batchnorm_refused(
                model, layers, self.placement,
                "Gluon's BatchNorm keeps statistics per device, and d2lmini does not swap in "
                "its SyncBatchNorm yet",
                'Train it on one device (num_gpus=0 or 1, or without D2LMINI_CPU_DEVICES).')
        initialize_missing(model, ctx=self.devices)
        model.collect_params().reset_ctx(self.devices)
        self.optimizer = model.configure_optimizers()
        if len(self.devices) > 1:
            # The kvstore sums the gradients only; each device's updater applies the update, so
            # that the optimizer state stays where snapshot and checkpoints read it.
            self.optimizer._kvstore_params['update_on_kvstore'] = False
        if self.hybridize:
            model.hybridize(static_alloc=True, static_shape=True)
        try:
            model(*first_batch[:-1])        # also completes deferred initialization
        except (AssertionError, AttributeError, TypeError, ValueError, mx.base.MXNetError) as error:
            if not self.hybridize:
                raise
            model.hybridize(False)
            raise TypeError(
                f'The MXNet Trainer hybridizes {type(model).__name__} (compiles its forward pass '
                f'into one graph, for speed), and this model cannot be hybridized: '
                f'{type(error).__name__}: {str(error).splitlines()[0] if str(error) else ""}. '
                f'Make its forward pass use only operators of the F argument (no NDArray-only '
                f'calls or Python decisions on values), or train it as it is with '
                f'd2l.Trainer(..., hybridize=False).') from error

    def moved_since_prepared(self, model):
        # another Trainer put its parameters on other contexts
        return any(p.list_ctx() != self.devices for p in model.collect_params().values())

    def parameters(self):
        # By structure ('net.0.weight'), as save_parameters names them: Gluon's own names
        # carry per-process counters (conv0_weight, conv1_weight, ...).
        return self.model._collect_params_with_prefix()

    def parameter_arrays(self):
        return {name: p.data(self.device).asnumpy() for name, p in self.parameters().items()}

    def _updaters(self):
        """One per device; each holds the same optimizer state, on its device."""
        if not self.optimizer._kv_initialized:     # Gluon creates the optimizer state lazily
            self.optimizer._init_kvstore()         # (and a second call, a new kvstore)
        return self.optimizer._updaters

    def _updater(self):
        return self._updaters()[0]

    def snapshot(self):
        return ({name: p.data(self.device).copy() for name, p in self.parameters().items()},
                self._updater().get_states(dump_optimizer=False))

    def restore(self, snapshot):
        for name, p in self.parameters().items():
            p.set_data(snapshot[0][name])       # on every device
        for updater in self._updaters():
            updater.set_states(snapshot[1])

    # Gluon's own `Trainer.save_states` pickles the optimizer and its state, and
    # `load_states` unpickles whatever the file holds, which runs code a crafted file carries.
    # So the state arrays go into MXNet's NDArray file format (`nd.save`, data only) and the
    # rest (the state's nesting, the update counts) into JSON.
    def save_state(self, directory):
        self.model.save_parameters(str(directory / 'model.params'))
        updater, arrays = self._updater(), {}
        structure = {str(index): _state_structure(state, f'{index}', arrays)
                     for index, state in updater.states.items()}
        mx.nd.save(str(directory / 'optimizer.nd'), arrays)
        (directory / 'optimizer.json').write_text(json.dumps(dict(
            structure=structure, num_update=updater.optimizer.num_update,
            index_update_count={str(k): v for k, v in update_counts(
                updater.optimizer, self.device).items()})))

    def load_state(self, directory):
        self.model.load_parameters(str(directory / 'model.params'), ctx=self.devices)
        meta = json.loads((directory / 'optimizer.json').read_text())
        arrays = mx.nd.load(str(directory / 'optimizer.nd')) or {}     # none saved: []
        if not isinstance(arrays, dict):
            raise ValueError('optimizer.nd holds no named arrays')
        for updater, device in zip(self._updaters(), self.devices):
            updater.states = {int(index): _state_from(spec, arrays, device)
                              for index, spec in meta['structure'].items()}
            updater.states_synced = dict.fromkeys(updater.states, False)
        optimizer = self._updater().optimizer       # shared by the updaters
        optimizer.num_update = int(meta['num_update'])
        counts = {int(k): int(v) for k, v in meta['index_update_count'].items()}
        # MXNet keeps each device's update counts apart (Adam's bias correction reads them) and
        # points `_index_update_count` at the device being updated before each update: the
        # counts go where the updates will look for them, one copy per device.
        for device in self.devices:
            optimizer._all_index_update_counts[device.device_id] = dict(counts)
        optimizer._index_update_count = optimizer._all_index_update_counts[self.device.device_id]

    def prepare_batch(self, batch):
        return [a.as_in_context(self.device) for a in batch]

    def split_batch(self, batch):
        """A training batch as the step takes it: one part per device (a list of batches),
        equal in size, each on its device."""
        if len(self.devices) == 1:
            return [batch]
        parts = [gluon.utils.split_and_load(a, self.devices, even_split=True) for a in batch]
        return [list(part) for part in zip(*parts)]

    def model_structure(self):
        blocks, stack = [], [self.model]
        while stack:
            block = stack.pop()
            blocks.append(block)
            stack.extend(block._children.values())
        return repr(self.model) + '\n' + training.user_code({type(b) for b in blocks})

    def output_shape(self, model, inputs):
        # The whole batch, not one example: a hybridized model keeps one graph per shape.
        return tuple(model(*inputs).shape)

    def labels_to_numpy(self, labels):
        return labels.asnumpy()

    def train_step(self, batch):
        # MXNet's random state can be seeded but not read, so it cannot be checkpointed:
        # seeding it anew from the run's seed and the step makes dropout's draws the same
        # in a resumed run as in an uninterrupted one.
        # Each device from a seed of its own: on GPUs the same seed would draw the same dropout
        # masks on each. (MXNet may keep one generator for all CPU contexts; the draws are
        # then still seeded, hence repeatable, just not per device.)
        seed = self.step_seed()
        for index, device in enumerate(self.devices):
            mx.random.seed(seed + index, ctx=device)
        parts, count = self.split_batch(batch), len(self.devices)
        with autograd.record():
            losses = [self.model.training_step(part) for part in parts]  # each a part's mean
        for loss in losses:
            loss.backward()
        # One device: the loss is already the batch's mean. Several: the kvstore sums the parts'
        # gradients, and the update divides the sum by `count`, the mean of the parts' means.
        if count > 1:
            self.optimizer.allreduce_grads()
        if self.gradient_clip_val > 0:      # the whole batch's gradient, `count` times over
            for device in self.devices:
                grads = [p.grad(device) for p in self.model.collect_params().values()
                         if p.grad_req != 'null']
                gluon.utils.clip_global_norm(grads, self.gradient_clip_val * count)
        if count > 1:
            self.optimizer.update(count)
            return mx.nd.add_n(*[loss.as_in_context(self.device) for loss in losses]) / count
        self.optimizer.step(1)
        return losses[0]

    def eval_step(self, batch):
        return list(self.model.validation_step(batch))

    def to_numpy(self, scalars):
        # MXNet's engine is asynchronous and a loss is ready before its step's backward pass
        # and update have run: wait for all queued work, so that a sync point (and with it the
        # epoch's measured time) covers every step before it.
        mx.nd.waitall()
        return mx.nd.concat(*[s.reshape((1,)) for s in scalars], dim=0).asnumpy()
