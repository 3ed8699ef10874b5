"""Which devices a run trains on, written once for the four frameworks.

`Trainer(num_gpus=N)` asks for N devices. 0 means the CPU, one device. N >= 1 means GPUs: the
first min(N, found) of them. Where the framework finds no GPU, the CPU stands in, as one
device, or as up to `D2LMINI_CPU_DEVICES` CPU devices when that variable is set: the way to
test data parallelism without a GPU (JAX: host platform devices; TensorFlow: logical CPU
devices; PyTorch: gloo processes; MXNet: contexts cpu(0), cpu(1), ...; each adapter's module
docstring says more). JAX and TensorFlow read the variable when their adapter is first
imported, since they must be configured before they start; PyTorch and MXNet when a Trainer
is made.

On more than one device, a run is data-parallel through the framework's own engine: the
parameters are replicated, and each training batch (`batch_size` is the global batch) is
split into equal parts, one per device; the learning rate is the user's. The gradients are
those of the whole batch, so N devices train the model one device would, up to float32
rounding (dropout aside: PyTorch and MXNet draw other masks on several devices, the same
distribution). BatchNorm's statistics are those of the whole global batch (synchronized), as
on one device. Where an adapter cannot
synchronize them, it refuses a model with BatchNorm before training (`batchnorm_refused`:
train it on one device) rather than train it with statistics per device, another model:
PyTorch on several CPU devices (its SyncBatchNorm runs on GPUs only), MXNet on several devices
(Gluon's SyncBatchNorm is not swapped in yet).

From a script started by a launcher (`torchrun`: the variables RANK, LOCAL_RANK and
WORLD_SIZE set, WORLD_SIZE > 1), each process trains on one device and they train together,
whatever `num_gpus` says (the start line says so when it says otherwise): `place_launched`.

What runs is never a silent choice: `Placement.note` (the start line's) says what became of
`num_gpus` when it is not what runs, and the run record names every device used.
"""
import dataclasses
import os

from d2lmini import checks
from d2lmini.errors import ModelError

CPU_DEVICES_VARIABLE = 'D2LMINI_CPU_DEVICES'


def cpu_devices_requested(environ=None):
    """The number of CPU devices `D2LMINI_CPU_DEVICES` asks for (an int >= 1), or None when it
    is unset or empty. Raises `ValueError` naming the variable for anything else."""
    value = (os.environ if environ is None else environ).get(CPU_DEVICES_VARIABLE, '').strip()
    if not value:
        return None
    try:
        return checks.integer(CPU_DEVICES_VARIABLE, int(value), 1)
    except ValueError:
        raise ValueError(f'{CPU_DEVICES_VARIABLE}={value!r} is not allowed: it must be an '
                         f'integer >= 1, the number of CPU devices to train on where there is '
                         f'no GPU.') from None


@dataclasses.dataclass(frozen=True)
class Placement:
    """What a run trains on: `kind` ('cpu' or 'gpu'), `count` devices, and `note`, what the
    start line says about `num_gpus` ('' when it is what runs)."""
    kind: str
    count: int
    note: str = ''

    @property
    def names(self):
        """['cpu'] or ['gpu:0'] for one device; ['cpu:0', 'cpu:1', ...] for several."""
        if self.kind == 'cpu' and self.count == 1:
            return ['cpu']
        return [f'{self.kind}:{i}' for i in range(self.count)]

    def describe(self):
        """'cpu', 'gpu:0', or '2 devices (cpu:0, cpu:1)'."""
        names = self.names
        return names[0] if len(names) == 1 else f'{len(names)} devices ({", ".join(names)})'


def plural(count, word):
    return f'{count} {word}{"" if count == 1 else "s"}'


def place(num_gpus, label, gpus_found, cpu_devices_found, data_parallel):
    """The `Placement` of a run asking for `num_gpus` devices of a framework (named `label`)
    that finds `gpus_found` GPUs and offers `cpu_devices_found` CPU devices (1 unless
    `D2LMINI_CPU_DEVICES` made more); `data_parallel`: whether its adapter trains on more than
    one device."""
    if num_gpus == 0:
        return Placement('cpu', 1)
    asked = f'num_gpus={num_gpus} was asked for'
    if gpus_found == 0:
        count = min(num_gpus, cpu_devices_found) if data_parallel else 1
        if count == 1:
            return Placement('cpu', 1, f' ({asked}, but {label} finds no GPU: this run uses '
                                       f'the CPU)')
        short = '' if count == num_gpus else f', all there are'
        return Placement('cpu', count, f' ({asked}, but {label} finds no GPU: this run uses '
                                       f'{count} CPU devices in their place ('
                                       f'{CPU_DEVICES_VARIABLE}={cpu_devices_found}){short})')
    if not data_parallel:
        note = '' if num_gpus == 1 else (f' ({asked}, and {gpus_found} found: d2lmini trains '
                                         f'on one device, gpu:0)')
        return Placement('gpu', 1, note)
    count = min(num_gpus, gpus_found)
    note = '' if count == num_gpus else (f' ({asked}, but {label} finds '
                                         f'{plural(gpus_found, "GPU")}: this run uses '
                                         f'{"it" if count == 1 else f"all {count}"})')
    return Placement('gpu', count, note)


LAUNCH_VARIABLES = ('RANK', 'LOCAL_RANK', 'WORLD_SIZE')


def launched(environ=None):
    """(rank, local_rank, world_size) of this process when a launcher (`torchrun`) started it
    as one of several processes that train together, else None."""
    environ = os.environ if environ is None else environ
    if not all(environ.get(name, '').strip() for name in LAUNCH_VARIABLES):
        return None
    rank, local_rank, world = (int(environ[name]) for name in LAUNCH_VARIABLES)
    return (rank, local_rank, world) if world > 1 else None


def place_launched(num_gpus, world, gpus_found):
    """The `Placement` of a run of `world` processes started by a launcher (`torchrun`), each
    training on one device: its GPU (the one of its local rank) when `num_gpus` >= 1 and there
    are GPUs, else the CPU."""
    kind = 'gpu' if num_gpus and gpus_found else 'cpu'
    if num_gpus == world and kind == 'gpu':
        return Placement(kind, world)
    what = 'GPUs' if kind == 'gpu' else 'CPU devices'
    return Placement(kind, world, f' (num_gpus={num_gpus} was asked for, and torchrun started '
                                  f'{world} processes: this run trains on {world} {what}, one '
                                  f'per process)')


def check_divisible(batch_size, placement, where):
    """Refuse a global batch that the devices cannot share evenly, naming both numbers;
    `where` says which batch ('batch_size' of the data, or a batch by epoch and step)."""
    count = placement.count
    if count == 1 or batch_size % count == 0:
        return
    below = batch_size - batch_size % count
    above = below + count
    choices = f'{below} or {above}' if below else f'{above}'
    raise ValueError(
        f'{where} is {batch_size} examples, which cannot be split evenly over the {count} devices '
        f'this run trains on ({", ".join(placement.names)}): the global batch is split into '
        f'{count} equal parts, one per device. Use a batch size divisible by {count} '
        f'(e.g. {choices}), or another num_gpus.')


def batchnorm_refused(model, layers, placement, why, fix):
    """The `ModelError` for a model with BatchNorm layers (their names, `layers`) that an
    adapter cannot train on `placement` with statistics of the global batch: `why` says why
    (the framework's reason), `fix` where it can be trained."""
    return ModelError(
        f'{type(model).__name__} has BatchNorm layers ({", ".join(layers[:3])}'
        f'{" and more" if len(layers) > 3 else ""}), and this run would train it on '
        f'{placement.describe()}. Its statistics must be those of the whole global batch, as '
        f'on one device, but {why}; with statistics per device it would train another model, '
        f'so it is not trained here. {fix}')
