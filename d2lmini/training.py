"""The framework-free training loop. A framework module subclasses `Trainer` and fills in the
hooks marked below; budgets, sync points, NaN and Ctrl-C handling, callbacks, checkpoints and
the run record are written once, here.

Losses stay on the device as a list of scalars and are fetched in one transfer at each sync
point (`SYNCS_PER_EPOCH` times per epoch), which is also where NaN/inf losses are caught and a
copy of the last good weights is kept.
"""
import contextlib
import copy
import dataclasses
import hashlib
import inspect
import itertools
import math
import re
import signal
import threading
import time
import types

import numpy as np

from d2lmini import budget as budgets
from d2lmini import checkpoint, checks, devices, frameworks, progress, record, seeding
from d2lmini.callback import Callback
from d2lmini.errors import ModelError, NonFiniteLossError
from d2lmini.hyperparameters import HyperParameters

SYNCS_PER_EPOCH = 4


def steps_per_sync(train_batches_per_epoch):
    """How many steps run between two sync points of an epoch of `train_batches_per_epoch`."""
    return max(1, math.ceil(train_batches_per_epoch / SYNCS_PER_EPOCH))


class Trainer(HyperParameters):
    """Trains a model on a data module: `Trainer(max_epochs=10).fit(model, data)`.

    Args:
        max_epochs: epochs to train (int >= 1); the budget in force (`D2LMINI_BUDGET`) may cap
            it, see `d2lmini.budget`.
        num_gpus: 0 for the CPU; N >= 1 for the first N GPUs (or all there are, if fewer), data
            parallel on more than one (`batch_size` is the global batch, split evenly). With
            no GPU, the CPU stands in: one device, or up to `D2LMINI_CPU_DEVICES` (see
            `d2lmini.devices`). The start line says what became of `num_gpus` when it is not
            what runs; an adapter without data parallelism trains on one device and says so.
        gradient_clip_val: rescale the gradients when their global L2 norm (over all
            parameters together) exceeds this value; 0 turns clipping off.
        checkpoint_dir: where to save a checkpoint after every epoch and on Ctrl-C, and to
            resume from; default `$D2LMINI_CHECKPOINT_DIR`, else none (see `d2lmini.checkpoint`).
        callbacks: extra `Callback`s, run after the built-in ones.

    Raises `ValueError` for a bad argument. After `fit`:
        history: one dict per epoch: `epoch` (1-based), `train_loss` (mean cross-entropy of the
            epoch's steps, nats), `val_loss` (nats), `val_acc` (fraction in [0, 1]),
            `examples_per_sec` (training examples per wall-clock second, validation excluded;
            None if the epoch was resumed after its last step), `seconds` (the epoch's
            training time).
        losses: every completed training step's loss (nats), in order.
        record: the run record (see `d2lmini.record`); status: 'finished', 'interrupted' or
            'failed'; interrupted: whether Ctrl-C ended the run.

    Ctrl-C (KeyboardInterrupt) stops training after the step in progress: the model keeps the
    weights of the last completed step, `losses` every completed step's loss, a checkpoint is
    written (if enabled), and the KeyboardInterrupt is raised again, so that a script stops. A
    second Ctrl-C interrupts at once. A NaN or infinite loss raises `NonFiniteLossError` after
    restoring the weights of the last sync point whose losses were all finite.
    """

    def __init__(self, max_epochs, num_gpus=0, gradient_clip_val=0, checkpoint_dir=None,
                 callbacks=()):
        max_epochs = checks.integer('max_epochs', max_epochs, 1)
        num_gpus = checks.integer('num_gpus', num_gpus, 0)
        gradient_clip_val = checks.non_negative_number('gradient_clip_val', gradient_clip_val)
        checkpoint_dir = checks.optional_path('checkpoint_dir', checkpoint_dir)
        if isinstance(callbacks, Callback) or not hasattr(callbacks, '__iter__'):
            raise ValueError(f'callbacks={callbacks!r} is not allowed: it must be a list of '
                             f'd2lmini Callbacks, e.g. callbacks=[MyCallback()].')
        callbacks = list(callbacks)
        for callback in callbacks:
            if not isinstance(callback, Callback):
                raise ValueError(f'callbacks: {callback!r} is not a d2lmini Callback.')
        self.save_hyperparameters()
        # Like d2l: asking for a GPU where there is none falls back to the CPU (and says so).
        self.placement = devices.place(
            num_gpus, frameworks.get(self.framework).label,
            self.count_gpus() if num_gpus else 0,
            self.count_cpu_devices() if num_gpus > 1 else 1, self.data_parallel)
        self.on_gpu = self.placement.kind == 'gpu'
        self.devices = self.devices_for(self.placement)   # the framework's device objects
        self.device = self.devices[0]
        self.model = self._prepared = None   # the model; the one with optimizer and steps built
        self.num_classes = None     # logits per example of a classifier, once it is prepared
        self.earlier_fits = 0       # finished fits of this same model before the current one
        self._structure = None      # (model, digest of its structure), worked out when needed
        self.status = self.record = None
        self.interrupted = False

    # --- what a framework module provides ---------------------------------------------------
    framework = None            # the framework's id, e.g. 'pytorch'
    # the framework's device functions, as static methods: cpu(), gpu(i), count_gpus()
    cpu = gpu = count_gpus = None
    # whether the adapter trains data-parallel on several devices (else on one, and says so)
    data_parallel = False

    def count_cpu_devices(self):
        """How many CPU devices the framework offers to train on (`D2LMINI_CPU_DEVICES`)."""
        return 1

    def devices_for(self, placement):
        """The framework's device objects for `placement` (a `devices.Placement`)."""
        if placement.kind == 'gpu':
            return [self.gpu(i) for i in range(placement.count)]
        return [self.cpu()]

    def gpu_available(self):
        """Whether the framework sees a GPU (decides the 'auto' budget)."""
        return self.count_gpus() > 0

    def device_name(self):
        """'cpu', 'gpu:0', or '2 devices (cpu:0, cpu:1)'."""
        return self.placement.describe()

    def _devices_note(self):
        """What became of `num_gpus`, when it is not what runs: never a silent fallback."""
        return self.placement.note

    def prepare_model(self, model, first_batch):
        """Place the model, build its optimizer and compiled steps (once per model)."""
        raise NotImplementedError

    def moved_since_prepared(self, model):
        """Whether another Trainer has placed `model` elsewhere since this one prepared it (e.g.
        on other devices): then its compiled steps and optimizer hold variables or copies the
        model no longer uses, and `fit` prepares it again (a new optimizer state)."""
        return False

    def model_structure(self):
        """The prepared model's architecture in the framework's own words: its layers with their
        kinds and settings, and the source of the user's classes (JAX: the traced forward
        pass), so that two models that compute differently describe themselves differently.
        Part of the run's identity (`run_identity`)."""
        raise NotImplementedError

    def output_shape(self, model, inputs):
        """The shape of the prepared model's outputs for `inputs` (a batch without its labels),
        in inference mode; changes no weights, statistics or random state."""
        raise NotImplementedError

    def labels_to_numpy(self, labels):
        """A batch's labels (framework arrays on the host) as a NumPy array, without waiting
        for queued device work."""
        return np.asarray(labels)

    def prepare_batch(self, batch):
        return batch

    def train_step(self, batch):
        """One update; returns the batch's mean loss as a device scalar."""
        raise NotImplementedError

    def eval_step(self, batch):
        """Returns (mean loss, accuracy) of a batch as device scalars."""
        raise NotImplementedError

    def to_numpy(self, scalars):
        """A list of device scalars as one NumPy array, in one transfer."""
        raise NotImplementedError

    def parameter_arrays(self):
        """{name: NumPy copy} of the prepared model's parameters and mutable state."""
        raise NotImplementedError

    def snapshot(self):
        """An in-memory copy of weights, mutable state and optimizer state."""
        raise NotImplementedError

    def restore(self, snapshot):
        raise NotImplementedError

    def save_state(self, directory):
        """Write weights, mutable state and optimizer state into `directory` (which exists
        and is empty) in the framework's own checkpoint format."""
        raise NotImplementedError

    def load_state(self, directory):
        raise NotImplementedError

    def device_model(self):
        """The GPU's model name, or None on the CPU."""
        return None

    def versions(self):
        """{library: version} of the framework's libraries."""
        return {}

    def threads(self):
        """{setting: value} of the framework's CPU thread settings."""
        return {}

    def fetch(self, scalars):
        """`to_numpy`, as float64 so that sums over an epoch lose no precision."""
        return np.asarray(self.to_numpy(scalars), np.float64)

    # --- the loop ---------------------------------------------------------------------------
    def default_callbacks(self):
        directory, per_run = checkpoint.directory(self.checkpoint_dir)
        # The checkpointer first: it restores a run before the others show it.
        callbacks = [] if directory is None else [checkpoint.Checkpointer(directory, per_run)]
        return callbacks + [progress.ProgressBoard(), progress.EpochProgress(),
                            record.RunRecorder()]

    def fit(self, model, data):
        """Train `model` on `data` for `max_epochs` epochs (or what the budget allows).

        A second `fit` of the same model continues from its trained weights. Raises
        `ValueError` if the data yield no training or no validation batch, `NonFiniteLossError`
        on a NaN/inf loss, `CheckpointError` for a checkpoint that does not fit, `ModelError`
        for a model without parameters or a batch whose labels are not class indices of a
        classifier's logits (checked on the host before each step), and re-raises
        KeyboardInterrupt (see the class docstring).
        """
        for name, value, needs in (('data', data, 'train_dataloader'),
                                   ('model', model, 'configure_optimizers')):
            if not hasattr(value, needs):
                raise TypeError(f'fit(model, data): {name} is a {type(value).__name__}, which has '
                                f'no {needs}(); pass a d2lmini Module and DataModule, in that '
                                f'order.')
        self.budget = budgets.resolve(self.gpu_available())
        train_loader, val_loader = data.train_dataloader(), data.val_dataloader()
        self.train_batches_per_epoch = self.budget.train_batches(len(train_loader))
        self.val_batches_per_epoch = self.budget.val_batches(len(val_loader))
        for kind, count, loader in (('training', self.train_batches_per_epoch, train_loader),
                                    ('validation', self.val_batches_per_epoch, val_loader)):
            if count < 1:
                raise ValueError(
                    f'{type(data).__name__} yields no {kind} batch ({describe_loader(loader)}): '
                    f'nothing to train on. Use a smaller batch_size or more examples.')
        if getattr(train_loader, 'batch_size', None) is not None:
            devices.check_divisible(train_loader.batch_size, self.placement,
                                    f'batch_size of {type(data).__name__}')
        self.epochs_planned = self.budget.epochs(self.max_epochs)
        self.steps_per_sync = steps_per_sync(self.train_batches_per_epoch)
        if model is self._prepared and self.moved_since_prepared(model):
            self._prepared = None       # its steps and optimizer hold what the model left
        if model is not self._prepared:
            self.earlier_fits = 0
        else:
            self._check_unchanged_settings(model)
            # After a finished fit, another one trains on from its weights: another run. After
            # an interrupted one, it is the same run, resumed.
            self.earlier_fits += self.status == 'finished'
        self.data, self.train_loader = data, train_loader
        self.epoch = self.step = self.start_epoch = self.start_step = 0
        self.history, self.losses, self.epoch_losses, self._pending = [], [], [], []
        self.status, self.interrupted, self.resumed_from = 'running', False, None
        self.stop_signal = None
        self.elapsed_before = 0.0       # seconds spent in earlier processes (after a resume)
        self.started = time.time()
        self._epoch_rng_state = None    # the data order's state before this epoch's shuffle
        self.callbacks_in_use = self.default_callbacks() + self.callbacks
        print(f'Training on {self.device_name()} with {self.budget.describe()}'
              f'{self._devices_note()}', flush=True)
        with deferred_interrupts() as self._interrupt:
            try:
                if model is not self._prepared:
                    self.model, self._prepared = model, None
                    # The validation loader: it draws no random numbers, so the data order
                    # stays the same.
                    first_batch = self.prepare_batch(next(iter(val_loader)))
                    self.prepare_model(model, first_batch)
                    self.num_classes = self._count_classes(model, first_batch)
                    self._prepared, self._prepared_settings = model, model_hyperparameters(model)
                self._check_weights()
                self._call('on_fit_start')
                self._good = (self.snapshot(), self.start_epoch, self.start_step)
                for self.epoch in range(self.start_epoch, self.epochs_planned):
                    self._epoch_rng_state = self._data_rng_state()
                    self._call('on_epoch_start')
                    self.fit_epoch(train_loader)
                    self.validate(val_loader)
                    self._call('on_epoch_end')
                    self.start_step, self.epoch_losses = 0, []
                self.status = 'finished'
            except KeyboardInterrupt:
                self._stop_interrupted()
                raise
            except BaseException:
                self.status = 'failed'
                raise
            finally:
                self._call_all('on_fit_end')

    def run_identity(self):
        """What makes two `fit`s the same run, as JSON-ready data: a checkpoint of one may
        only be resumed by the other. The framework, the model's class, a digest of its
        structure (`model_structure`: a model of the same class and settings with other layers
        or code is another run) and its hyperparameters (their values now), the seed, the
        budget, the data (class, hyperparameters, number of training examples), gradient
        clipping, and how many finished fits of the same model came before. Not `max_epochs`:
        a resumed run may be planned longer or shorter."""
        data_settings = {k: v for k, v in getattr(self.data, 'hparams', {}).items()}
        return json_ready(dict(
            framework=self.framework, model=type(self.model).__name__,
            structure=self._structure_digest(),
            hyperparameters=model_hyperparameters(self.model), seed=seeding.current_seed(),
            budget=self.budget.name,
            data=dict(type=type(self.data).__name__, hyperparameters=data_settings,
                      train_examples=getattr(self.train_loader, 'num_examples', None),
                      train_batches_per_epoch=self.train_batches_per_epoch),
            gradient_clip_val=self.gradient_clip_val,
            # a second fit of the same model starts from trained weights: another run (only
            # when there were earlier fits, so that a first fit's identity stays as it was)
            **({'earlier_fits': self.earlier_fits} if self.earlier_fits else {})))

    def step_seed(self):
        """A seed for the random draws of the step about to run, from the run's seed, the
        epoch and the step: the same in a resumed run as in an uninterrupted one. An int in
        [0, 2**31)."""
        text = f'{seeding.current_seed()}-{self.epoch}-{self.step}'
        return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], 'big') >> 1

    def _structure_digest(self):
        """16 hex digits of SHA-256 of `model_structure`, worked out once per prepared model."""
        cached = self._structure
        if cached is None or cached[0] is not self.model:
            text = re.sub(r' at 0x[0-9a-fA-F]+', '', self.model_structure())   # same every run
            cached = self._structure = (self.model, hashlib.sha256(text.encode()).hexdigest()[:16])
        return cached[1]

    def _check_unchanged_settings(self, model):
        now = model_hyperparameters(model)
        changed = [f'{name}={now.get(name)!r} (was {before!r})'
                   for name, before in self._prepared_settings.items() if now.get(name) != before]
        if changed:
            raise ValueError(
                f'{type(model).__name__} changed since this Trainer prepared it: '
                f'{", ".join(changed)}. Its optimizer and compiled steps were built with the old '
                f'values, so they would be silently ignored. To train on with the new ones, use '
                f'a new Trainer (the model keeps its weights), e.g. '
                f'd2l.Trainer(max_epochs={self.max_epochs}).fit(model, data).')

    def resume_point(self):
        """Where the run stands, as JSON-ready data from which `resume_from` continues it
        exactly: {epoch, step (steps done in that epoch), history, losses, epoch_losses (the
        epoch's losses so far), data_rng_state (the data order's random state to replay the
        epoch's shuffle with), elapsed_s (seconds of training in all processes)}."""
        epoch_done = len(self.history) > self.epoch      # validated and in the history
        if epoch_done or self._epoch_rng_state is None:  # before the epoch's shuffle
            rng_state = self._data_rng_state()
        else:
            rng_state = self._epoch_rng_state
        epoch_losses = [] if epoch_done or not self.epoch_losses else \
            np.concatenate(self.epoch_losses).tolist()
        return dict(epoch=self.epoch + 1 if epoch_done else self.epoch,
                    step=0 if epoch_done else self.step,
                    history=self.history, losses=self.losses, epoch_losses=epoch_losses,
                    data_rng_state=rng_state,
                    elapsed_s=self.elapsed_before + time.time() - self.started)

    def resume_from(self, state, source=None):
        """Continue the run `state` describes (as `resume_point` gives it, e.g. read from a
        checkpoint whose weights are already loaded): the next epoch and step, the history and
        losses so far, the data order. `source` names where it came from (for the record)."""
        self.history, self.losses = list(state['history']), list(state['losses'])
        self.epoch_losses = [np.asarray(state['epoch_losses'])] if state['epoch_losses'] else []
        self.start_epoch, self.start_step = state['epoch'], state['step']
        self.epoch, self.step = self.start_epoch, self.start_step
        self.elapsed_before = state['elapsed_s']
        rng = loader_rng(self.train_loader)
        if rng is not None and state['data_rng_state'] is not None:
            rng.bit_generator.state = state['data_rng_state']
        self.resumed_from = dict(checkpoint=source, epoch=state['epoch'], step=state['step'])

    def _data_rng_state(self):
        rng = loader_rng(self.train_loader)
        return None if rng is None else copy.deepcopy(rng.bit_generator.state)

    def fit_epoch(self, train_loader):
        """The epoch's training steps (from `start_step` on, after a resume)."""
        self.step, examples, self._pending = self.start_step, 0, []
        sync_every = self.steps_per_sync
        self._epoch_seconds = 0.0
        start = time.perf_counter()
        batches = batches_from(train_loader, self.start_step)
        for batch in itertools.islice(batches, self.train_batches_per_epoch - self.start_step):
            self._check_labels(batch, 'training')
            devices.check_divisible(self.batch_size(batch), self.placement,
                                    f'The training batch of epoch {self.epoch + 1}, step '
                                    f'{self.step + 1},')
            batch = self.prepare_batch(batch)
            self._pending.append(self.train_step(batch))
            self.step += 1
            examples += self.batch_size(batch)
            self._call('on_train_step_end')
            if len(self._pending) == sync_every or self.step == self.train_batches_per_epoch:
                self._sync_losses()
            if self._interrupt.requested:
                raise KeyboardInterrupt
        self._epoch_seconds = time.perf_counter() - start
        self._epoch_examples_per_sec = examples / self._epoch_seconds if examples else None

    def validate(self, val_loader):
        val_loss, val_acc = self.evaluate(val_loader)
        self.history.append(dict(
            epoch=self.epoch + 1, train_loss=float(np.mean(np.concatenate(self.epoch_losses))),
            val_loss=val_loss, val_acc=val_acc, examples_per_sec=self._epoch_examples_per_sec,
            seconds=self._epoch_seconds))

    def evaluate(self, val_loader):
        """(mean loss, accuracy) over the validation batches the budget allows, weighted by
        batch size."""
        results, sizes = [], []
        for batch in itertools.islice(val_loader, self.val_batches_per_epoch):
            self._check_labels(batch, 'validation')
            batch = self.prepare_batch(batch)
            results.extend(self.eval_step(batch))
            sizes.append(self.batch_size(batch))
            if self._interrupt.requested:
                raise KeyboardInterrupt
        values = self.fetch(results).reshape(-1, 2)
        weights = np.asarray(sizes, np.float64) / np.sum(sizes)
        return float(values[:, 0] @ weights), float(values[:, 1] @ weights)

    def _sync_losses(self):
        losses, self._pending = self.fetch(self._pending), []
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            self._fail_non_finite(losses, int(bad[0]))
        self.losses.extend(losses.tolist())
        self.epoch_losses.append(losses)
        # Every loss so far is finite: these weights are the ones to return to after a NaN.
        self._good = (self.snapshot(), self.epoch, self.step)
        for callback in self.callbacks_in_use:
            callback.on_losses(self, losses)

    def _fail_non_finite(self, losses, first_bad):
        step = self.step - len(losses) + first_bad + 1
        snapshot, epoch, good_step = self._good
        self.restore(snapshot)
        where = (f'after step {good_step} of epoch {epoch + 1}' if good_step
                 else f'from the start of epoch {epoch + 1}' if epoch else 'from before training')
        raise NonFiniteLossError(
            f'The training loss became {losses[first_bad]} in epoch {self.epoch + 1}, step {step}. '
            f'Training stopped, and the model was restored to its weights {where} (the last '
            f'point where every loss was finite). Try a smaller learning rate, or set '
            f'gradient_clip_val in the Trainer.', epoch=self.epoch + 1, step=step)

    def _count_classes(self, model, first_batch):
        """The number of logits per example of a classifier (a model with `accuracy`: it
        compares the argmax of its outputs with the labels), else None."""
        if not hasattr(model, 'accuracy'):
            return None
        shape = tuple(self.output_shape(model, tuple(first_batch[:-1])))
        if len(shape) != 2:
            raise ModelError(
                f'{type(model).__name__} is a classifier, so its outputs must be logits of '
                f'shape (batch, classes); for this data they have the shape {shape}. End the '
                f'network with a dense layer of one output per class (after flattening).')
        return shape[1]

    def _check_labels(self, batch, kind):
        """Refuse a batch whose labels are not class indices of the model's outputs (integers,
        one per example, below the number of logits): PyTorch
        and TensorFlow would stop with a raw index error, JAX with a NaN loss, and MXNet's
        `pick` would clip the index and train on wrong labels without a word. A min and a max
        of the host copy of the labels: a few microseconds a batch (measured in the closing
        note of the issue that added it), nothing waits for the device."""
        if self.num_classes is None:
            return
        labels = self.labels_to_numpy(batch[-1])
        where = (f'epoch {self.epoch + 1}, step {self.step + 1}' if kind == 'training'
                 else f'epoch {self.epoch + 1}')
        if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
            # (N, 1) labels would broadcast against (N,) predictions: a wrong accuracy, silently
            raise ModelError(
                f'A {kind} batch ({where}) holds labels of shape {labels.shape} and dtype '
                f'{labels.dtype}; a classifier takes one integer class index per example, shape '
                f'({labels.shape[0] if labels.ndim else "N"},). Flatten (N, 1) labels; for '
                f'one-hot labels, take their argmax over the last axis.')
        low, high = labels.min(), labels.max()
        if low >= 0 and high < self.num_classes:
            return
        raise ModelError(
            f'A {kind} batch ({where}) holds the labels {low} to {high}, but '
            f'{type(self.model).__name__} gives {self.num_classes} logits per example, so its '
            f'labels must be class indices 0 to {self.num_classes - 1}. Give its last layer one '
            f'output per class of the data ({type(self.data).__name__}), or fix the labels.')

    def _check_weights(self):
        arrays = self.parameter_arrays()
        if not arrays:
            raise no_parameters_error(self.model)
        bad = [name for name, array in arrays.items()
               if not np.isfinite(array).all()]
        if bad:
            raise NonFiniteLossError(
                f'The model holds NaN or infinite values before training, in {", ".join(bad[:3])}'
                f'{" and others" if len(bad) > 3 else ""}: it cannot train. Initialize it anew '
                f'(or load good weights) and call fit again.', epoch=0, step=0)

    def _stop_interrupted(self):
        self.status, self.interrupted = 'interrupted', True
        self.stop_signal = signal.Signals(self._interrupt.signum or signal.SIGINT).name
        if self._pending:           # losses of completed steps since the last sync point
            try:
                self._sync_losses()
            except NonFiniteLossError:
                self.status = 'failed'
                raise
        print(f'{"Stopped by SIGTERM" if self.stop_signal == "SIGTERM" else "Interrupted"} in '
              f'epoch {self.epoch + 1} after step {self.step} of '
              f'{self.train_batches_per_epoch}: the model keeps the weights of the last completed '
              f'step, and trainer.losses the losses of all {len(self.losses)} completed steps.',
              flush=True)

    def _call(self, hook):
        for callback in self.callbacks_in_use:
            getattr(callback, hook)(self)

    def _call_all(self, hook):
        """Call `hook` on every callback even if one raises (a second Ctrl-C during the
        checkpoint must not keep the record from saying how the run ended); then raise the
        first error."""
        first = None
        for callback in self.callbacks_in_use:
            try:
                getattr(callback, hook)(self)
            except BaseException as error:      # noqa: B036 (re-raised below)
                first = first or error
        if first is not None:
            raise first

    @staticmethod
    def batch_size(batch):
        return int(batch[-1].shape[0])


def no_parameters_error(model, frozen=False):
    """The error for a model without parameters (or, `frozen`, with none that training may
    change): the adapters raise it where the framework would fail on an empty parameter list
    with a message of its own."""
    if frozen:
        return ModelError(
            f'Every parameter of {type(model).__name__} is frozen (requires_grad=False), so '
            f'training has nothing to change. Unfreeze the layers to train, e.g. '
            f'layer.requires_grad_(True).')
    return ModelError(
        f'{type(model).__name__} has no trainable parameters, so training has nothing to '
        f'change. Assign its layers as attributes in __init__ (in setup() for Flax), e.g. '
        f'self.net = ..., and make sure the network holds a layer with weights (a dense or '
        f'convolutional layer): flattening, pooling and activations alone cannot learn.')


# Modules of these packages are the libraries', not the user's: their code is not part of a run.
LIBRARIES = frozenset({'torch', 'tensorflow', 'keras', 'tf_keras', 'jax', 'flax', 'optax', 'mxnet',
                       'd2lmini', 'builtins', 'abc', 'typing'})


def user_code(classes):
    """The source of every method of the user's classes among `classes` and their bases (not
    those of LIBRARIES), sorted: a model's forward pass may call functions its layers do not
    show (torch.cat, F.relu). A method whose source cannot be read counts by its name."""
    seen, parts = set(), []
    for cls in classes:
        for klass in cls.__mro__:
            if klass in seen or klass.__module__.split('.')[0] in LIBRARIES:
                continue
            seen.add(klass)
            for name, member in vars(klass).items():
                function = getattr(member, '__func__', member)
                if not inspect.isfunction(function):
                    continue
                try:
                    parts.append(inspect.getsource(function))
                except (OSError, TypeError):
                    parts.append(f'{klass.__qualname__}.{name}')
    return '\n'.join(sorted(parts))


def model_hyperparameters(model):
    """{name: value now} of a model's hyperparameters: the fields of a dataclass model (Flax),
    else the names `save_hyperparameters` recorded, read again (a user may have set
    `model.lr` since); and `lr` in any case, which a model may set without
    `save_hyperparameters`."""
    if dataclasses.is_dataclass(model):
        names = [f.name for f in dataclasses.fields(model) if f.name not in ('parent', 'name')]
    else:
        names = list(getattr(model, 'hparams', {}))
    if 'lr' not in names and isinstance(getattr(model, 'lr', None), (int, float)):
        names.append('lr')      # what configure_optimizers reads, even if set by hand
    return json_ready({name: getattr(model, name, None) for name in names})


def json_ready(value):
    """`value` with what JSON cannot hold (a layer, a function) as its repr: for comparing
    settings and writing them down."""
    if isinstance(value, dict):
        return {str(k): json_ready(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [json_ready(v) for v in value]
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    return re.sub(r' at 0x[0-9a-fA-F]+', '', repr(value))   # the same in every process


def loader_rng(loader):
    """The random generator that shuffles a d2lmini `BatchLoader`, or None."""
    rng = getattr(loader, 'rng', None)
    return rng if isinstance(rng, np.random.Generator) else None


def batches_from(loader, start):
    """The loader's batches from index `start` on: a d2lmini `BatchLoader` skips the first
    ones without making them; any other iterable is advanced past them."""
    if hasattr(loader, 'batches'):
        return loader.batches(start)
    return itertools.islice(iter(loader), start, None)


def describe_loader(loader):
    examples = getattr(loader, 'num_examples', None)
    if examples is None:
        return f'{len(loader)} batches'
    drop = ', the last partial batch dropped' if getattr(loader, 'drop_last', False) else ''
    return f'{examples} examples in batches of {loader.batch_size}{drop}'


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def deferred_interrupts():
    """Hold a Ctrl-C (SIGINT) or a SIGTERM (how Colab, Kaggle, SLURM and Kubernetes stop a
    job) until the training step in progress ends, so that the model never keeps half an
    update: the loop then stops as on a KeyboardInterrupt (checkpoint, record). A second
    signal interrupts at once. On leaving, a SIGTERM is delivered again to the handler that
    was there before: by default the process then ends, with status 143 (128 + 15), as the
    job manager expects. Only the main thread can handle signals: elsewhere, nothing is
    deferred."""
    state = types.SimpleNamespace(requested=False, signum=None)
    if threading.current_thread() is not threading.main_thread():
        yield state
        return

    def handler(signum, frame):
        if state.requested:
            raise KeyboardInterrupt
        state.requested, state.signum = True, signum

    previous = {sig: signal.signal(sig, handler) for sig in STOP_SIGNALS}
    try:
        yield state
    finally:
        for sig, before in previous.items():
            if before is None:      # set from outside Python: restore the defaults
                before = signal.default_int_handler if sig == signal.SIGINT else signal.SIG_DFL
            signal.signal(sig, before)
        if state.signum == signal.SIGTERM:
            signal.raise_signal(signal.SIGTERM)
