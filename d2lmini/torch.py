"""d2lmini for PyTorch: `from d2lmini import torch as d2l`.

Only what depends on PyTorch lives here: the model base class, the train and eval steps,
devices and tensor conversion. Everything else comes from the shared core.

On several devices (`Trainer(num_gpus=N)`, see `d2lmini.devices`) a run trains through
`torch.nn.parallel.DistributedDataParallel`, one worker process per device (NCCL between GPUs,
gloo between CPU devices), forked by `fit` as Lightning's `ddp_notebook` does, and driven by
it (`d2lmini.workers`): `fit`'s process keeps the loop, the checkpoints, the progress and the
run record, and sends each worker its contiguous part of every global batch; the gradients are
averaged over the workers in the backward pass. When `fit` returns, the model holds the trained
weights (on the CPU: the process that forks must not start CUDA, which forked workers could not
use). A CPU device is one such process (`D2LMINI_CPU_DEVICES=N`); each runs one thread, since a
forked process cannot use the OpenMP threads of its parent. BatchNorm's statistics are
synchronized over the GPUs (`nn.SyncBatchNorm`); PyTorch's SyncBatchNorm does not run on the
CPU, so a model with BatchNorm is refused on several CPU devices (train it on one, or on GPUs).
Dropout draws its masks on each device: the same distribution as on one device, other numbers.
From a script started by `torchrun` (several processes that each call `fit`), each process is
one device: see `Trainer`.
"""
import contextlib
import copy
import io
import os
import shutil
import sys
import tempfile

import numpy as np
import torch
from torch import distributed as dist
from torch import nn
from torch.nn import functional as F

from d2lmini import (chapter_code, checkpoint, costs, devices, fashion_mnist, initializers,
                     kept_runs, training, windows, workers)
from d2lmini.steps import Steps, mean_if, smoothing_of
from d2lmini.hyperparameters import HyperParameters, add_to_class  # noqa: F401 (API)
from d2lmini.loading import DataModule  # noqa: F401 (API)
from d2lmini.seeding import register_framework_seeder, set_seed  # noqa: F401 (API)
from d2lmini.callback import Callback
from d2lmini.costs import Chip, parameter_table, roofline_table  # noqa: F401 (API)
from d2lmini.intensity_plot import plot_intensity  # noqa: F401 (API)
from d2lmini.summary import shape_printing_hook, top_level_children

load_chapter = chapter_code.loader('pytorch')   # d2l.load_chapter('googlenet').GoogleNet
# d2l.kept_run('googlenet'), d2l.plot_kept({...}), d2l.plot_beside_kept(trainer, 'googlenet')
kept_run, plot_kept, plot_beside_kept = kept_runs.bound('pytorch')


def cpu():
    return torch.device('cpu')


def gpu(i=0):
    return torch.device(f'cuda:{i}')


def num_gpus():
    return torch.cuda.device_count()


def try_gpu(i=0):
    return gpu(i) if num_gpus() >= i + 1 else cpu()


register_framework_seeder(torch.manual_seed)


def init_cnn(module):
    """Xavier-uniform weights and zero biases for convolution and dense layers (pass to
    `apply_init`), drawn by `d2lmini.initializers`: one seed, the same weights in every
    framework."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        with torch.no_grad():
            weights = initializers.xavier_uniform(tuple(module.weight.shape))
            module.weight.copy_(torch.from_numpy(weights))
            if module.bias is not None:
                module.bias.zero_()


class Module(Steps, nn.Module, HyperParameters, windows.WindowReporting):
    """Base class of the book's models: a network plus its loss and optimizer."""
    input_layout = 'NCHW'     # of its batches (window_report)

    def __init__(self):
        super().__init__()

    def loss(self, y_hat, y):
        raise NotImplementedError

    def forward(self, X):
        return self.net(X)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=self.lr)

    def apply_init(self, inputs, init=None):
        """Run one forward pass so lazy layers learn their shapes, then apply `init` to every
        submodule (e.g. `init_cnn`). Returns None: the weights live in the model.

        The pass runs in eval mode, as the other frameworks' shape-finding pass does: BatchNorm's
        running statistics keep their initial values (a pass in training mode would move them
        once) and dropout draws no mask."""
        training = self.training
        self.eval()
        try:
            with torch.no_grad():
                self.forward(*inputs)
        finally:
            self.train(training)
        if init is not None:
            self.apply(init)

    def layer_summary(self, X_shape):
        """Print the output shape of each top-level child of `self.net` (or, without a `net`,
        of the model), in the order the forward pass calls them, for a random input of
        `X_shape` (NCHW). Runs in eval mode without gradients: parameters, buffers (such as
        BatchNorm statistics), the training flag and the global RNG are left unchanged."""
        children = top_level_children(self, lambda net: isinstance(net, nn.Module),
                                       lambda top: top.named_children())
        self._forward_with_hooks(X_shape, [child.register_forward_hook(shape_printing_hook(name))
                                           for name, child in children])

    def cost_report(self, X_shape, unknown='raise'):
        """The multiply-adds, parameters, bytes moved and arithmetic intensity of each leaf
        layer, and their totals, for an input of `X_shape` (NCHW): a `d2lmini.costs.Report`
        (print it for a table). Leaves are found as `layer_summary`'s children are, and
        described from one forward pass with the same care (nothing changes). `unknown`:
        'raise' (CostError naming a layer the report does not know) or 'zero'."""
        children = top_level_children(self, lambda net: isinstance(net, nn.Module),
                                       lambda top: top.named_children())
        layers, hooks = [], []
        for position, (child_name, child) in enumerate(children):
            for name, module in child.named_modules(prefix=child_name):
                if next(module.children(), None) is None:       # a leaf
                    hooks.append(module.register_forward_hook(
                        costs.recording_hook(layers, describe_layer, name, position)))
        self._forward_with_hooks(X_shape, hooks)
        return costs.Report(layers, X_shape[0], unknown)

    def _forward_with_hooks(self, X_shape, hooks):
        """One forward pass of a random input of `X_shape` in eval mode without gradients,
        then remove `hooks`: parameters, buffers, the training flag and the global RNG are
        left unchanged."""
        X = torch.randn(*X_shape, generator=torch.Generator().manual_seed(0))
        was_training = self.training
        try:
            self.eval()
            with torch.no_grad():
                self.forward(X.to(next(self.parameters(), X).device))
        finally:
            self.train(was_training)
            for hook in hooks:
                hook.remove()


# Leaf modules that compute no multiply-adds and are not rows of a cost report (elementwise
# functions, reshapes); anything else unknown is reported (d2lmini/costs.py).
FREE_LAYERS = (nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh,
               nn.Hardswish, nn.Identity, nn.Flatten, nn.Unflatten, nn.Dropout, nn.Dropout1d,
               nn.Dropout2d, nn.Dropout3d)


def conv_padding(module):
    """A convolution's zero padding, as `costs.Layer` takes it: its `padding` (ints), or for
    'valid' none and for 'same' what PyTorch pads: dilation * (kernel - 1) per axis, the
    extra pixel after."""
    if module.padding == 'valid':
        return 0
    if module.padding == 'same':
        totals = [d * (k - 1) for d, k in zip(module.dilation, module.kernel_size)]
        return [(t // 2, t - t // 2) for t in totals]
    return module.padding


def describe_layer(module, name, child, in_shape, out_shape):
    """A `d2lmini.costs.Layer` for a leaf module that turned an input of `in_shape` into an
    output of `out_shape` (NCHW batch shapes)."""
    def layer(kind, **details):
        return costs.Layer.from_batches(name, type(module).__name__, child, kind, in_shape,
                                        out_shape, 'NCHW', **details)
    if isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
        return layer('conv', kernel=module.kernel_size, stride=module.stride,
                     groups=module.groups, bias=module.bias is not None,
                     padding=conv_padding(module))
    if isinstance(module, nn.Linear):
        return layer('dense', in_channels=module.in_features, out_channels=module.out_features,
                     bias=module.bias is not None)
    pools = {nn.MaxPool1d: 'max_pool', nn.MaxPool2d: 'max_pool', nn.MaxPool3d: 'max_pool',
             nn.AvgPool1d: 'avg_pool', nn.AvgPool2d: 'avg_pool', nn.AvgPool3d: 'avg_pool'}
    if type(module) in pools:
        return layer(pools[type(module)], kernel=module.kernel_size, stride=module.stride,
                     padding=module.padding)
    if (isinstance(module, (nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
                            nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d))
            and all(d == 1 for d in out_shape[2:])):
        return layer('global_max_pool' if 'Max' in type(module).__name__ else 'global_avg_pool')
    if isinstance(module, (nn.ZeroPad1d, nn.ZeroPad2d, nn.ZeroPad3d)):
        # (left, right, top, bottom, ...): the last axis first
        pairs = [module.padding[i:i + 2] for i in range(0, len(module.padding), 2)]
        return layer('pad', padding=pairs[::-1])
    return layer('free' if isinstance(module, FREE_LAYERS) else 'unknown')


class Classifier(Module):
    """A model whose outputs are logits over classes.

    `loss(y_hat, y, averaged=True, label_smoothing=None)`: softmax cross-entropy in nats of
    logits `y_hat`, float32 (N, C),
    against integer labels `y`, int64 (N,): a scalar (the mean) if `averaged`, else (N,).
    `accuracy(y_hat, y, averaged=True)`: the fraction of argmax predictions equal to `y`, a
    float32 scalar in [0, 1] if `averaged`, else (N,) of 0.0/1.0. Inputs and results are
    torch.Tensors.
    Label smoothing (Szegedy et al., 2016, section 7): set `label_smoothing` = eps in [0, 1) on
    the model (a hyperparameter; default 0) and the training loss is the cross-entropy against
    targets (1 - eps) * one_hot(y) + eps / C, through the framework's own option
    (`F.cross_entropy(..., label_smoothing=eps)`). Validation reports the plain cross-entropy
    (`validation_loss`), so that runs with and without it compare.
    """
    def loss(self, y_hat, y, averaged=True, label_smoothing=None):
        eps = smoothing_of(self, label_smoothing)
        return F.cross_entropy(y_hat, y, reduction='mean' if averaged else 'none',
                               label_smoothing=eps)

    def validation_loss(self, y_hat, y):
        return self.loss(y_hat, y, label_smoothing=0.0)

    def accuracy(self, y_hat, y, averaged=True):
        correct = (y_hat.argmax(dim=1) == y).to(torch.float32)
        return mean_if(correct, averaged)


class FashionMNIST(fashion_mnist.FashionMNIST):
    layout = 'NCHW'

    @staticmethod
    def to_framework(images, labels):
        return torch.from_numpy(images), torch.from_numpy(labels).long()


def memory_format_for(device):
    # On the CPU, oneDNN's convolutions run fastest channels-last (NHWC): GoogLeNet trains
    # 1.2x to 1.6x faster than in the default NCHW (bench/README.md). Values and shapes
    # stay the same.
    return torch.channels_last if device.type == 'cpu' else torch.preserve_format


def to_device(batch, device):
    return [a.to(device, non_blocking=True, memory_format=memory_format_for(device)
                 if a.dim() == 4 else torch.preserve_format) for a in batch]


def rng_state():
    """The random generators' state: dropout draws from them, and a resumed run must draw
    what the uninterrupted one would have."""
    return {'cpu': torch.get_rng_state(),
            'cuda': torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state):
    torch.set_rng_state(state['cpu'].cpu())
    if state['cuda'] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state['cuda']])


def batchnorm_layers(model):
    return [name for name, module in model.named_modules()
            if isinstance(module, nn.modules.batchnorm._BatchNorm)]


class Trainer(training.Trainer):
    """On several devices, see the module docstring: `fit` trains through worker processes
    and, when it returns, the model holds the trained weights, on the CPU.

    In a script started by `torchrun` (`torchrun --nproc-per-node=N script.py`), each process
    trains on one device (the GPU of its local rank, or with `num_gpus=0` or no GPU, the CPU)
    with the process group torchrun set up (d2lmini joins it if the script has not): every
    process runs the same `fit`, on its part of each global batch; the losses are averaged
    over the processes at each sync point, so that all see the same (and stop together on a
    NaN); process 0 alone resumes from and writes checkpoints, prints the progress and the
    record, and hands where it resumed to the others."""

    framework = 'pytorch'
    cpu, gpu, count_gpus = staticmethod(cpu), staticmethod(gpu), staticmethod(num_gpus)
    data_parallel = True
    _pool = None            # the worker processes of a fit on several devices (d2lmini.workers)
    _device_model = None    # the GPU's name as a worker saw it
    _ddp = None             # in a launched process: the training step under DDP

    def __init__(self, max_epochs, num_gpus=0, *args, **kwargs):
        super().__init__(max_epochs, num_gpus, *args, **kwargs)
        # (rank, local rank, processes) of a process that torchrun started, else None
        self.launch = devices.launched()
        if self.launch is not None:
            self.placement = devices.place_launched(self.num_gpus, self.launch[2],
                                                    self.count_gpus())
            self.on_gpu = self.placement.kind == 'gpu'
            self.device = self.gpu(self.launch[1]) if self.on_gpu else self.cpu()
            self.devices = [self.device]

    def count_cpu_devices(self):
        return devices.cpu_devices_requested() or 1

    def devices_for(self, placement):
        if placement.kind == 'gpu':
            return [self.gpu(i) for i in range(placement.count)]
        return [self.cpu()] * placement.count

    @property
    def parallel(self):
        """Whether this run trains on several devices through worker processes (not in a
        process that torchrun started: that one is a worker)."""
        return self.placement.count > 1 and self.launch is None

    @property
    def host(self):
        """Where this process keeps the model: its device, or with several, the CPU (the
        workers hold the replicas)."""
        return self.cpu() if self.parallel else self.device

    @property
    def memory_format(self):
        return memory_format_for(self.host)

    def device_model(self):
        if not self.on_gpu:
            return None
        if self.parallel:   # asking here would start CUDA in the process that forks
            return self._device_model
        return torch.cuda.get_device_name(self.device)

    def versions(self):
        return {'torch': torch.__version__}

    def threads(self):
        return {'torch_num_threads': torch.get_num_threads(),
                'torch_num_interop_threads': torch.get_num_interop_threads()}

    def fit(self, model, data):
        if self.launch is not None:
            join_process_group(self)
            if self.launch[0] != 0:     # process 0 alone shows the run
                with contextlib.redirect_stdout(io.StringIO()):
                    return super().fit(model, data)
        if not self.parallel:
            return super().fit(model, data)
        try:
            super().fit(model, data)
        except BaseException:
            # After Ctrl-C or a NaN too the model takes the workers' weights, unless they do
            # not come (a worker stuck): then it keeps its own, and the error goes on.
            self._stop_workers(timeout=STATE_TIMEOUT_S, quiet=True)
            raise
        self._stop_workers()

    def prepare_model(self, model, first_batch):
        if any(nn.parameter.is_lazy(p) for p in model.parameters()):
            # Lazy layers not yet shaped by `apply_init`: one forward pass gives them their
            # shapes (and PyTorch's default initialization) before they can be moved.
            with torch.no_grad():
                model(*[a.to(self.host) for a in first_batch[:-1]])
        if next(model.parameters(), None) is None:
            raise training.no_parameters_error(model)     # not SGD's "empty parameter list"
        if not any(p.requires_grad for p in model.parameters()):
            raise training.no_parameters_error(model, frozen=True)
        if self.placement.count > 1 and not self.on_gpu and batchnorm_layers(model):
            raise batchnorm_on_cpu_devices_error(model, self.placement)
        model.to(self.host, memory_format=self.memory_format)
        if self.launch is not None and self.on_gpu:     # statistics of the global batch
            nn.SyncBatchNorm.convert_sync_batchnorm(model)
        self.optimizer = model.configure_optimizers()
        if self.launch is not None:
            self._ddp = nn.parallel.DistributedDataParallel(
                TrainingStep(model), device_ids=[self.device.index] if self.on_gpu else None)

    def default_callbacks(self):
        callbacks = super().default_callbacks()
        if self.launch is None:
            return callbacks
        # Process 0 resumes, then hands the run to the others; they show and write nothing.
        if self.launch[0] == 0:
            checkpointers = [c for c in callbacks if isinstance(c, checkpoint.Checkpointer)]
            others = [c for c in callbacks if c not in checkpointers]
            return checkpointers + [FollowProcess0(), StopTogether()] + others
        return [FollowProcess0(), StopTogether()]

    def model_structure(self):
        return repr(self.model) + '\n' + training.user_code({type(m) for m in self.model.modules()})

    def output_shape(self, model, inputs):
        was_training = model.training
        try:
            model.eval()
            with torch.no_grad():
                return tuple(model(*[a[:1] for a in inputs]).shape)
        finally:
            model.train(was_training)

    def parameter_arrays(self):
        pool = self._live_pool()
        state = self._state_of_rank_0(pool)['model'] if pool else self.model.state_dict()
        return {name: value.detach().cpu().numpy().copy() for name, value in state.items()}

    def model_and_optimizer(self):
        return self.model.state_dict(), self.optimizer.state_dict()

    def snapshot(self):
        pool = self._live_pool()
        if pool:    # each worker keeps its copy, on its device
            token = pool.new_id()
            pool.broadcast(('snapshot', token))
            return WorkerSnapshot(token)
        model_state, optimizer_state = self.model_and_optimizer()
        return ({name: value.clone() for name, value in model_state.items()},
                copy.deepcopy(optimizer_state))

    def restore(self, snapshot):
        pool = self._live_pool()
        if isinstance(snapshot, WorkerSnapshot):
            if pool is None:
                raise workers.WorkerError('The worker processes holding this snapshot have '
                                          'stopped.')
            pool.broadcast(('restore', snapshot.token))
            return
        self.model.load_state_dict(snapshot[0])
        self.optimizer.load_state_dict(snapshot[1])
        if pool:
            pool.broadcast(('load', serialize({'model': snapshot[0], 'optimizer': snapshot[1]})))

    def save_state(self, directory):
        pool = self._live_pool()
        if pool:    # the replicas are the same: rank 0's, in the format of one device's
            (directory / 'state.pt').write_bytes(pool.ask(('state',), [0])[0])
            return
        model_state, optimizer_state = self.model_and_optimizer()
        torch.save({'model': model_state, 'optimizer': optimizer_state, 'rng': rng_state()},
                   directory / 'state.pt')

    def load_state(self, directory):
        # A checkpoint holds one model, written on any number of devices: it loads on any.
        content = (directory / 'state.pt').read_bytes()
        state = torch.load(io.BytesIO(content), map_location=self.host, weights_only=True)
        self.restore((state['model'], state['optimizer']))
        set_rng_state(state['rng'])
        pool = self._live_pool()
        if pool:
            pool.broadcast(('rng', serialize(state['rng'])))

    def prepare_batch(self, batch):
        if self.parallel:       # split and sent to the workers by the steps
            return list(batch)
        return to_device(batch, self.device)

    def train_step(self, batch):
        if self.parallel:
            return self._send_parts('train', batch)[0]
        self.model.train()
        if self._ddp is not None:       # a launched process: its part of the global batch
            loss = self._ddp(*self.parts(batch)[self.launch[0]])
        else:
            loss = self.model.training_step(batch)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.gradient_clip_val > 0:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.gradient_clip_val)
        self.optimizer.step()
        return loss.detach()

    def eval_step(self, batch):
        if self.parallel:
            return self._send_parts('eval', batch)
        self.model.eval()
        with torch.no_grad():
            return [value.detach() for value in self.model.validation_step(batch)]

    def to_numpy(self, scalars):
        if self._ddp is not None:
            # A training loss is that of the process's part: their mean is the global batch's.
            # (All evaluate each validation batch whole: the mean of equal values.)
            values = torch.stack(scalars).double()
            dist.all_reduce(values)
            return (values / self.placement.count).cpu().numpy()
        if not scalars or not isinstance(scalars[0], WorkerScalar):
            return torch.stack(scalars).cpu().numpy()
        ids = list(dict.fromkeys(s.id for s in scalars))
        answers = self._workers().ask(('fetch', ids))
        # Each worker's value is the mean over its part of the batch: weighted by its size.
        return np.array([sum(size * float(answer[s.id][s.index])
                             for size, answer in zip(s.sizes, answers)) / sum(s.sizes)
                         for s in scalars])

    # --- several devices: the worker processes ----------------------------------------------
    def parts(self, batch):
        """The global batch split along its first axis into one contiguous part per device
        (the first device takes the first examples); a validation batch the devices cannot
        share evenly is split as evenly as it can be."""
        return list(zip(*[torch.tensor_split(a, self.placement.count) for a in batch]))

    def _send_parts(self, kind, batch):
        pool = self._workers()
        token, parts = pool.new_id(), self.parts(batch)
        for rank, part in enumerate(parts):
            pool.send(rank, (kind, token, [a.numpy() for a in part]))
        sizes = [len(part[-1]) for part in parts]
        return [WorkerScalar(token, index, sizes) for index in range(1 if kind == 'train' else 2)]

    def _live_pool(self):
        pool = self._pool
        return pool if pool is not None and not pool.closed else None

    def _workers(self):
        """The worker processes of this fit, started (forked) on first use: they start from
        the model, optimizer and random state this process holds then."""
        assert self.parallel, 'one device: no worker processes'
        if self._pool is not None:
            if self._pool.closed:
                raise workers.WorkerError('The worker processes of this run have stopped.')
            return self._pool
        if self.on_gpu and torch.cuda.is_initialized():
            raise RuntimeError(
                f'This process has used CUDA already, so it cannot start the worker processes '
                f'that train on {self.placement.describe()}: they are forked from it, and CUDA '
                f'does not work in a process forked after it started. Train on several GPUs '
                f'before anything else uses the GPU (restart the notebook\'s kernel), or run a '
                f'script with torchrun.')
        store = tempfile.mkdtemp(prefix='d2lmini-ddp-')
        self._pool = workers.Pool(self.placement.count,
                                  lambda rank, receive, reply: serve(self, store, rank, receive,
                                                                     reply),
                                  self.placement.names)
        self._pool.store = store
        self._device_model = self._pool.ask(('hello',), [0])[0]
        return self._pool

    def _state_of_rank_0(self, pool, timeout=None):
        return torch.load(io.BytesIO(pool.ask(('state',), [0], timeout)[0]), map_location='cpu',
                          weights_only=True)

    def _stop_workers(self, timeout=None, quiet=False):
        """After a fit on several devices: the trained state into this process's model (unless
        a worker failed, or, `quiet`, none came within `timeout` s), then stop the workers."""
        pool, self._pool = self._pool, None
        if pool is None:
            return
        try:
            if not pool.closed:
                state = self._state_of_rank_0(pool, timeout)
                self.model.load_state_dict(state['model'])
                self.optimizer.load_state_dict(state['optimizer'])
                set_rng_state(state['rng'])
        except workers.WorkerError as error:
            if not quiet:
                raise
            print(f'{error} The model keeps the weights it had when this fit began.',
                  file=sys.stderr, flush=True)
        finally:
            pool.close()
            shutil.rmtree(pool.store, ignore_errors=True)


STATE_TIMEOUT_S = 60    # how long a fit that failed waits for the workers' weights


def join_process_group(trainer):
    """In a process that torchrun started: the process group, set up from the variables
    torchrun sets unless the script did it already."""
    if dist.is_initialized():
        return
    if trainer.on_gpu:
        torch.cuda.set_device(trainer.device)
    dist.init_process_group('nccl' if trainer.on_gpu else 'gloo')


class FollowProcess0(Callback):
    """In processes that torchrun started: process 0 (after its checkpointer resumed the run,
    if there was one to resume) hands its weights, optimizer and random state, and where the
    run stands, to the others."""

    def on_fit_start(self, trainer):
        rank = trainer.launch[0]
        message = [None]
        if rank == 0:
            model_state, optimizer_state = trainer.model_and_optimizer()
            message = [(serialize({'model': model_state, 'optimizer': optimizer_state,
                                   'rng': rng_state()}),
                        trainer.resume_point() if trainer.resumed_from else None,
                        trainer.resumed_from)]
        dist.broadcast_object_list(message, src=0,
                                   device=trainer.device if trainer.on_gpu else None)
        if rank == 0:
            return
        content, point, source = message[0]
        state = deserialize(content, trainer.device)
        trainer.model.load_state_dict(state['model'])
        trainer.optimizer.load_state_dict(state['optimizer'])
        if point is not None:
            trainer.resume_from(point, source['checkpoint'])


class StopTogether(Callback):
    """In processes that torchrun started: a Ctrl-C (or SIGTERM) that reached any of them
    stops all after the same step (a process that trained on alone would wait for the others
    forever)."""

    def on_train_step_end(self, trainer):
        flag = torch.tensor([int(trainer._interrupt.requested)], device=trainer.device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        if flag.item() and not trainer._interrupt.requested:
            trainer._interrupt.requested = True


def batchnorm_on_cpu_devices_error(model, placement):
    return devices.batchnorm_refused(
        model, batchnorm_layers(model), placement,
        'PyTorch synchronizes them over devices (SyncBatchNorm) on GPUs only',
        'Train it on one device (num_gpus=0, or without D2LMINI_CPU_DEVICES), or on GPUs.')


class WorkerScalar:
    """A scalar a worker holds until the next sync point: the `index`-th value of the step
    `id`, computed on parts of `sizes` examples."""

    def __init__(self, id, index, sizes):
        self.id, self.index, self.sizes = id, index, sizes


class WorkerSnapshot:
    def __init__(self, token):
        self.token = token


def serialize(value):
    """Tensors (state dicts) as bytes, in PyTorch's own format: a pipe sends them whole."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    return buffer.getvalue()


def deserialize(content, device):
    return torch.load(io.BytesIO(content), map_location=device, weights_only=True)


class TrainingStep(nn.Module):
    """The model's training step as a module's forward pass: what DistributedDataParallel
    wraps, so that the gradients of the loss are averaged over the devices."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, *batch):
        return self.model.training_step(batch)


def serve(trainer, store, rank, receive, reply):
    """A worker process: the model's replica on device `rank`, running what the driving
    process sends (d2lmini.workers)."""
    # A forked process cannot use the OpenMP threads its parent started (gloo workers hang in
    # their first forward pass): one thread each.
    torch.set_num_threads(1)
    count = trainer.placement.count
    if trainer.on_gpu:
        device = torch.device('cuda', rank)
        torch.cuda.set_device(device)
    else:
        device = torch.device('cpu')
    dist.init_process_group('nccl' if trainer.on_gpu else 'gloo',
                            init_method=f'file://{os.path.join(store, "store")}', rank=rank,
                            world_size=count)
    try:
        model = trainer.model.to(device, memory_format=memory_format_for(device))
        if trainer.on_gpu:      # statistics of the global batch
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)
        optimizer = model.configure_optimizers()
        optimizer.load_state_dict(trainer.optimizer.state_dict())
        step = nn.parallel.DistributedDataParallel(
            TrainingStep(model), device_ids=[rank] if trainer.on_gpu else None)

        def reseed():       # each device draws its own dropout masks
            if rank:
                torch.manual_seed(int(torch.randint(0, 2 ** 62, ())) + rank)
        reseed()
        results, snapshots = {}, {}
        while True:
            message = receive()
            kind = message[0]
            if kind == 'stop':
                return
            if kind == 'hello':
                reply(torch.cuda.get_device_name(device) if trainer.on_gpu else None)
            elif kind == 'train':
                _, token, arrays = message
                batch = to_device([torch.from_numpy(a) for a in arrays], device)
                model.train()
                loss = step(*batch)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if trainer.gradient_clip_val > 0:
                    nn.utils.clip_grad_norm_(model.parameters(), trainer.gradient_clip_val)
                optimizer.step()
                results[token] = loss.detach().reshape(1)
            elif kind == 'eval':
                _, token, arrays = message
                batch = to_device([torch.from_numpy(a) for a in arrays], device)
                model.eval()
                with torch.no_grad():       # the model itself: no collective in evaluation
                    results[token] = (torch.stack([v.detach() for v in
                                                   model.validation_step(batch)])
                                      if len(arrays[-1]) else torch.zeros(2, device=device))
            elif kind == 'fetch':
                values = torch.cat([results[token] for token in message[1]]).cpu().numpy()
                sizes = [len(results.pop(token)) for token in message[1]]
                offsets = np.cumsum([0] + sizes)
                reply({token: values[offsets[i]:offsets[i + 1]]
                       for i, token in enumerate(message[1])})
            elif kind == 'snapshot':
                snapshots = {token: value for token, value in snapshots.items()
                             if token == max(snapshots)}    # the last one, and this one
                snapshots[message[1]] = ({k: v.clone() for k, v in model.state_dict().items()},
                                         copy.deepcopy(optimizer.state_dict()))
            elif kind == 'restore':
                model.load_state_dict(snapshots[message[1]][0])
                optimizer.load_state_dict(snapshots[message[1]][1])
            elif kind == 'load':
                state = deserialize(message[1], device)
                model.load_state_dict(state['model'])
                optimizer.load_state_dict(state['optimizer'])
            elif kind == 'rng':
                set_rng_state(deserialize(message[1], 'cpu'))
                reseed()
            elif kind == 'state':
                reply(serialize({'model': model.state_dict(), 'optimizer': optimizer.state_dict(),
                                 'rng': rng_state()}))
            elif kind == 'parameters':
                reply({name: value.detach().cpu().numpy()
                       for name, value in model.state_dict().items()})
            else:
                raise ValueError(f'unknown message {kind!r}')
    finally:
        dist.destroy_process_group()
