"""Max pooling for JAX with a hand-written gradient: `d2l.max_pool` in the JAX notebooks."""
import functools
import itertools

import jax
import jax.numpy as jnp
from jax import lax


# Called as observe(inputs, outputs, window_shape, strides, pads) by every `max_pool` while
# listed (pads: its -inf padding, a (low, high) pair per spatial axis): a pool is a function
# call, not a Flax module, and d2lmini's cost and window reports must see it.
observers = []


def max_pool(inputs, window_shape, strides=None, padding='VALID'):
    """`flax.linen.max_pool` for NHWC-style (batch, spatial..., features) inputs, with the same
    outputs and gradients, ties included, computed several times faster on the CPU.

    Flax pools with XLA's `reduce_window`, whose gradient (`select_and_scatter`) the CPU
    backend expands into index-tracking reductions and a scatter: in GoogLeNet's train step
    that took over 40% of the time. Here the forward pass is the elementwise maximum of the
    window's strided views of the padded input, and the backward pass sends each output's
    gradient to the first maximum in window order, as `select_and_scatter` does.
    """
    outputs = _max_pool(inputs, window_shape, strides, padding)
    if observers:
        pads = _max_pool_geometry(inputs, window_shape, strides, padding)[1][1:-1]
        for observe in observers:
            observe(inputs, outputs, window_shape, strides, pads)
    return outputs


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_pool(inputs, window_shape, strides, padding):
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
    outputs = _max_pool(inputs, window_shape, strides, padding)
    return outputs, (inputs, outputs)


def _max_pool_bwd(window_shape, strides, padding, residuals, grad):
    inputs, outputs = residuals
    views, to_inputs = jax.vjp(
        lambda x: _max_pool_views(x, window_shape, strides, padding), inputs)
    # The first maximum in window order takes the gradient: `first` is its offset's index.
    index_type = jnp.int8 if len(views) <= 127 else jnp.int32      # one byte, for 3x3
    first = jnp.full(outputs.shape, len(views) - 1, index_type)
    for index in reversed(range(len(views) - 1)):
        first = jnp.where(views[index] == outputs, index_type(index), first)
    # Computed once and stored: fused into each of its nine uses, it would be recomputed.
    first, grad = lax.optimization_barrier((first, grad))
    return to_inputs(tuple(jnp.where(first == index, grad, 0) for index in range(len(views))))


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)
