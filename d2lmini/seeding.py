"""One seed for everything: data shuffling and initial weights here, framework RNGs through
registered hooks.

The seed feeds independent NumPy streams, one per use, so that what one framework draws
(JAX's PRNG keys, say) does not shift what another use sees: with the same seed, every
framework gets the same data order and the same initial weights.
"""
import numpy as np

STREAMS = ('data', 'weights', 'keys')
_framework_hooks = []
_state = {'seed': None, 'streams': {name: np.random.default_rng() for name in STREAMS}}


def register_framework_seeder(hook):
    """A framework module registers how to seed its own RNG; set_seed calls it."""
    _framework_hooks.append(hook)
    if _state['seed'] is not None:
        hook(_state['seed'])


def set_seed(seed):
    """Make shuffling, initialization and dropout repeatable: on the CPU, the same seed gives
    the same losses and weights in every framework, within one process and across processes.
    (In TensorFlow it also restarts Keras's layer-name numbering, on which the order of some
    gradient sums depends.)

    On a GPU the data order and initial weights still repeat, but results may not: cuDNN
    and XLA pick convolution algorithms and summation orders that are not deterministic
    unless the framework is told so (e.g. `torch.use_deterministic_algorithms`), at a cost
    in speed."""
    _state['seed'] = int(seed)
    _state['streams'] = {name: np.random.default_rng([int(seed), index])
                         for index, name in enumerate(STREAMS)}
    for hook in _framework_hooks:
        hook(int(seed))


def draw_seed(stream='data'):
    """A fresh 31-bit integer from one of the seeded streams: 'data' seeds a data loader's
    shuffling, 'keys' a JAX PRNG key."""
    return int(_state['streams'][stream].integers(2**31 - 1))


def weights_rng():
    """The NumPy generator that initial weights are drawn from (see `d2lmini.initializers`)."""
    return _state['streams']['weights']


def current_seed():
    """The seed last given to `set_seed`, or None."""
    return _state['seed']
