"""Checkpoints: `Trainer` saves one after every epoch and when stopped (Ctrl-C, SIGTERM), and
`fit` resumes from it.

Turn them on with `Trainer(..., checkpoint_dir=DIR)`: DIR holds one run. Or, without changing
notebook code, set the environment variable `D2LMINI_CHECKPOINT_DIR=ROOT`: each run gets a
folder of its own inside ROOT, named after its model and a hash of what makes it that run
(`Trainer.run_identity`: model class and hyperparameters, seed, budget, data, clipping), so
that runs with another learning rate or seed never resume each other. A run folder holds:

    run.json                    the run's identity; another run is refused here, naming
                                every setting that differs
    lock                        {pid, host} of the process training into it, while it does
    latest                      the name of the newest complete checkpoint
    epoch-0003-step-00000/      one checkpoint (here: after 3 epochs)
        trainer.json            where the run stands (`Trainer.resume_point`: epoch, step,
                                history, every loss, the data order's random state), the
                                run's identity and the model's parameter shapes
        ...                     weights, mutable state and optimizer state in the framework's
                                own format (torch.save of state dicts loaded with
                                weights_only, tf.train.Checkpoint, flax.serialization, Gluon's
                                save_parameters and NDArray files), none of them a pickle

A checkpoint is written into a hidden temporary folder that is renamed once complete; only
then does `latest` change (atomically) and the previous checkpoint go, so a save interrupted
in any way (a kill, a full disk) leaves the last good one usable; a save therefore needs room
for two checkpoints. Temporary folders of a killed process are removed by the next run. Only
folders that d2lmini wrote for this run are ever deleted. On the CPU a run resumed from a
checkpoint computes the same losses as a run that was never interrupted.
"""
import hashlib
import json
import os
import pathlib
import re
import shutil
import socket
import time

from d2lmini.callback import Callback
from d2lmini.errors import CheckpointError
from d2lmini.notebook import CHECKPOINT_NOTICE, show_text

ENV_VAR = 'D2LMINI_CHECKPOINT_DIR'
FORMAT = 1
LATEST = 'latest'
META = 'trainer.json'
RUN = 'run.json'
LOCK = 'lock'
NAME = re.compile(r'epoch-\d{4}-step-\d{5}')
PARTIAL = re.compile(r'\.(epoch-\d{4}-step-\d{5}|latest|run\.json)\.partial-\d+')


def directory(explicit=None):
    """(folder, per_run): `explicit` as the run's own folder, else $D2LMINI_CHECKPOINT_DIR
    as a root that gets a folder per run (per_run True), else (None, False)."""
    if explicit is not None:
        return pathlib.Path(explicit).expanduser(), False
    root = os.environ.get(ENV_VAR) or None
    return (None, False) if root is None else (pathlib.Path(root).expanduser(), True)


def _plural(count, noun):
    return f'{count} {noun}{"" if count == 1 else "s"}'


def run_folder_name(identity):
    """`<Model>-<10 hex digits>`: the folder of the run with this identity inside a root."""
    digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()
    return f'{identity["model"]}-{digest[:10]}'


def run_folders(root):
    """The run folders inside a root (those holding a run.json), sorted by name."""
    root = pathlib.Path(root)
    return sorted(path.parent for path in root.glob(f'*/{RUN}')) if root.is_dir() else []


def latest(folder):
    """The newest complete checkpoint in `folder` (a path), or None if there is none yet.

    `latest` is followed only to a checkpoint folder directly inside `folder`: a pointer that
    names anything else raises CheckpointError."""
    folder = pathlib.Path(folder)
    try:
        name = (folder / LATEST).read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as error:
        raise CheckpointError(f'Could not read {folder / LATEST}: {error}.') from None
    if not name:
        return None
    if name != pathlib.PurePath(name).name or name in ('.', '..') or not name.startswith('epoch-'):
        raise CheckpointError(
            f'{folder / LATEST} points to {name!r}, which is not a checkpoint of this folder. '
            f'Delete {folder} (or choose another checkpoint_dir) to start afresh.')
    return folder / name


def read_meta(path):
    """The `trainer.json` of the checkpoint at `path` as a dict (see the module docstring):
    epoch, step, history, losses, epoch_losses, data_rng_state, elapsed_s, budget,
    epochs_planned, train_batches_per_epoch, signature, saved_at. Raises CheckpointError
    naming the file if it is missing, corrupt or of another format."""
    file = pathlib.Path(path) / META
    try:
        meta = json.loads(file.read_text())
    except (OSError, ValueError) as error:
        raise CheckpointError(
            f'The checkpoint file {file} is missing or corrupt ({error}). Delete '
            f'{file.parent.parent} (or choose another checkpoint_dir) to start afresh.') from None
    if not isinstance(meta, dict) or meta.get('format') != FORMAT:
        raise CheckpointError(f'{file} is not a d2lmini checkpoint of format {FORMAT}.')
    return meta


def model_signature(trainer):
    """What must match for a checkpoint to fit a model: its class and parameter shapes."""
    shapes = {name: list(array.shape) for name, array in trainer.parameter_arrays().items()}
    return dict(framework=trainer.framework, model=type(trainer.model).__name__,
                parameters=shapes)


class Checkpointer(Callback):
    """Saves the Trainer's run (see the module docstring) and hands a saved one back to
    `Trainer.resume_from`: it reads and writes the files, checks that a checkpoint belongs to
    the run and fits the model, and holds the folder's lock while the run trains; the Trainer
    decides what its state becomes.

    directory: the run's folder, or with `per_run` a root in which the run gets its own."""

    def __init__(self, directory, per_run=False):
        self.directory, self.per_run = pathlib.Path(directory), per_run
        self._locked = self._ready = False
        # what the messages advise changing: the setting the folder came from
        self.elsewhere = f'folder for {ENV_VAR}' if per_run else 'checkpoint_dir'

    # --- restoring ------------------------------------------------------------------------
    def on_fit_start(self, trainer):
        identity = trainer.run_identity()
        if self.per_run:
            self.directory = self.directory / run_folder_name(identity)
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise CheckpointError(f'Cannot create the checkpoint folder {self.directory}: '
                                  f'{error}. Choose another {self.elsewhere}.') from None
        self._lock()
        self._remove_abandoned_saves()
        self._claim(identity)
        path = latest(self.directory)
        if path is None:
            show_text(f'Checkpoints go to {self.directory}.', CHECKPOINT_NOTICE)
            self._ready = True
            return
        meta = read_meta(path)
        self._check_fits(trainer, meta, path)
        try:
            trainer.load_state(path)
        except Exception as error:
            raise CheckpointError(
                f'Could not load the checkpoint {path}: {type(error).__name__}: {error}. Delete '
                f'{self.directory} (or choose another {self.elsewhere}) to start afresh.') from error
        trainer.resume_from(meta, source=str(path))
        self._ready = True
        planned = meta.get('epochs_planned')
        if planned is not None and planned != trainer.epochs_planned:
            show_text(f'The run in {self.directory} was planned for {planned} epochs; this fit '
                      f'plans {trainer.epochs_planned}, so it ends there.', CHECKPOINT_NOTICE)
        done = _plural(meta['epoch'], 'epoch') + (
            f' and {_plural(meta["step"], "step")} of epoch {meta["epoch"] + 1}'
            if meta['step'] else '')
        if meta['epoch'] >= trainer.epochs_planned:
            kept = ' (the model keeps the weights of its last step)' if meta['step'] else ''
            show_text(f'Loaded the checkpoint {path}: its run has done {done}, so there is '
                      f'nothing left to train{kept}; delete {self.directory} to train afresh.',
                      CHECKPOINT_NOTICE)
        else:
            next_ = (f'the validation of epoch {meta["epoch"] + 1}'
                     if meta['step'] >= trainer.train_batches_per_epoch
                     else f'epoch {meta["epoch"] + 1}, step {meta["step"] + 1}')
            show_text(f'Resuming from the checkpoint {path}: {done} done, continuing with '
                      f'{next_}.', CHECKPOINT_NOTICE)

    def _claim(self, identity):
        """Write the run's identity into its folder, or refuse a folder of another run."""
        file = self.directory / RUN
        try:
            theirs = json.loads(file.read_text())
        except FileNotFoundError:
            theirs = None
        except (OSError, ValueError) as error:
            raise CheckpointError(f'{file} is unreadable ({error}). Delete {self.directory} '
                                  f'(or choose another {self.elsewhere}) to start afresh.') from None
        if theirs is None:
            if latest(self.directory) is not None:
                raise CheckpointError(
                    f'{self.directory} holds checkpoints but no {RUN}, so it cannot tell which '
                    f'run they belong to. Delete it (or choose another {self.elsewhere}).')
            _write_atomically(file, json.dumps(identity, indent=1, sort_keys=True))
        elif theirs != identity:
            diff = _differences(_flat(theirs), _flat(identity))
            # a run on a GPU under the 'auto' budget is 'full'; on a CPU 'auto' means 'smoke'
            budget = (f" To continue that run, set D2LMINI_BUDGET={theirs['budget']}."
                      if theirs.get('budget') != identity.get('budget') else '')
            raise CheckpointError(
                f'{self.directory} holds another run: {"; ".join(sorted(diff))} (its value vs '
                f"this run's). Resuming it would train with settings other than the ones you "
                f'asked for.{budget} Delete {self.directory} to start afresh with the new '
                f'settings, or choose another checkpoint_dir (or set {ENV_VAR} instead, which '
                f'gives every run a folder of its own).')

    def _check_fits(self, trainer, meta, path):
        ours, theirs = model_signature(trainer), meta['signature']
        problems = []
        if theirs['framework'] != ours['framework']:
            problems.append(f"it was written by {theirs['framework']}, this is "
                            f"{ours['framework']}")
        elif theirs['model'] != ours['model'] or theirs['parameters'] != ours['parameters']:
            diff = sorted(_differences(theirs['parameters'], ours['parameters']))
            which = (f"another {ours['model']}" if theirs['model'] == ours['model']
                     else f"a {theirs['model']} and this model is a {ours['model']}")
            problems.append(f"it holds {which}, with other parameters: {', '.join(diff[:4])}"
                            f"{' and more' if len(diff) > 4 else ''}")
        if meta['train_batches_per_epoch'] != trainer.train_batches_per_epoch:
            problems.append(f"its epochs have {meta['train_batches_per_epoch']} training "
                            f"batches, this run's have {trainer.train_batches_per_epoch} (another "
                            f"budget, batch size or data set)")
        if problems:
            raise CheckpointError(
                f'The checkpoint {path} does not fit this run: {"; ".join(problems)}. Use '
                f'another {self.elsewhere}, or delete {self.directory} to start afresh.')

    # --- the folder's lock ------------------------------------------------------------------
    def _lock(self):
        """Take the folder for this process; a live holder is refused, a dead one's lock
        (same host, process gone) is taken over."""
        file, mine = self.directory / LOCK, dict(pid=os.getpid(), host=socket.gethostname())
        for _ in range(2):
            try:
                descriptor = os.open(file, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = _read_lock(file)
                if holder is not None and not _holder_gone(holder):
                    raise CheckpointError(
                        f'{self.directory} is in use by process {holder["pid"]} on '
                        f'{holder["host"]}, which is training into it (its lock: {file}). Wait '
                        f'for it to finish or stop it, or choose another {self.elsewhere}. If '
                        f'that process is gone, delete {file}.') from None
                file.unlink(missing_ok=True)
                continue
            except OSError as error:
                raise CheckpointError(f'Cannot write to the checkpoint folder {self.directory}: '
                                      f'{error}. Choose another {self.elsewhere}.') from None
            try:
                with os.fdopen(descriptor, 'w') as handle:
                    handle.write(json.dumps(dict(mine, since=time.time())))
            except OSError as error:        # a full disk: no half-written lock left behind
                file.unlink(missing_ok=True)
                raise CheckpointError(f'Cannot write the lock {file}: {error}. Free some space '
                                      f'there, or choose another {self.elsewhere}.') from None
            self._locked = True
            return
        raise CheckpointError(f'Could not take the lock {file}; delete it and try again.')

    def _unlock(self):
        if self._locked:
            self._locked = False
            holder = _read_lock(self.directory / LOCK)
            if holder is not None and holder.get('pid') == os.getpid():
                (self.directory / LOCK).unlink(missing_ok=True)

    def _remove_abandoned_saves(self):
        """Temporary files of saves that never finished (the folder is locked: nobody else is
        saving)."""
        for path in self.directory.iterdir():
            if PARTIAL.fullmatch(path.name):
                if path.is_dir():
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    path.unlink(missing_ok=True)

    # --- saving ---------------------------------------------------------------------------
    def on_epoch_end(self, trainer):
        self.save(trainer)

    def on_fit_end(self, trainer):
        try:
            if trainer.status == 'interrupted' and self._ready:
                path = self.save(trainer)
                show_text(f'Checkpoint written to {path}: fit resumes from it.', CHECKPOINT_NOTICE)
        finally:
            self._ready = False
            self._unlock()

    def save(self, trainer):
        """Write a complete checkpoint of where `trainer` stands (`Trainer.resume_point`), then
        point `latest` to it and delete the one it replaces; returns its path. Raises
        CheckpointError naming the path and the cause when it cannot be written; the previous
        checkpoint then stays as it was."""
        point = trainer.resume_point()
        name = f'epoch-{point["epoch"]:04d}-step-{point["step"]:05d}'
        final, previous = self.directory / name, latest(self.directory)
        if final == previous:
            return final            # this very point is saved already (a resume stopped at once)
        partial = self.directory / f'.{name}.partial-{os.getpid()}'
        try:
            shutil.rmtree(partial, ignore_errors=True)
            partial.mkdir(parents=True)
            trainer.save_state(partial)
            meta = dict(format=FORMAT, run=trainer.run_identity(),
                        signature=model_signature(trainer), **point,
                        epochs_planned=trainer.epochs_planned,
                        train_batches_per_epoch=trainer.train_batches_per_epoch,
                        budget=trainer.budget.name, saved_at=time.time())
            (partial / META).write_text(json.dumps(meta))
            if final.exists():      # left by a run that stopped before pointing `latest` to it
                shutil.rmtree(final)
            os.replace(partial, final)
            _write_atomically(self.directory / LATEST, name)
        except Exception as error:
            shutil.rmtree(partial, ignore_errors=True)
            size = _size(previous) if previous is not None else None
            room = (f' A save needs free space for a second checkpoint beside the last one '
                    f'(about {size / 2**20:.0f} MB).' if size else '')
            kept = (f'The previous checkpoint {previous} is kept and still resumes the run.'
                    if previous is not None else 'No earlier checkpoint of this run exists.')
            raise CheckpointError(
                f'Could not write the checkpoint {final}: {type(error).__name__}: {error}. '
                f'{kept}{room} Free some space or choose another checkpoint_dir.') from error
        if previous is not None and NAME.fullmatch(previous.name):
            shutil.rmtree(previous, ignore_errors=True)
        return final


def _write_atomically(file, text):
    """Replace `file`'s content in one step: a kill leaves the old or the new text."""
    partial = file.with_name(f'.{file.name}.partial-{os.getpid()}')
    partial.write_text(text)
    os.replace(partial, file)


def _read_lock(file):
    try:
        holder = json.loads(file.read_text())
        return holder if isinstance(holder, dict) and 'pid' in holder else None
    except (OSError, ValueError):
        return None


def _holder_gone(holder):
    """Whether the process holding a lock has ended (only knowable on this host; this very
    process counts as gone: its earlier fit ended without releasing, e.g. a crash)."""
    if holder.get('host') != socket.gethostname():
        return False
    if holder['pid'] == os.getpid():
        return True
    try:
        os.kill(holder['pid'], 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


def _size(folder):
    return sum(f.stat().st_size for f in pathlib.Path(folder).rglob('*') if f.is_file())


def _flat(tree, prefix=''):
    """{'a.b': value} of a nested dict, for naming the settings that differ."""
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f'{prefix}{key}.'))
        else:
            flat[f'{prefix}{key}'] = value
    return flat


def _differences(theirs, ours):
    names = set(theirs) | set(ours)
    return [f'{name} ({theirs.get(name, "absent")} vs {ours.get(name, "absent")})'
            for name in names if theirs.get(name) != ours.get(name)]
