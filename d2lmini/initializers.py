"""Initial weights drawn without any framework, so that one seed gives every framework's model
the same starting point.

Weights are drawn from `seeding.weights_rng()` in PyTorch's layout (convolution kernels
(out, in, kh, kw), dense kernels (out, in)), one layer after another in the order the model
defines them, and each framework module converts them to its own layout.
"""
import math

import numpy as np

from d2lmini import seeding


def xavier_uniform(shape):
    """float32 array of `shape` (PyTorch layout) drawn from U(-a, a), a = sqrt(6 / (fan_in +
    fan_out)): Glorot and Bengio (2010), 'Understanding the difficulty of training deep
    feedforward neural networks'. fan_in = in * kh * kw and fan_out = out * kh * kw."""
    receptive_field = math.prod(shape[2:])
    fan_in, fan_out = shape[1] * receptive_field, shape[0] * receptive_field
    bound = math.sqrt(6 / (fan_in + fan_out))
    return seeding.weights_rng().uniform(-bound, bound, size=shape).astype(np.float32)


def channels_last_kernel(shape):
    """`xavier_uniform` for a kernel stored channels-last, as TensorFlow and Flax store them:
    (kh, kw, in, out) for a convolution, (in, out) for a dense layer."""
    torch_shape = tuple(shape[::-1][:2]) + tuple(shape[:-2])        # (out, in, kh, kw)
    weights = xavier_uniform(torch_shape)
    axes = tuple(range(2, len(shape))) + (1, 0)
    return np.ascontiguousarray(weights.transpose(axes))
