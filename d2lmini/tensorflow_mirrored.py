"""Data parallelism for d2lmini's TensorFlow Trainer, through `tf.distribute.MirroredStrategy`.

On N devices each variable of the model and of its optimizer is a `MirroredVariable` (one
copy per device, updated together); a training batch is split into N equal parts, one per
device; each device computes the gradient of its part's loss divided by N, and the Keras
optimizer all-reduces (sums) them before the same update runs on every copy: the gradient of
the whole batch's mean loss, as on one device. On CPU devices d2lmini asks for
`ReductionToOneDevice` (the sum gathered on one device and sent back); on GPUs the strategy
chooses (usually NCCL). Several machines (`MultiWorkerMirroredStrategy`) are not supported yet.

Three things Keras 3 leaves to the trainer, done here:
- A model handed to a trainer was built outside the strategy's scope, and Keras has no public
  way to move built variables into one (its guide builds the model under `strategy.scope()`):
  `mirror` re-creates each variable's TensorFlow variable under the scope with its value, and
  `unmirror` turns them back into plain ones for a later run on one device.
- BatchNormalization computes its statistics per device unless `synchronized=True`: `mirror`
  sets it (the statistics of the global batch, as on one device and as in the other adapters,
  see d2lmini/devices.py) and `unmirror` restores the layer's own setting.
- Dropout reads one mirrored seed, so every device would draw the same mask (examples i and
  i + B/N would share theirs): `global_dropout_masks` makes each device draw the whole
  batch's mask and keep its own rows, the masks one device would draw.
"""
import contextlib

import tensorflow as tf

from d2lmini import devices


def split_cpu(count=None):
    """Offer `D2LMINI_CPU_DEVICES` (or `count`) logical CPU devices: call before TensorFlow
    initializes its devices. Returns the number offered."""
    count = devices.cpu_devices_requested() if count is None else count
    cpus = tf.config.list_physical_devices('CPU')
    if count and count > 1 and cpus:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration() for _ in range(count)])
    return len(tf.config.list_logical_devices('CPU'))


@contextlib.contextmanager
def quiet():
    """TensorFlow's INFO log lines while d2lmini drives a strategy ('Using MirroredStrategy
    ...', one 'Reduce to ... then broadcast' per traced reduction): the start line already
    names the devices."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(max(level, 30))     # WARNING
    try:
        yield
    finally:
        logger.setLevel(level)


def strategy(device_names, on_gpu):
    """A `MirroredStrategy` over `device_names` ('/CPU:0', ... or '/GPU:0', ...)."""
    reduction = None if on_gpu else tf.distribute.ReductionToOneDevice()
    return tf.distribute.MirroredStrategy(list(device_names), cross_device_ops=reduction)


def is_mirrored(model):
    return any(isinstance(v.value, tf.distribute.DistributedValues) for v in model.variables)


def _recreate(variables):
    for variable in variables:
        # Keras' TensorFlow Variable keeps its tf.Variable in `_value`; `_initialize` makes a
        # new one from a value, in the variable-creation scope in force (the strategy's, or none).
        variable._initialize(variable.numpy())


def _batchnorm_layers(model):
    return [layer for layer in model._flatten_layers(include_self=True, recursive=True)
            if isinstance(layer, tf.keras.layers.BatchNormalization)]


def mirror(model, mirrored_strategy):
    """Make `model`'s variables mirrored over `mirrored_strategy`'s devices, keeping their
    values, and synchronize its BatchNormalization layers' statistics."""
    with mirrored_strategy.scope():
        _recreate(model.variables)
    for layer in _batchnorm_layers(model):
        if not hasattr(layer, '_d2lmini_synchronized'):
            layer._d2lmini_synchronized = layer.synchronized
        layer.synchronized = True


def unmirror(model):
    """Undo `mirror`: plain variables with the same values, BatchNormalization as it was."""
    with tf.init_scope():
        _recreate(model.variables)
    for layer in _batchnorm_layers(model):
        if hasattr(layer, '_d2lmini_synchronized'):
            layer.synchronized = layer._d2lmini_synchronized
            del layer._d2lmini_synchronized


def split(mirrored_strategy, batch):
    """A batch (tuple of tensors, examples along axis 0, a multiple of the device count) as
    per-replica values: part r of each tensor on device r."""
    count = mirrored_strategy.num_replicas_in_sync
    names = mirrored_strategy.extended.worker_devices

    def part(context):
        r = context.replica_id_in_sync_group
        with tf.device(names[r]):
            return tuple(tf.identity(a[r * (len(a) // count):(r + 1) * (len(a) // count)])
                         for a in batch)
    return mirrored_strategy.experimental_distribute_values_from_function(part)


@contextlib.contextmanager
def global_dropout_masks():
    """While tracing a replica's step: dropout draws the mask of the whole global batch from
    the shared seed and applies this replica's rows of it. Keras 3 offers no option for this;
    the function its Dropout layer calls is swapped for the trace only (imported here, not
    with this module: a private module of Keras, needed on several devices only)."""
    from keras.src.backend.tensorflow import random as keras_tf_random
    original = keras_tf_random.dropout

    def dropout(inputs, rate, noise_shape=None, seed=None):
        context = tf.distribute.get_replica_context()
        count = context.num_replicas_in_sync if context is not None else 1
        if count == 1 or rate in (0.0, 1.0):
            return original(inputs, rate, noise_shape, seed)
        if noise_shape is not None and noise_shape[0] == 1:     # one mask for every example
            return original(inputs, rate, noise_shape, seed)
        dynamic = tf.shape(inputs)
        local = dynamic[0]
        whole = tf.stack([local * count] + [
            dynamic[i] if noise_shape is None or noise_shape[i] is None
            else tf.constant(noise_shape[i], tf.int32) for i in range(1, inputs.shape.rank)])
        mask = original(tf.ones(whole, inputs.dtype), rate, None, seed)
        start = context.replica_id_in_sync_group * local
        return inputs * mask[start:start + local]

    keras_tf_random.dropout = dropout
    try:
        yield
    finally:
        keras_tf_random.dropout = original
