"""d2lmini for TensorFlow (Keras 3): `from d2lmini import tensorflow as d2l`.

Only what depends on TensorFlow lives here; the train step is one `tf.function`.
Tensors are channels-last (NHWC).

On several devices (`Trainer(num_gpus=N)`, see `d2lmini.devices`) the step runs under a
`tf.distribute.MirroredStrategy` (d2lmini/tensorflow_mirrored.py). A CPU device is a logical
CPU device: `D2LMINI_CPU_DEVICES=N` (read when this module is imported, before TensorFlow
initializes its devices) splits the CPU into N.
"""
import contextlib
import os

import numpy as np


@contextlib.contextmanager
def _native_stderr_muted():
    """Mute file descriptor 2 for a while.

    TensorFlow's C++ start-up messages (CUDA probing, CPU features) bypass Python and
    TF_CPP_MIN_LOG_LEVEL; in a notebook they would land in whichever cell first touches a
    device. Python exceptions are unaffected: they are raised, and shown, as usual.
    """
    devnull, saved = os.open(os.devnull, os.O_WRONLY), os.dup(2)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
with _native_stderr_muted():
    import tensorflow as tf
    from d2lmini import tensorflow_mirrored
    tensorflow_mirrored.split_cpu()      # D2LMINI_CPU_DEVICES, before the devices exist
    tf.config.list_logical_devices()     # initializes the devices now, quietly

from d2lmini import chapter_code, costs, fashion_mnist, initializers, kept_runs, training, windows
from d2lmini.steps import Steps, smoothing_of  # noqa: E402
from d2lmini.hyperparameters import HyperParameters, add_to_class  # noqa: F401 (API)
from d2lmini.loading import DataModule  # noqa: F401 (API)
from d2lmini.seeding import register_framework_seeder, set_seed  # noqa: F401 (API)
from d2lmini.callback import Callback  # noqa: F401 (API)
from d2lmini.costs import Chip, parameter_table, roofline_table  # noqa: F401 (API)
from d2lmini.intensity_plot import plot_intensity  # noqa: F401 (API)
from d2lmini.summary import layer_label, print_layer_shape, top_level_children

load_chapter = chapter_code.loader('tensorflow')   # d2l.load_chapter('googlenet').GoogleNet
# d2l.kept_run('googlenet'), d2l.plot_kept({...}), d2l.plot_beside_kept(trainer, 'googlenet')
kept_run, plot_kept, plot_beside_kept = kept_runs.bound('tensorflow')


def cpu():
    return '/CPU:0'     # device names, for `with tf.device(...)`


def gpu(i=0):
    return f'/GPU:{i}'


def num_gpus():
    return len(tf.config.list_physical_devices('GPU'))


def try_gpu(i=0):
    return gpu(i) if num_gpus() >= i + 1 else cpu()


def _seed_tensorflow(seed):
    # Keras numbers layer names per process (conv2d, conv2d_1, ...), and Grappler's
    # arithmetic optimizer orders the terms of some gradient sums by node name: a second
    # model would be summed in another order, and its run would part from the first after
    # a few steps. Restarting the numbering gives every seeded run the same names.
    tf.keras.backend.clear_session()
    tf.keras.utils.set_random_seed(seed)


register_framework_seeder(_seed_tensorflow)


def sublayers(layer):
    """`layer` and every layer nested in it, depth first."""
    yield layer
    for child in getattr(layer, '_layers', None) or getattr(layer, 'layers', ()):
        yield from sublayers(child)


def init_cnn(layer):
    """Xavier-uniform weights and zero biases for convolution and dense layers (pass to
    `apply_init`), drawn by `d2lmini.initializers`: one seed, the same weights in every
    framework."""
    if isinstance(layer, (tf.keras.layers.Conv2D, tf.keras.layers.Dense)) and layer.built:
        layer.kernel.assign(initializers.channels_last_kernel(tuple(layer.kernel.shape)))
        if layer.bias is not None:
            layer.bias.assign(tf.zeros_like(layer.bias))


class Module(Steps, tf.keras.Model, HyperParameters, windows.WindowReporting):
    """Base class of the book's models: a network plus its loss and optimizer."""
    input_layout = 'NHWC'     # of its batches (window_report)

    def __init__(self):
        super().__init__()
        # Keras sets `self.loss = None` for its own compile(); our loss is a method.
        self.__dict__.pop('loss', None)

    def loss(self, y_hat, y):
        raise NotImplementedError

    def call(self, X, training=False):
        return self.net(X, training=training)

    def forward_pass(self, inputs, training):
        return self(*inputs, training=training)

    def configure_optimizers(self):
        return tf.keras.optimizers.SGD(self.lr)

    def apply_init(self, inputs, init=None):
        """Run one forward pass so layers learn their input shapes, then apply `init` to every
        layer (e.g. `init_cnn`). Returns None: the weights live in the model."""
        self(*inputs)
        if init is not None:
            for layer in sublayers(self):
                init(layer)

    def layer_summary(self, X_shape):
        """Print the output shape of each top-level layer of `self.net` (or, without a `net`,
        of the model), in the order the forward pass calls them, for a random input of
        `X_shape` (NHWC). Runs with `training=False`; weights and TensorFlow's global RNG are
        left unchanged (the input comes from a private NumPy generator)."""
        children = self._top_level_children()
        self._forward_reporting(X_shape, [(layer, lambda inputs, output, name=name, layer=layer:
                                           print_layer_shape(layer_label(name, layer),
                                                             output.shape))
                                          for name, layer in children])

    def cost_report(self, X_shape, unknown='raise'):
        """The multiply-adds, parameters, bytes moved and arithmetic intensity of each leaf
        layer, and their totals, for an input of `X_shape` (NHWC): a `d2lmini.costs.Report`
        (print it for a table), the same as in the other frameworks. Leaves are described
        from one forward pass with `training=False`, as `layer_summary` runs it. `unknown`:
        'raise' (CostError naming a layer the report does not know) or 'zero'."""
        layers, reporters, seen = [], [], set()
        # Built first: a layer may create sublayers in its build(), once it knows its input.
        self._build_for(X_shape)
        for position, (child_name, child) in enumerate(self._top_level_children()):
            for layer in sublayers(child):
                leaf = not (getattr(layer, '_layers', None) or getattr(layer, 'layers', None))
                if leaf and id(layer) not in seen:      # a shared layer: wrapped once
                    seen.add(id(layer))
                    name = child_name or child.name
                    name = name if layer is child else f'{name}/{layer.name}'
                    reporters.append((layer, lambda inputs, output, name=name, layer=layer,
                                      child=position: layers.append(describe_layer(
                                          layer, name, child, inputs.shape, output.shape))))
        self._forward_reporting(X_shape, reporters)
        return costs.Report(layers, X_shape[0], unknown)

    def _top_level_children(self):
        """(name or None, layer) for each top-level layer, as `layer_summary` lists them."""
        def named_layers(top):
            # Keras keeps no child names: a child's name is the attribute that holds it, if any.
            names = {id(value): name for name, value in vars(top).items()}
            return [(names.get(id(layer)), layer)
                    for layer in top._flatten_layers(include_self=False, recursive=False)
                    if not isinstance(layer, tf.keras.layers.InputLayer)]
        return top_level_children(
            self, lambda net: isinstance(net, tf.keras.layers.Layer), named_layers)

    def _build_for(self, X_shape):
        """Build the model (if it is not built) with one forward pass in inference mode of a
        random input of `X_shape`, drawn from a private NumPy generator; returns that input."""
        X = tf.constant(np.random.default_rng(0).standard_normal(X_shape).astype(np.float32))
        if not self.built:
            self(X, training=False)
        return X

    def _forward_reporting(self, X_shape, reporters):
        """One forward pass with `training=False` of a random input of `X_shape`, calling
        `report(inputs, output)` for each (layer, report) of `reporters` whenever that layer
        is called; weights and TensorFlow's global RNG are left unchanged (the input comes
        from a private NumPy generator)."""
        X = self._build_for(X_shape)     # first: building calls the layers too


        def reporting(layer, report):
            call = layer.call

            def call_and_report(inputs, *args, **kwargs):
                output = call(inputs, *args, **kwargs)
                report(inputs, output)
                return output
            return call_and_report
        # Keras layers have no forward hooks: wrap each layer's `call` for one forward pass.
        for layer, report in reporters:
            layer.call = reporting(layer, report)
        try:
            self(X, training=False)
        finally:
            for layer, _ in reporters:
                del layer.call


def variable_ids(model):
    """The identities of the TensorFlow variables under a Keras model's variables."""
    return [id(variable.value) for variable in model.variables]


def _keras_layers(*names):
    return tuple(getattr(tf.keras.layers, name) for name in names)


# What each leaf layer class is to a cost report (d2lmini/costs.py); a layer of none of these
# classes is unknown to it. 'free': elementwise functions and reshapes, not rows of the report.
COST_KINDS = [
    (_keras_layers('Conv1D', 'Conv2D', 'Conv3D'), 'conv'),
    (_keras_layers('Dense'), 'dense'),
    (_keras_layers('MaxPool1D', 'MaxPool2D', 'MaxPool3D'), 'max_pool'),
    (_keras_layers('AveragePooling1D', 'AveragePooling2D', 'AveragePooling3D'), 'avg_pool'),
    (_keras_layers('GlobalMaxPool1D', 'GlobalMaxPool2D', 'GlobalMaxPool3D'), 'global_max_pool'),
    (_keras_layers('GlobalAveragePooling1D', 'GlobalAveragePooling2D', 'GlobalAveragePooling3D'),
     'global_avg_pool'),
    (_keras_layers('ZeroPadding1D', 'ZeroPadding2D', 'ZeroPadding3D'), 'pad'),
    (_keras_layers('Activation', 'ReLU', 'LeakyReLU', 'ELU', 'Softmax', 'Flatten', 'Reshape',
                   'Dropout', 'SpatialDropout2D', 'Identity', 'InputLayer'), 'free'),
]


def keras_padding(padding, in_shape, out_shape, kernel, stride, **_):
    """A Keras layer's `padding` ('valid', 'same' or 'causal') as (before, after) pairs per
    spatial axis of its NHWC batch shapes: 'same' pads total = max((out - 1) * stride + kernel
    - in, 0), total // 2 before and the rest after, as TensorFlow does; 'causal' (Conv1D)
    pads kernel - 1 before."""
    spatial = len(in_shape) - 2
    kernel, stride = [(v,) * spatial if isinstance(v, int) else tuple(v) for v in (kernel, stride)]
    if padding == 'valid':
        return 0
    if padding == 'causal':
        return [(k - 1, 0) for k in kernel]
    if padding != 'same':
        raise ValueError(f'unknown Keras padding {padding!r}')
    totals = [max((o - 1) * s + k - i, 0)
              for i, o, k, s in zip(in_shape[1:-1], out_shape[1:-1], kernel, stride)]
    return [(t // 2, t - t // 2) for t in totals]


def describe_layer(layer, name, child, in_shape, out_shape):
    """A `d2lmini.costs.Layer` for a leaf Keras layer that turned an input of `in_shape` into
    an output of `out_shape` (NHWC batch shapes)."""
    kind = next((kind for types, kind in COST_KINDS if isinstance(layer, types)), 'unknown')
    details = {}
    if kind == 'conv':
        details = dict(kernel=layer.kernel_size, stride=layer.strides, groups=layer.groups,
                       bias=layer.use_bias)
        details['padding'] = keras_padding(layer.padding, in_shape, out_shape, **details)
    elif kind == 'dense':
        details = dict(in_channels=layer.kernel.shape[0], out_channels=layer.units,
                       bias=layer.use_bias)
    elif kind in ('max_pool', 'avg_pool'):
        details = dict(kernel=layer.pool_size, stride=layer.strides)
        details['padding'] = keras_padding(layer.padding, in_shape, out_shape, **details)
    elif kind == 'pad':
        # ((top, bottom), (left, right)) in 2D; ZeroPadding1D keeps its one pair bare
        one_axis = isinstance(layer, tf.keras.layers.ZeroPadding1D)
        details = dict(padding=[layer.padding] if one_axis else layer.padding)
    return costs.Layer.from_batches(name, type(layer).__name__, child, kind, in_shape, out_shape,
                                    'NHWC', **details)


class Classifier(Module):
    """A model whose outputs are logits over classes.

    `loss(y_hat, y, averaged=True, label_smoothing=None)`: softmax cross-entropy in nats of
    logits `y_hat`, float32 (N, C),
    against integer labels `y`, int32 (N,): a scalar (the mean) if `averaged`, else (N,).
    `accuracy(y_hat, y, averaged=True)`: the fraction of argmax predictions equal to `y`, a
    float32 scalar in [0, 1] if `averaged`, else (N,) of 0.0/1.0. Inputs and results are
    tf.Tensors.
    Label smoothing (Szegedy et al., 2016, section 7): set `label_smoothing` = eps in [0, 1) on
    the model (a hyperparameter; default 0) and the training loss is the cross-entropy against
    targets (1 - eps) * one_hot(y) + eps / C, through the framework's own option (Keras'
    `categorical_crossentropy(..., label_smoothing=eps)`, on one-hot labels: its sparse version
    has none). Validation reports the plain cross-entropy (`validation_loss`), so that runs with
    and without it compare.
    """
    def loss(self, y_hat, y, averaged=True, label_smoothing=None):
        eps = smoothing_of(self, label_smoothing)
        if eps:
            losses = tf.keras.losses.categorical_crossentropy(
                tf.one_hot(y, tf.shape(y_hat)[-1], dtype=y_hat.dtype), y_hat, from_logits=True,
                label_smoothing=eps)
        else:
            losses = tf.keras.losses.sparse_categorical_crossentropy(y, y_hat, from_logits=True)
        return tf.reduce_mean(losses) if averaged else losses

    def validation_loss(self, y_hat, y):
        return self.loss(y_hat, y, label_smoothing=0.0)

    def accuracy(self, y_hat, y, averaged=True):
        correct = tf.cast(tf.argmax(y_hat, axis=1, output_type=y.dtype) == y, tf.float32)
        return tf.reduce_mean(correct) if averaged else correct


class FashionMNIST(fashion_mnist.FashionMNIST):
    layout = 'NHWC'

    @staticmethod
    def to_framework(images, labels):
        return tf.convert_to_tensor(images), tf.convert_to_tensor(labels)


class Trainer(training.Trainer):
    framework = 'tensorflow'
    cpu, gpu, count_gpus = staticmethod(cpu), staticmethod(gpu), staticmethod(num_gpus)
    data_parallel = True

    def count_cpu_devices(self):
        return len(tf.config.list_logical_devices('CPU'))

    def devices_for(self, placement):
        if placement.count == 1:
            return super().devices_for(placement)
        return [f'/{placement.kind.upper()}:{i}' for i in range(placement.count)]

    def device_model(self):
        if not self.on_gpu:
            return None
        details = tf.config.experimental.get_device_details(tf.config.list_physical_devices('GPU')[0])
        return details.get('device_name')

    def versions(self):
        return {'tensorflow': tf.__version__, 'keras': tf.keras.__version__}

    def threads(self):
        return {'intra_op_parallelism_threads':
                tf.config.threading.get_intra_op_parallelism_threads(),
                'inter_op_parallelism_threads':
                tf.config.threading.get_inter_op_parallelism_threads()}

    def state_variables(self):
        """Weights, mutable state (BatchNorm statistics, dropout seeds) and optimizer state."""
        return list(self.model.variables) + list(self.optimizer.variables)

    def parameter_arrays(self):
        # Keras numbers its layer names per process (dense, dense_1, ...): the names that
        # stay the same from run to run are the variables' positions and own names.
        return {f'{index}/{variable.name}': variable.numpy()
                for index, variable in enumerate(self.model.variables)}

    def snapshot(self):
        return [variable.numpy() for variable in self.state_variables()]

    def restore(self, snapshot):
        for variable, value in zip(self.state_variables(), snapshot):
            variable.assign(value)

    def checkpoint(self):
        # Keras' seed generators (dropout's random state) by hand: tf.train.Checkpoint does
        # not track them through the model, and a resumed run must draw what the
        # uninterrupted one would have.
        seeds = [v.value for v in self.model.non_trainable_variables
                 if v.path.endswith('seed_generator_state')]
        return tf.train.Checkpoint(model=self.model, optimizer=self.optimizer, seeds=seeds)

    def save_state(self, directory):
        self.checkpoint().write(str(directory / 'state'))

    def load_state(self, directory):
        self.checkpoint().read(str(directory / 'state')).assert_existing_objects_matched()

    def fit(self, model, data):
        quiet = tensorflow_mirrored.quiet() if len(self.devices) > 1 else contextlib.nullcontext()
        with tf.device(self.device), quiet:
            super().fit(model, data)

    def prepare_model(self, model, first_batch):
        if not model.built:
            model(*first_batch[:-1])
        if not model.trainable_variables:
            raise training.no_parameters_error(model)     # not the optimizer's raw error
        count, clip = len(self.devices), self.gradient_clip_val
        if tensorflow_mirrored.is_mirrored(model):      # trained on several devices before
            tensorflow_mirrored.unmirror(model)
        if count > 1:
            self.strategy = tensorflow_mirrored.strategy(self.devices, self.on_gpu)
            tensorflow_mirrored.mirror(model, self.strategy)
        else:
            self.strategy = tf.distribute.get_strategy()        # the default: no distribution
        with self.strategy.scope():     # the optimizer's state mirrored like the model's
            optimizer = self.optimizer = model.configure_optimizers()
            optimizer.build(model.trainable_variables)  # its state exists before the first step

        def replica_step(batch):
            with tf.GradientTape() as tape:
                loss = model.training_step(batch)
                # The optimizer sums the devices' gradients: each gives 1/count of the mean's.
                scaled = loss / count if count > 1 else loss
            grads = tape.gradient(scaled, model.trainable_variables)
            if clip > 0:
                # clipped by the norm of the whole batch's gradient, as on one device (an
                # all-reduce more per step: Keras reduces the clipped gradients again)
                whole = (tf.distribute.get_replica_context().all_reduce('SUM', grads)
                         if count > 1 else grads)
                grads, _ = tf.clip_by_global_norm(grads, clip, tf.linalg.global_norm(whole))
            optimizer.apply_gradients(zip(grads, model.trainable_variables))
            return loss

        if count == 1:
            train_step = replica_step
        else:
            def train_step(batch):
                with tensorflow_mirrored.global_dropout_masks():
                    losses = self.strategy.run(replica_step, args=(batch,))
                return self.strategy.reduce('MEAN', losses, axis=None)

        self.compiled_train_step = tf.function(train_step, reduce_retracing=True)
        self._variables_prepared = variable_ids(model)
        # Validation runs on the first device (mirrored variables read there).
        self.compiled_eval_step = tf.function(model.validation_step, reduce_retracing=True)

    def moved_since_prepared(self, model):
        # another Trainer mirrored or unmirrored it: new tf.Variables under the Keras variables
        return variable_ids(model) != self._variables_prepared

    def split_batch(self, batch):
        """A training batch as the step takes it: whole on one device; on several, split into
        equal parts, one per device (per-replica values)."""
        batch = tuple(batch)
        return batch if len(self.devices) == 1 else tensorflow_mirrored.split(self.strategy, batch)

    def train_step(self, batch):
        return self.compiled_train_step(self.split_batch(batch))

    def eval_step(self, batch):
        return list(self.compiled_eval_step(tuple(batch)))

    def model_structure(self):
        layers, lines = list(sublayers(self.model)), []
        for layer in layers:
            try:        # a layer's settings but its name, which counts up within a process,
                # and BatchNorm's `synchronized`, which data parallelism sets (the same model)
                config = {k: v for k, v in layer.get_config().items()
                          if k not in ('name', 'synchronized')}
            except (NotImplementedError, TypeError):
                config = {}
            lines.append(f'{type(layer).__qualname__} {training.json_ready(config)}')
        return '\n'.join(lines) + '\n' + training.user_code({type(layer) for layer in layers})

    def output_shape(self, model, inputs):
        return tuple(model.forward_pass([a[:1] for a in inputs], training=False).shape)

    def to_numpy(self, scalars):
        return tf.stack(scalars).numpy()
