"""What the framework tests need from each framework: a tiny CNN, and a look at its weights.

Everything else in the tests is written once against d2lmini's common API.
"""
import importlib

import numpy as np


class Kit:
    module_name = None
    layout = None

    @property
    def d2l(self):
        return importlib.import_module(f'd2lmini.{self.module_name}')

    def make_net(self, linear):
        """A small CNN (or, with `linear`, softmax regression: no ReLU to swallow NaNs)."""
        raise NotImplementedError

    def make_model(self, data, lr=0.1, linear=False):
        """An initialized classifier around `make_net`; returns (model, params), where params
        is None but for JAX."""
        d2l, make_net = self.d2l, self.make_net

        class SmallCNN(d2l.Classifier):
            def __init__(self, lr):
                super().__init__()
                self.save_hyperparameters()
                self.net = make_net(linear)

        model = SmallCNN(lr)
        model.apply_init([next(iter(data.train_dataloader()))[0]], d2l.init_cnn)
        return model, None

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

    def reference_resize(self, images, size):
        """The framework's own bilinear resize of float (N, H, W) images, or None."""
        return None


class TorchKit(Kit):
    module_name, layout = 'torch', 'NCHW'

    def make_net(self, linear):
        from torch import nn
        if linear:
            return nn.Sequential(nn.Flatten(), nn.LazyLinear(10))
        return nn.Sequential(nn.LazyConv2d(8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                             nn.Flatten(), nn.LazyLinear(10))

    def parameter_arrays(self, model, params=None):
        return [p.detach().numpy().copy() for p in model.parameters()]

    def to_numpy(self, tensor):
        return tensor.numpy()

    def reference_resize(self, images, size):
        import torch
        from torch.nn import functional as F
        out = F.interpolate(torch.from_numpy(images)[:, None], size=size, mode='bilinear',
                            align_corners=False, antialias=False)
        return out[:, 0].numpy()


class TensorFlowKit(Kit):
    module_name, layout = 'tensorflow', 'NHWC'

    def make_net(self, linear):
        import tensorflow as tf
        layers = [] if linear else [
            tf.keras.layers.Conv2D(8, 3, padding='same', activation='relu'),
            tf.keras.layers.MaxPool2D(2)]
        return tf.keras.Sequential(layers + [tf.keras.layers.Flatten(), tf.keras.layers.Dense(10)])

    def parameter_arrays(self, model, params=None):
        return [v.numpy() for v in model.trainable_variables]

    def to_numpy(self, tensor):
        return tensor.numpy()

    def reference_resize(self, images, size):
        import tensorflow as tf
        return tf.image.resize(images[..., None], size, method='bilinear').numpy()[..., 0]


class JaxKit(Kit):
    module_name, layout = 'jax', 'NHWC'

    def make_model(self, data, lr=0.1, linear=False):
        from flax import linen as nn
        d2l = self.d2l

        class SmallCNN(d2l.Classifier):
            lr: float = 0.1

            def setup(self):
                layers = [] if linear else [
                    nn.Conv(8, (3, 3), padding=1), nn.relu,
                    lambda x: nn.max_pool(x, (2, 2), strides=(2, 2))]
                self.net = nn.Sequential(
                    layers + [lambda x: x.reshape((x.shape[0], -1)), nn.Dense(10)])

        model = SmallCNN(lr=lr)
        params = model.apply_init([next(iter(data.train_dataloader()))[0]], d2l.init_cnn)
        return model, params

    def fit(self, trainer, model, data, params):
        return trainer.fit(model, data, params)

    def parameter_arrays(self, model, params=None):
        import jax
        return [np.array(leaf) for leaf in jax.tree_util.tree_leaves(params)]

    def weights(self, trainer, model):
        return np.concatenate([a.astype(np.float64).ravel()
                               for a in self.parameter_arrays(model, trainer.state.params)])

    def reference_resize(self, images, size):
        import jax
        return np.asarray(jax.image.resize(images, (len(images), *size), method='linear',
                                           antialias=False))


class MXNetKit(Kit):
    module_name, layout = 'mxnet', 'NCHW'

    def make_net(self, linear):
        from mxnet.gluon import nn
        net = nn.HybridSequential()
        if not linear:
            net.add(nn.Conv2D(8, 3, padding=1, activation='relu'), nn.MaxPool2D(2))
        net.add(nn.Dense(10))
        return net

    def parameter_arrays(self, model, params=None):
        return [p.data().asnumpy() for p in model.collect_params().values()]

    def to_numpy(self, tensor):
        return tensor.asnumpy()


KITS = {'pytorch': TorchKit, 'tensorflow': TensorFlowKit, 'jax': JaxKit, 'mxnet': MXNetKit}
