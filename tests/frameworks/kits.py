"""What the framework tests need from each framework: a tiny CNN, and a look at its weights.

Everything else in the tests is written once against d2lmini's common API.
"""
import importlib

import numpy as np

from d2lmini import frameworks


class Kit:
    module_name = None

    @property
    def layout(self):
        """Its image batches' axis order, from the registry (d2lmini/frameworks.py)."""
        return next(fw.layout for fw in frameworks.FRAMEWORKS if fw.module == self.module_name)

    @property
    def d2l(self):
        return importlib.import_module(f'd2lmini.{self.module_name}')

    @property
    def framework_id(self):
        return self.d2l.Trainer.framework

    def make_net(self, linear, outputs=10):
        """A small CNN (or, with `linear`, softmax regression: no ReLU to swallow NaNs), with
        `outputs` logits."""
        raise NotImplementedError

    def make_parameter_free_net(self):
        """A network of layers without weights (flatten only): a model that cannot learn."""
        raise NotImplementedError

    def make_activation_net(self, activation):
        """conv (8 channels, 3x3) -> `activation` ('relu' or 'sigmoid') -> flatten -> dense(10),
        as a `net` for make_model: two of these differ in their layers, not in their weights."""
        raise NotImplementedError

    def make_bn_dropout_net(self):
        """conv -> BatchNorm -> ReLU -> max-pool -> dropout(0.5) -> dense: layers that act
        differently in training and in inference, and that keep state or draw randomness."""
        raise NotImplementedError

    def make_named_model(self):
        """A classifier with no `net`: two named children, `stem` (conv + ReLU + pool) and
        `head` (flatten + dense), called in that order by its own forward pass."""
        raise NotImplementedError

    def conv_bn_relu(self):
        """The chapter's first exercise: a drop-in for its `conv_relu(channels, kernel_size,
        stride=1)` that puts batch normalization between each convolution and its ReLU."""
        raise NotImplementedError

    def make_cost_net(self):
        """The cost report's hand-computable network, for 1x8x8 images: conv 3x3 (1 -> 4
        channels, padding 1, bias) -> ReLU -> max pool 2x2/2 -> conv 1x1 (4 -> 8, 2 groups,
        bias) -> global average pool -> dense (8 -> 3, bias), each layer a child of the net."""
        raise NotImplementedError

    def classifier(self, net):
        """A classifier around `net` (as make_*_net return it), not initialized."""
        d2l = self.d2l

        class WithNet(d2l.Classifier):
            def __init__(self):
                super().__init__()
                self.lr = 0.1
                self.net = net
        return WithNet()

    def make_model(self, data, lr=0.1, linear=False, net=None, outputs=10):
        """An initialized classifier around `make_net` (or the given `net`); returns
        (model, params), where params is None but for JAX."""
        d2l = self.d2l
        make_net = ((lambda linear: net) if net is not None
                    else lambda linear: self.make_net(linear, outputs))

        class SmallCNN(d2l.Classifier):
            def __init__(self, lr):
                super().__init__()
                self.save_hyperparameters()
                self.net = make_net(linear)

        model = SmallCNN(lr)
        model.apply_init([next(iter(data.train_dataloader()))[0]], d2l.init_cnn)
        return model, None

    def init_model(self, model, data):
        """Initialize a model built elsewhere; returns params (None but for JAX)."""
        model.apply_init([next(iter(data.train_dataloader()))[0]], self.d2l.init_cnn)
        return None

    def fit(self, trainer, model, data, params):
        return trainer.fit(model, data)

    def parameter_arrays(self, model, params=None):
        """Every trainable parameter as a NumPy array (copies)."""
        raise NotImplementedError

    def weights(self, trainer, model):
        """All trainable weights after training, as one flat float64 vector."""
        return np.concatenate([a.astype(np.float64).ravel()
                               for a in self.parameter_arrays(model)])

    def to_numpy(self, tensor):
        return np.asarray(tensor)

    # Whether a model with BatchNorm trains on several CPU devices (statistics synchronized);
    # if not, it is refused before training, for the reason `batchnorm_refusal` gives (the end
    # of the error's message, d2lmini.devices.batchnorm_refused).
    batchnorm_on_cpu_devices = True
    batchnorm_refusal = None

    def data_parallel_facts(self, trainer, batch):
        """How a data-parallel `trainer` (on several devices, during its fit) holds a prepared
        training `batch` and its parameters: {batch_parts: the examples of the batch each
        device holds, parameters_replicated: whether every device holds every parameter
        whole}."""
        raise NotImplementedError

    # launcher(n): the command line that starts a script as n processes training together
    # (PyTorch: torchrun), or None where there is no such launcher
    launcher = None

    def worker_pids(self, trainer):
        """The process ids of the worker processes a fit on several devices runs (during the
        fit), or [] where the devices are driven from one process."""
        return []

    def reference_resize(self, images, size):
        """The framework's own bilinear resize of float (N, H, W) images, or None."""
        return None


class TorchKit(Kit):
    module_name = 'torch'

    def make_net(self, linear, outputs=10):
        from torch import nn
        if linear:
            return nn.Sequential(nn.Flatten(), nn.LazyLinear(outputs))
        return nn.Sequential(nn.LazyConv2d(8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.LazyLinear(outputs))

    def make_parameter_free_net(self):
        from torch import nn
        return nn.Sequential(nn.Flatten())

    def make_activation_net(self, activation):
        from torch import nn
        return nn.Sequential(nn.LazyConv2d(8, 3, padding=1),
                             nn.ReLU() if activation == 'relu' else nn.Sigmoid(),
                             nn.Flatten(), nn.LazyLinear(10))

    def make_cost_net(self):
        from torch import nn
        return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Conv2d(4, 8, 1, groups=2), nn.AdaptiveAvgPool2d(1),
                             nn.Flatten(), nn.Linear(8, 3))

    def make_bn_dropout_net(self):
        from torch import nn
        return nn.Sequential(nn.LazyConv2d(8, 3, padding=1), nn.LazyBatchNorm2d(), nn.ReLU(),
                             nn.MaxPool2d(2), nn.Dropout(0.5), nn.Flatten(), nn.LazyLinear(10))

    def make_named_model(self):
        from torch import nn
        d2l = self.d2l

        class Named(d2l.Classifier):
            def __init__(self):
                super().__init__()
                self.lr = 0.1
                self.stem = nn.Sequential(nn.LazyConv2d(8, 3, padding=1), nn.ReLU(),
                                          nn.MaxPool2d(2))
                self.head = nn.Sequential(nn.Flatten(), nn.LazyLinear(10))

            def forward(self, X):
                return self.head(self.stem(X))
        return Named()

    def conv_bn_relu(self):
        from torch import nn

        def conv_bn_relu(channels, kernel_size, stride=1):
            return nn.Sequential(nn.LazyConv2d(channels, kernel_size, stride=stride,
                                               padding=kernel_size // 2),
                                 nn.LazyBatchNorm2d(), nn.ReLU())
        return conv_bn_relu

    def parameter_arrays(self, model, params=None):
        return [p.detach().numpy().copy() for p in model.parameters()]

    def state_arrays(self, model, params=None):
        """Parameters and buffers (BatchNorm statistics), as NumPy copies."""
        return [v.detach().numpy().copy() for v in model.state_dict().values()]

    def to_numpy(self, tensor):
        return tensor.numpy()

    batchnorm_on_cpu_devices = False
    batchnorm_refusal = ('PyTorch synchronizes them over devices (SyncBatchNorm) on GPUs only; '
                         'with statistics per device it would train another model, so it is not '
                         'trained here. Train it on one device (num_gpus=0, or without '
                         'D2LMINI_CPU_DEVICES), or on GPUs.')

    def data_parallel_facts(self, trainer, batch):
        replicas = trainer._workers().ask(('parameters',))
        return dict(batch_parts=[len(part[-1]) for part in trainer.parts(batch)],
                    parameters_replicated=len(replicas) == trainer.placement.count and all(
                        replica.keys() == replicas[0].keys() and all(
                            np.array_equal(replica[name], replicas[0][name]) for name in replica)
                        for replica in replicas))

    @staticmethod
    def launcher(n):
        import sys
        return [sys.executable, '-m', 'torch.distributed.run', '--standalone',
                f'--nproc-per-node={n}']

    def worker_pids(self, trainer):
        pool = trainer._live_pool()
        return [process.pid for process in pool.processes] if pool else []

    def reference_resize(self, images, size):
        import torch
        from torch.nn import functional as F
        out = F.interpolate(torch.from_numpy(images)[:, None], size=size, mode='bilinear',
                            align_corners=False, antialias=False)
        return out[:, 0].numpy()


class TensorFlowKit(Kit):
    module_name = 'tensorflow'

    def make_net(self, linear, outputs=10):
        import tensorflow as tf
        layers = [] if linear else [
            tf.keras.layers.Conv2D(8, 3, padding='same', activation='relu'),
            tf.keras.layers.MaxPool2D(2)]
        return tf.keras.Sequential(
            layers + [tf.keras.layers.Flatten(), tf.keras.layers.Dense(outputs)])

    def make_parameter_free_net(self):
        import tensorflow as tf
        return tf.keras.Sequential([tf.keras.layers.Flatten()])

    def make_activation_net(self, activation):
        import tensorflow as tf
        L = tf.keras.layers
        return tf.keras.Sequential([L.Conv2D(8, 3, padding='same', activation=activation),
                                    L.Flatten(), L.Dense(10)])

    def make_cost_net(self):
        import tensorflow as tf
        L = tf.keras.layers
        return tf.keras.Sequential([L.Conv2D(4, 3, padding='same', activation='relu'),
                                    L.MaxPool2D(2), L.Conv2D(8, 1, groups=2),
                                    L.GlobalAveragePooling2D(), L.Dense(3)])

    def make_bn_dropout_net(self):
        import tensorflow as tf
        L = tf.keras.layers
        return tf.keras.Sequential([L.Conv2D(8, 3, padding='same'), L.BatchNormalization(),
                                    L.ReLU(), L.MaxPool2D(2), L.Dropout(0.5), L.Flatten(),
                                    L.Dense(10)])

    def make_named_model(self):
        import tensorflow as tf
        d2l, L = self.d2l, tf.keras.layers

        class Named(d2l.Classifier):
            def __init__(self):
                super().__init__()
                self.lr = 0.1
                self.stem = tf.keras.Sequential([L.Conv2D(8, 3, padding='same',
                                                          activation='relu'), L.MaxPool2D(2)])
                self.head = tf.keras.Sequential([L.Flatten(), L.Dense(10)])

            def call(self, X, training=False):
                return self.head(self.stem(X, training=training), training=training)
        return Named()

    def conv_bn_relu(self):
        import tensorflow as tf
        L = tf.keras.layers

        def conv_bn_relu(channels, kernel_size, stride=1):
            return tf.keras.Sequential([L.ZeroPadding2D(kernel_size // 2),
                                        L.Conv2D(channels, kernel_size, strides=stride),
                                        L.BatchNormalization(), L.ReLU()])
        return conv_bn_relu

    def parameter_arrays(self, model, params=None):
        return [v.numpy() for v in model.trainable_variables]

    def data_parallel_facts(self, trainer, batch):
        import tensorflow as tf
        parts = trainer.strategy.experimental_local_results(trainer.split_batch(batch))
        return dict(batch_parts=[int(images.shape[0]) for images, _ in parts],
                    parameters_replicated=all(
                        isinstance(v.value, tf.distribute.DistributedValues)
                        and len(v.value.values) == len(trainer.devices)
                        for v in trainer.model.trainable_variables))

    def state_arrays(self, model, params=None):
        return [v.numpy() for v in model.variables]

    def to_numpy(self, tensor):
        return tensor.numpy()

    def reference_resize(self, images, size):
        import tensorflow as tf
        return tf.image.resize(images[..., None], size, method='bilinear').numpy()[..., 0]


class JaxKit(Kit):
    module_name = 'jax'

    def _make_small_cnn(self, data, lr=0.1, linear=False, outputs=10):
        from flax import linen as nn
        d2l = self.d2l

        class SmallCNN(d2l.Classifier):
            lr: float = 0.1
            linear: bool = False     # a field, so that it is one of the run's hyperparameters
            outputs: int = 10

            def setup(self):
                layers = [] if self.linear else [
                    nn.Conv(8, (3, 3), padding=1), nn.relu,
                    lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))]
                self.net = nn.Sequential(
                    layers + [lambda x: x.reshape((x.shape[0], -1)), nn.Dense(self.outputs)])

        model = SmallCNN(lr=lr, linear=linear, outputs=outputs)
        params = model.apply_init([next(iter(data.train_dataloader()))[0]], d2l.init_cnn)
        return model, params

    def make_model(self, data, lr=0.1, linear=False, net=None, outputs=10):
        if net is None:
            return self._make_small_cnn(data, lr, linear, outputs)
        d2l = self.d2l

        class WithNet(d2l.Classifier):
            lr: float = 0.1

            def setup(self):
                self.net = net(self)
        model = WithNet(lr=lr)
        return model, self.init_model(model, data)

    def init_model(self, model, data):
        return model.apply_init([next(iter(data.train_dataloader()))[0]], self.d2l.init_cnn)

    def make_parameter_free_net(self):
        def net(model):
            from flax import linen as nn
            return nn.Sequential([lambda x: x.reshape((x.shape[0], -1))])
        return net

    def make_activation_net(self, activation):
        def net(model):
            from flax import linen as nn
            return nn.Sequential([nn.Conv(8, (3, 3), padding=1), getattr(nn, activation),
                                  lambda x: x.reshape((x.shape[0], -1)), nn.Dense(10)])
        return net

    def make_cost_net(self):
        def net(model):
            from flax import linen as nn
            return nn.Sequential([nn.Conv(4, (3, 3), padding=1), nn.relu,
                                  lambda x: nn.max_pool(x, (2, 2), strides=(2, 2)),
                                  nn.Conv(8, (1, 1), feature_group_count=2),
                                  lambda x: x.mean(axis=(1, 2)), nn.Dense(3)])
        return net

    def classifier(self, net):
        d2l = self.d2l

        class WithNet(d2l.Classifier):
            lr: float = 0.1

            def setup(self):
                self.net = net(self)
        return WithNet()

    def make_bn_dropout_net(self):
        from flax import linen as nn

        def net(model):     # called in the model's setup: layers read model.training
            return nn.Sequential([
                nn.Conv(8, (3, 3), padding=1),
                nn.BatchNorm(use_running_average=not model.training), nn.relu,
                lambda x: nn.max_pool(x, (2, 2), strides=(2, 2)),
                nn.Dropout(0.5, deterministic=not model.training),
                lambda x: x.reshape((x.shape[0], -1)), nn.Dense(10)])
        return net

    def make_named_model(self):
        from flax import linen as nn
        d2l = self.d2l

        class Stem(nn.Module):
            @nn.compact
            def __call__(self, x):
                x = nn.relu(nn.Conv(8, (3, 3), padding=1)(x))
                return nn.max_pool(x, (2, 2), strides=(2, 2))

        class Head(nn.Module):
            @nn.compact
            def __call__(self, x):
                return nn.Dense(10)(x.reshape((x.shape[0], -1)))

        class Named(d2l.Classifier):
            lr: float = 0.1

            def setup(self):
                self.stem, self.head = Stem(), Head()

            def __call__(self, X):
                return self.head(self.stem(X))
        return Named()

    def conv_bn_relu(self):
        from flax import linen as nn

        class ConvBNReLU(nn.Module):
            channels: int
            kernel_size: int
            stride: int = 1

            @nn.compact
            def __call__(self, x):
                pad = self.kernel_size // 2
                x = nn.Conv(self.channels, (self.kernel_size,) * 2, strides=self.stride,
                            padding=((pad, pad), (pad, pad)))(x)
                # Batch statistics are mutable only in training steps (and at init).
                training = self.is_mutable_collection('batch_stats')
                return nn.relu(nn.BatchNorm(use_running_average=not training)(x))

        def conv_bn_relu(channels, kernel_size, stride=1):
            return ConvBNReLU(channels, kernel_size, stride)
        return conv_bn_relu

    def fit(self, trainer, model, data, params):
        return trainer.fit(model, data, params)

    def parameter_arrays(self, model, params=None):
        import jax
        return [np.array(leaf) for leaf in jax.tree_util.tree_leaves(params)]

    def state_arrays(self, model, params=None):
        return self.parameter_arrays(model, params)

    def weights(self, trainer, model):
        return np.concatenate([a.astype(np.float64).ravel()
                               for a in self.parameter_arrays(model, trainer.state.params)])

    def data_parallel_facts(self, trainer, batch):
        import jax
        leaves = jax.tree_util.tree_leaves(trainer.state.params)
        return dict(batch_parts=[shard.data.shape[0] for shard in batch[0].addressable_shards],
                    parameters_replicated=all(
                        leaf.sharding.is_fully_replicated
                        and len(leaf.sharding.device_set) == len(trainer.devices)
                        for leaf in leaves))

    def reference_resize(self, images, size):
        import jax
        return np.asarray(jax.image.resize(images, (len(images), *size), method='linear',
                                           antialias=False))


class MXNetKit(Kit):
    module_name = 'mxnet'

    def gluon_nn(self):
        """mxnet.gluon.nn, imported after d2lmini.mxnet, whose numpy.bool shim MXNet needs on
        numpy >= 1.24 (Python 3.12): a test that imports MXNet first breaks every later one."""
        self.d2l
        from mxnet.gluon import nn
        return nn

    def make_net(self, linear, outputs=10):
        nn = self.gluon_nn()
        net = nn.HybridSequential()
        if not linear:
            net.add(nn.Conv2D(8, 3, padding=1, activation='relu'), nn.MaxPool2D(2))
        net.add(nn.Dense(outputs))
        return net

    def make_parameter_free_net(self):
        nn = self.gluon_nn()
        net = nn.HybridSequential()
        net.add(nn.Flatten())
        return net

    def make_activation_net(self, activation):
        nn = self.gluon_nn()
        net = nn.HybridSequential()
        net.add(nn.Conv2D(8, 3, padding=1, activation=activation), nn.Dense(10))
        return net

    def make_cost_net(self):
        nn = self.gluon_nn()
        net = nn.HybridSequential()
        net.add(nn.Conv2D(4, 3, padding=1, activation='relu'), nn.MaxPool2D(2),
                nn.Conv2D(8, 1, groups=2), nn.GlobalAvgPool2D(), nn.Dense(3))
        return net

    def make_bn_dropout_net(self):
        nn = self.gluon_nn()
        net = nn.HybridSequential()
        net.add(nn.Conv2D(8, 3, padding=1), nn.BatchNorm(), nn.Activation('relu'),
                nn.MaxPool2D(2), nn.Dropout(0.5), nn.Dense(10))
        return net

    def make_named_model(self):
        nn = self.gluon_nn()
        d2l = self.d2l

        class Named(d2l.Classifier):
            def __init__(self):
                super().__init__()
                self.lr = 0.1
                self.stem = nn.HybridSequential()
                self.stem.add(nn.Conv2D(8, 3, padding=1, activation='relu'), nn.MaxPool2D(2))
                self.head = nn.Dense(10)

            def hybrid_forward(self, F, X):
                return self.head(self.stem(X))
        return Named()

    def conv_bn_relu(self):
        nn = self.gluon_nn()

        def conv_bn_relu(channels, kernel_size, stride=1):
            net = nn.HybridSequential()
            net.add(nn.Conv2D(channels, kernel_size, strides=stride, padding=kernel_size // 2),
                    nn.BatchNorm(), nn.Activation('relu'))
            return net
        return conv_bn_relu

    def parameter_arrays(self, model, params=None):
        return [p.data().asnumpy() for p in model.collect_params().values()]

    batchnorm_on_cpu_devices = False
    batchnorm_refusal = ("Gluon's BatchNorm keeps statistics per device, and d2lmini does not "
                         "swap in its SyncBatchNorm yet; with statistics per device it would "
                         "train another model, so it is not trained here. Train it on one device "
                         "(num_gpus=0 or 1, or without D2LMINI_CPU_DEVICES).")

    def data_parallel_facts(self, trainer, batch):
        parts = trainer.split_batch(batch)
        return dict(batch_parts=[int(images.shape[0]) for images, _ in parts],
                    parameters_replicated=all(
                        len(p.list_ctx()) == len(trainer.devices)
                        for p in trainer.model.collect_params().values()))

    def state_arrays(self, model, params=None):
        return self.parameter_arrays(model)     # Gluon keeps BatchNorm statistics as parameters

    def to_numpy(self, tensor):
        return tensor.asnumpy()


KITS = {'pytorch': TorchKit, 'tensorflow': TensorFlowKit, 'jax': JaxKit, 'mxnet': MXNetKit}
