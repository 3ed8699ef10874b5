"""One seed for everything: data shuffling here, framework RNGs through registered hooks."""
import numpy as np

_framework_hooks = []
_state = {'seed': None, 'rng': np.random.default_rng()}


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
    _state['rng'] = np.random.default_rng(int(seed))
    for hook in _framework_hooks:
        hook(int(seed))


def draw_seed():
    """A fresh 31-bit integer from the global stream, to seed one data loader or one PRNG key."""
    return int(_state['rng'].integers(2**31 - 1))


def current_seed():
    """The seed last given to `set_seed`, or None."""
    return _state['seed']
