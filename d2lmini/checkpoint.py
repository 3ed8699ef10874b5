"""Checkpoints: `Trainer` saves one after every epoch and on Ctrl-C, and `fit` resumes from it.

Turn them on with `Trainer(..., checkpoint_dir=DIR)` or, without changing notebook code, the
environment variable `D2LMINI_CHECKPOINT_DIR=DIR`. A checkpoint directory holds:

    latest                      the name of the newest complete checkpoint
    epoch-0003-step-00000/      one checkpoint (here: after 3 epochs)
        trainer.json            where the run stands: epoch, step, history, every loss, the
                                data order's random state, the model's parameter shapes
        ...                     weights, mutable state and optimizer state in the framework's
                                own format (torch.save of state dicts, tf.train.Checkpoint,
                                flax.serialization, Gluon's save_parameters and save_states)

A checkpoint is written into a temporary folder that is renamed once complete; only then does
`latest` change (atomically) and the older checkpoint go, so an interrupted save never
damages the last good one. On the CPU a run resumed from a checkpoint computes the same
losses as a run that was never interrupted (the data order and all state are restored).
"""
import copy
import json
import os
import pathlib
import shutil
import time

import numpy as np

from d2lmini.errors import CheckpointError
from d2lmini.training import Callback

ENV_VAR = 'D2LMINI_CHECKPOINT_DIR'
FORMAT = 1
LATEST = 'latest'
META = 'trainer.json'


def directory(explicit=None):
    """The checkpoint directory in force: `explicit`, else $D2LMINI_CHECKPOINT_DIR, else None."""
    chosen = explicit if explicit is not None else os.environ.get(ENV_VAR) or None
    return None if chosen is None else pathlib.Path(chosen).expanduser()


def model_signature(trainer):
    """What must match for a checkpoint to fit a model: its class and parameter shapes."""
    shapes = {name: list(array.shape) for name, array in trainer.parameter_arrays().items()}
    return dict(framework=trainer.framework, model=type(trainer.model).__name__,
                parameters=shapes)


def loader_rng(loader):
    rng = getattr(loader, 'rng', None)
    return rng if isinstance(rng, np.random.Generator) else None


class Checkpointer(Callback):
    """Saves and restores the Trainer's run in `directory` (see the module docstring)."""

    def __init__(self, directory):
        self.directory = pathlib.Path(directory)
        self._epoch_rng_state = None

    # --- restoring ------------------------------------------------------------------------
    def on_fit_start(self, trainer):
        latest = self.directory / LATEST
        if not latest.exists():
            print(f'Checkpoints go to {self.directory}.', flush=True)
            return
        path = self.directory / latest.read_text().strip()
        meta = self._read_meta(path)
        self._check_fits(trainer, meta, path)
        try:
            trainer.load_state(path)
        except Exception as error:
            raise CheckpointError(
                f'Could not load the checkpoint {path}: {type(error).__name__}: {error}. Delete '
                f'{self.directory} (or choose another checkpoint_dir) to start afresh.') from error
        trainer.history, trainer.losses = meta['history'], meta['losses']
        trainer.epoch_losses = [np.asarray(meta['epoch_losses'])] if meta['epoch_losses'] else []
        trainer.start_epoch, trainer.start_step = meta['epoch'], meta['step']
        trainer.elapsed_before = meta['elapsed_s']
        rng = loader_rng(trainer.train_loader)
        if rng is not None and meta['data_rng_state'] is not None:
            rng.bit_generator.state = meta['data_rng_state']
        trainer.resumed_from = dict(checkpoint=str(path), epoch=meta['epoch'], step=meta['step'])
        if meta['epoch'] >= trainer.max_epochs_run:
            print(f'Loaded the checkpoint {path}: its run finished all {meta["epoch"]} epochs, '
                  f'so there is nothing left to train (delete {self.directory} to train '
                  f'afresh).', flush=True)
        else:
            print(f'Resuming from the checkpoint {path}: {len(meta["history"])} epochs done, '
                  f'continuing with epoch {meta["epoch"] + 1}, step {meta["step"] + 1}.',
                  flush=True)

    def _read_meta(self, path):
        file = path / META
        try:
            meta = json.loads(file.read_text())
        except (OSError, ValueError) as error:
            raise CheckpointError(
                f'The checkpoint file {file} is missing or corrupt ({error}). Delete '
                f'{self.directory} (or choose another checkpoint_dir) to start afresh.') from None
        if not isinstance(meta, dict) or meta.get('format') != FORMAT:
            raise CheckpointError(f'{file} is not a d2lmini checkpoint of format {FORMAT}.')
        return meta

    def _check_fits(self, trainer, meta, path):
        ours, theirs = model_signature(trainer), meta['signature']
        problems = []
        if theirs['framework'] != ours['framework']:
            problems.append(f"it was written by {theirs['framework']}, this is "
                            f"{ours['framework']}")
        elif theirs['model'] != ours['model'] or theirs['parameters'] != ours['parameters']:
            diff = sorted(_differences(theirs['parameters'], ours['parameters']))
            problems.append(f"it holds a {theirs['model']} and this model is a {ours['model']}"
                            f"; parameters that differ: {', '.join(diff[:4])}"
                            f"{' and more' if len(diff) > 4 else ''}")
        if meta['train_batches_per_epoch'] != trainer.num_train_batches:
            problems.append(f"its epochs have {meta['train_batches_per_epoch']} training "
                            f"batches, this run's have {trainer.num_train_batches} (another "
                            f"budget, batch size or data set)")
        if problems:
            raise CheckpointError(
                f'The checkpoint {path} does not fit this run: {"; ".join(problems)}. Use '
                f'another checkpoint_dir, or delete {self.directory} to start afresh.')

    # --- saving ---------------------------------------------------------------------------
    def on_epoch_start(self, trainer):
        rng = loader_rng(trainer.train_loader)
        # The state before this epoch's shuffle: a run stopped mid-epoch replays that shuffle.
        self._epoch_rng_state = None if rng is None else copy.deepcopy(rng.bit_generator.state)

    def on_epoch_end(self, trainer):
        rng = loader_rng(trainer.train_loader)
        self.save(trainer, epoch=trainer.epoch + 1, step=0, epoch_losses=[],
                  rng_state=None if rng is None else rng.bit_generator.state)

    def on_fit_end(self, trainer):
        if trainer.status == 'interrupted':
            losses = np.concatenate(trainer.epoch_losses).tolist() if trainer.epoch_losses else []
            path = self.save(trainer, epoch=trainer.epoch, step=trainer.step,
                             epoch_losses=losses, rng_state=self._epoch_rng_state)
            print(f'Checkpoint written to {path}: fit resumes from it.', flush=True)

    def save(self, trainer, epoch, step, epoch_losses, rng_state):
        """Write a complete checkpoint, then point `latest` to it; returns its path."""
        name = f'epoch-{epoch:04d}-step-{step:05d}'
        final = self.directory / name
        partial = self.directory / f'.{name}.partial-{os.getpid()}'
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        try:
            trainer.save_state(partial)
            meta = dict(format=FORMAT, signature=model_signature(trainer), epoch=epoch, step=step,
                        epochs_planned=trainer.max_epochs_run,
                        train_batches_per_epoch=trainer.num_train_batches,
                        history=trainer.history, losses=trainer.losses,
                        epoch_losses=epoch_losses, data_rng_state=rng_state,
                        elapsed_s=trainer.elapsed_before + time.time() - trainer.started,
                        budget=trainer.budget.name, saved_at=time.time())
            (partial / META).write_text(json.dumps(meta))
            if final.exists():                      # the same point saved again
                shutil.rmtree(final)
            os.replace(partial, final)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        pointer = self.directory / f'.{LATEST}.partial-{os.getpid()}'
        pointer.write_text(name)
        os.replace(pointer, self.directory / LATEST)
        for old in self.directory.glob('epoch-*-step-*'):
            if old.name != name:
                shutil.rmtree(old, ignore_errors=True)
        return final


def _differences(theirs, ours):
    names = set(theirs) | set(ours)
    return [f'{name} ({theirs.get(name, "absent")} vs {ours.get(name, "absent")})'
            for name in names if theirs.get(name) != ours.get(name)]
