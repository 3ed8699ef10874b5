"""The run record: what one `Trainer.fit` did, as data.

`Trainer.fit` keeps it as `trainer.record` (a JSON-ready dict) and, in a notebook, writes it
into the cell's outputs as one display output of MIME type `MIME_TYPE` (with an empty
text/plain beside it): data that tools such as the book build read, and that notebook front
ends do not show. Keys (schema 1):

    schema, framework, versions {library: version: d2lmini, python, numpy and the
    framework's}, budget {name, reason, max_epochs,
    max_train_batches, max_val_batches}, device {type: 'cpu'|'gpu', name (as the start line
    says it: 'cpu', 'gpu:0', '2 devices (cpu:0, cpu:1)'), model, count (devices trained on,
    data parallel when more than one), names (each device: ['cpu'], ['gpu:0', 'gpu:1'])},
    host {cpu_model, cpu_count (CPUs this process may use), threads {setting: value},
    platform, executable (the Python interpreter's file name)}, seed (None if `set_seed` was not
    called), epochs_requested, epochs_planned (after the budget), epochs_run,
    train_batches_per_epoch, val_batches_per_epoch, batch_size, steps (completed), history
    (as `Trainer.history`), started_at and finished_at (ISO 8601, UTC), wall_time_s (seconds,
    including earlier processes of a resumed run), status ('finished', 'interrupted',
    'failed'), interrupted, stop_signal (None, or the signal that stopped the run: 'SIGINT'
    for Ctrl-C, 'SIGTERM' from a job manager), resumed_from (None, or {checkpoint, epoch, step}).

Non-finite numbers are stored as None, so the record is strict JSON.
"""
import datetime
import math
import os
import platform
import sys
import time

import numpy as np

import d2lmini
from d2lmini import seeding
from d2lmini.callback import Callback
from d2lmini.notebook import in_notebook

MIME_TYPE = 'application/vnd.d2lmini.run+json'
SCHEMA = 1


def cpu_model():
    """The CPU's model name ('AMD EPYC 7B13', ...), or the platform's processor string."""
    try:
        with open('/proc/cpuinfo') as info:
            for line in info:
                if line.lower().startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:          # not on Linux
        return os.cpu_count()


def iso(timestamp):
    return datetime.datetime.fromtimestamp(timestamp, datetime.timezone.utc).isoformat(
        timespec='seconds')


def strict_json(value):
    """`value` with NumPy scalars as Python numbers and NaN/inf as None."""
    if isinstance(value, dict):
        return {str(k): strict_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [strict_json(v) for v in value]
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def build(trainer):
    """The record of `trainer`'s last (or current) `fit`."""
    budget = trainer.budget
    return strict_json(dict(
        schema=SCHEMA, framework=trainer.framework,
        versions={'d2lmini': d2lmini.__version__, 'python': platform.python_version(),
                  'numpy': np.__version__, **trainer.versions()},
        budget=dict(name=budget.name, reason=budget.reason, max_epochs=budget.max_epochs,
                    max_train_batches=budget.max_train_batches,
                    max_val_batches=budget.max_val_batches),
        device=dict(type='gpu' if trainer.on_gpu else 'cpu', name=trainer.device_name(),
                    model=trainer.device_model() or cpu_model(),
                    count=trainer.placement.count, names=trainer.placement.names),
        host=dict(cpu_model=cpu_model(), cpu_count=usable_cpus(), threads=trainer.threads(),
                  platform=platform.platform(), executable=os.path.basename(sys.executable)),
        seed=seeding.current_seed(),
        epochs_requested=trainer.max_epochs, epochs_planned=trainer.epochs_planned,
        epochs_run=len(trainer.history),
        train_batches_per_epoch=trainer.train_batches_per_epoch,
        val_batches_per_epoch=trainer.val_batches_per_epoch,
        batch_size=getattr(trainer.train_loader, 'batch_size', None),
        steps=len(trainer.losses), history=trainer.history,
        started_at=iso(trainer.started), finished_at=iso(time.time()),
        wall_time_s=trainer.elapsed_before + time.time() - trainer.started,
        status=trainer.status, interrupted=trainer.interrupted,
        stop_signal=trainer.stop_signal,
        resumed_from=trainer.resumed_from))


class RunRecorder(Callback):
    """Keeps `trainer.record` up to date and, in a notebook, writes it into the outputs."""

    def __init__(self, live=None):
        self.live = in_notebook() if live is None else live

    def on_epoch_end(self, trainer):
        trainer.record = build(trainer)

    def on_fit_end(self, trainer):
        trainer.record = build(trainer)
        if self.live:
            from IPython.display import display
            # An empty text/plain beside it: a front end that does not know the MIME type
            # (JupyterLab would say 'No renderer could be found') shows an empty output instead.
            display({MIME_TYPE: trainer.record, 'text/plain': ''}, raw=True)
