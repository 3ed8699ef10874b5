"""Reference runs: a chapter's notebooks executed with the full budget, kept in the chapter's
folder for the book to show (`make reference CHAPTER=googlenet FRAMEWORKS=jax,mxnet`).

Running them:

Each framework runs on its own, one after another, with `D2LMINI_BUDGET=full` and checkpoints
in `_build/reference/<chapter>/<framework>/` (its D2LMINI_CHECKPOINT_DIR, which gives the run a
folder of its own there): run the same command again after an interruption and training
resumes from the last epoch (or the step where Ctrl-C stopped it).
The log shows one line per finished epoch, read from the checkpoints, so `tail -f` follows it.

A notebook that trains several named runs (training cells tagged `run-<name>`) may run some
of them only (`RUNS=batch-norm,residual`, `--runs`): the other training cells are not run and
keep their kept outputs, so a set of runs too long for one sitting is made over several, each
run kept as it is done.

Results, in `book/<chapter>/reference/` (kept_runs.py reads them):
    <chapter>_<framework>.ipynb   the executed notebook
    <framework>.json              its run record (d2lmini/record.py) plus `reference`: the git
                                  commit, the hash of the notebook's code cells (to tell a
                                  stale reference), when it ran, in how many processes
                                  (`parts`, more than 1 after a resume) taking `execution_s` in
                                  all, and whether it ran alone: `other_cpu_s`, the CPU seconds
                                  other processes used meanwhile, as `other_cpu_share` of the
                                  machine's CPU time (0: alone; a test suite beside it shows as
                                  0.3 and more), and the highest 1-minute load average seen
                                  beside the CPU count. `all_parts_recorded` is false when some
                                  checkpoints were made by a process whose part was not kept:
                                  the times and loads then cover the recorded parts only.

Each part is noted in `reference-parts.json` beside the checkpoints every few seconds while it
runs, so a process killed without warning (a session ending) loses at most those seconds of it.

Showing them (showing.py): `make reference` puts a finished run's outputs, labelled, into the
training cell of its source notebook, redraws the comparison figure and quotes the numbers in the
prose; `python -m book.tools.reference --show-only` does only that, e.g. after the code changed.
"""
import argparse
import datetime
import json
import os
import pathlib
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import nbformat
import psutil

from book.tools import chapters, execute, kept_runs, run_numbers, runs, showing
from book.tools.kept_runs import ReferenceRunError
from d2lmini import checkpoint, frameworks
from d2lmini.errors import CheckpointError
from d2lmini.frameworks import IDS


POLL_S = 10                             # how often a run's log and its part's record are updated


def checkpoint_dir(chapter, framework, root=chapters.ROOT):
    return pathlib.Path(root) / '_build' / 'reference' / chapter / framework


def git_commit(source, root=chapters.ROOT):
    """The commit checked out, with '-dirty' if the code that runs differs from it: uncommitted
    changes in d2lmini/ or book/tools/, or in the code cells of `source` (a notebook whose
    outputs alone changed, as after another reference run, is not dirty). None outside git."""
    def git(*args):
        return subprocess.run(['git', *args], cwd=root, capture_output=True, text=True,
                              check=True).stdout
    try:
        commit = git('rev-parse', 'HEAD').strip()
        dirty = bool(git('status', '--porcelain', '--', 'd2lmini', 'book/tools').strip())
        committed = git('show', f'HEAD:{pathlib.Path(source).relative_to(root).as_posix()}')
    except (OSError, subprocess.CalledProcessError):
        return None
    with tempfile.NamedTemporaryFile('w', suffix='.ipynb') as copy:
        copy.write(committed)
        copy.flush()
        dirty = dirty or chapters.code_hash(copy.name) != chapters.code_hash(source)
    return commit + ('-dirty' if dirty else '')


def newest_checkpoint(directory):
    """The newest complete checkpoint of the run training in `directory`, a reference run's
    D2LMINI_CHECKPOINT_DIR: inside it each run has a folder of its own (d2lmini/checkpoint.py),
    and the one last written to is this run's. None if there is none yet; CheckpointError as
    checkpoint.latest raises it (OSError if a folder goes meanwhile)."""
    folders = checkpoint.run_folders(directory)
    # a folder's time changes as its lock is taken and as each checkpoint replaces the last
    return checkpoint.latest(max(folders, key=lambda f: f.stat().st_mtime)) if folders else None


def latest_checkpoint(directory):
    """Which checkpoint a run in `directory` would resume from, as `<run folder>/<checkpoint>`,
    or None (also for a bad one, which the Trainer refuses with its path named)."""
    try:
        path = newest_checkpoint(directory)
    except (CheckpointError, OSError):
        return None
    return None if path is None else path.relative_to(directory).as_posix()


def parts_account_for_every_checkpoint(parts):
    """Whether the first part started from nothing and each later one from the checkpoint its
    predecessor reached: no process whose part was lost trained in between. (A part noted
    before parts said where they started counts as a gap.)"""
    unknown = object()
    starts = [p.get('resumed_from', unknown) for p in parts]
    ends = [None] + [p.get('reached', unknown) for p in parts[:-1]]
    return all(start is not unknown and start == end for start, end in zip(starts, ends))


class Watcher(threading.Thread):
    """Prints each epoch as its checkpoint appears; keeps the highest load average and the CPU
    time used by processes other than this one and its children (the kernel)."""

    def __init__(self, directory, label, every=None, on_measure=None):
        super().__init__(daemon=True)
        self.directory, self.label = directory, label
        self.every, self.on_measure = every or POLL_S, on_measure
        # epochs printed per run folder (a notebook may train several runs, one after another)
        self.stop, self.printed, self.max_load = threading.Event(), {}, os.getloadavg()[0]
        self.other_cpu_s, self.own = 0.0, {}
        self.busy = self.machine_busy()
        self.own_delta()

    @staticmethod
    def machine_busy():
        """CPU seconds the whole machine has been busy (all cores, since boot)."""
        times = psutil.cpu_times()
        # user and nice include guest time; idle, iowait and steal are not this machine's work
        return sum(getattr(times, name, 0.0) for name in ('user', 'nice', 'system', 'irq', 'softirq'))

    def own_delta(self):
        """CPU seconds this process and its live children used since the last call."""
        me, delta, seen = psutil.Process(), 0.0, set()
        for proc in [me] + me.children(recursive=True):
            try:
                times = proc.cpu_times()
            except psutil.Error:
                continue        # ended meanwhile
            # with the children it has waited for (as this process waits for the kernel's end)
            used = times.user + times.system + times.children_user + times.children_system
            delta += used - self.own.get(proc.pid, 0.0)
            self.own[proc.pid] = used
            seen.add(proc.pid)
        for pid in set(self.own) - seen:
            # Ended: its whole time now shows in its parent's children times, counted above.
            delta -= self.own.pop(pid)
        return delta

    def measure(self):
        busy = self.machine_busy()
        # What the machine did beyond this run (a child that ends between two calls counts
        # its last few seconds here: at most `every` seconds per core, once).
        self.other_cpu_s += max(0.0, busy - self.busy - self.own_delta())
        self.busy = busy
        self.max_load = max(self.max_load, os.getloadavg()[0])

    def run(self):
        while not self.stop.wait(self.every):
            self.measure()
            self.poll()
            if self.on_measure:
                self.on_measure()

    def poll(self):
        """Print the epochs not printed yet of every run training in the directory, oldest
        first: one run may finish and the next begin between two polls. With several runs,
        each line names its run's folder."""
        try:
            folders = sorted(checkpoint.run_folders(self.directory), key=lambda f: f.stat().st_mtime)
        except OSError:
            return          # a folder went meanwhile: the next poll reads them
        for folder in folders:
            try:
                path = checkpoint.latest(folder)
                meta = None if path is None else checkpoint.read_meta(path)
            except (CheckpointError, OSError):
                continue    # one being replaced (the next poll reads it), or a bad one
            if meta is None:
                continue    # no checkpoint yet
            printed = self.printed.get(folder, 0)
            which = f' {folder.name}' if len(folders) > 1 else ''
            for row in meta['history'][printed:]:
                speed = row['examples_per_sec']
                print(f"{time.strftime('%H:%M:%S')} {self.label}{which} epoch {row['epoch']}/"
                      f"{meta['epochs_planned']}: train loss {row['train_loss']:.4f}, val loss "
                      f"{row['val_loss']:.4f}, val acc {row['val_acc']:.4f}, "
                      f"{'n/a' if speed is None else f'{speed:.1f}'} examples/s", flush=True)
            self.printed[folder] = max(printed, len(meta['history']))


def run(chapter, framework, root=chapters.ROOT, runs=None):
    """Execute one notebook with the full budget (resuming from its checkpoints) and write
    its reference notebook and a record per training cell (kept_runs.record_path); returns
    {run name (None for the unnamed one): the record's path}. `runs`: the names of the named
    runs to train (default: every training cell); the other training cells are skipped and
    keep the outputs of the kept reference notebook. ReferenceRunError for a name that no
    training cell trains."""
    source = chapters.notebook_path(chapter, framework, root)
    directory = checkpoint_dir(chapter, framework, root)
    directory.mkdir(parents=True, exist_ok=True)
    # Relative to the notebook's folder, where its kernel starts: the outputs the book shows
    # then name no local path.
    env = dict(D2LMINI_BUDGET='full',
               D2LMINI_CHECKPOINT_DIR=os.path.relpath(directory, source.parent))
    label = f'{chapter}/{framework}'
    # What is run is fixed now: edits made while it trains must not be credited to it.
    code_hash, commit = chapters.code_hash(source), git_commit(source, root)
    # before hours of work: the training cells, whose outputs the runs' replace
    cells = showing.train_cells(nbformat.read(str(source), as_version=4), source.name)
    if not cells:
        raise ReferenceRunError(f'{source.name}: no code cell is tagged {chapters.TRAIN_TAG!r}: '
                                'a reference run keeps the outputs of a training cell')
    named = [name for name in cells if name is not None]
    unknown = [name for name in runs or () if name not in named]
    if unknown:
        raise ReferenceRunError(f'{source.name} trains no run named {", ".join(unknown)}; its '
                                f'named runs: {", ".join(named) or "none"}')
    selected = list(cells) if not runs else [name for name in cells if name in runs]

    def skip(cell):
        return (runs is not None and chapters.TRAIN_TAG in cell.metadata.get('tags', [])
                and chapters.run_name(cell) not in selected)
    # A run resumed over several processes adds up their times and loads (kept beside the
    # checkpoints; a finished run starts afresh).
    parts_path = directory / 'reference-parts.json'
    try:
        parts = json.loads(parts_path.read_text())
    except (OSError, ValueError):
        parts = []
    if parts and parts[-1].get('finished'):
        parts = []
    if parts and parts[-1].get('code_hash') != code_hash:
        # the code changed since the interrupted run began: its checkpoints are not this code's
        print(f'{label}: the notebook\'s code changed since the interrupted run began; starting '
              f'afresh (removing its checkpoints)', flush=True)
        for folder in checkpoint.run_folders(directory):
            shutil.rmtree(folder)
        parts = []
    started = datetime.datetime.now(datetime.timezone.utc)
    print(f'{time.strftime("%H:%M:%S")} {label}: running {source.relative_to(root)} with the '
          f'full budget; checkpoints in {directory.relative_to(root)}', flush=True)
    executed = directory / f'{chapter}_{framework}.executed.ipynb'
    part = dict(started_at=started.isoformat(timespec='seconds'), code_hash=code_hash,
                git_commit=commit, resumed_from=latest_checkpoint(directory),
                runs=[name for name in selected if name is not None] or None)
    begun = time.time()

    def note(finished=False):
        part.update(execution_s=round(time.time() - begun, 1), max_load_average=watcher.max_load,
                    other_cpu_s=round(watcher.other_cpu_s, 1),
                    reached=latest_checkpoint(directory), finished=finished)
        # replaced in one step: a kill while writing leaves the previous note
        partial = parts_path.with_name(f'.{parts_path.name}.partial-{os.getpid()}')
        partial.write_text(json.dumps(parts + [part], indent=1) + '\n')
        os.replace(partial, parts_path)

    watcher = Watcher(directory, label, on_measure=note)
    watcher.start()
    finished = False
    try:
        execute.execute(source, executed, cell_timeout=None, env=env,
                        kernel=frameworks.get(framework).kernel, skip=skip)
        finished = True
    finally:
        watcher.stop.set()
        watcher.join()
        watcher.measure()
        watcher.poll()
        note(finished)
    parts.append(part)
    nb = nbformat.read(str(executed), as_version=4)
    found = {run: records_of(cell) for run, cell in showing.train_cells(nb, executed.name).items()
             if run in selected}
    if any(len(recs) != 1 or recs[0]['status'] != 'finished' for recs in found.values()):
        raise SystemExit(f'{label}: expected one finished run record in each training cell, found '
                         + ', '.join(f'{run or "the unnamed run"}: {[r["status"] for r in recs]}'
                                     for run, recs in found.items()))
    if {p['code_hash'] for p in parts} != {code_hash}:
        raise SystemExit(f'{label}: the notebook\'s code changed between the parts of this run '
                         f'({parts_path.relative_to(root)}); delete {directory.relative_to(root)} '
                         'and run it again from the start')
    meta = dict(
        notebook=source.name, code_hash=code_hash, git_commit=commit,
        started_at=parts[0]['started_at'], parts=len(parts),
        execution_s=round(sum(p['execution_s'] for p in parts), 1),
        max_load_average=max(p['max_load_average'] for p in parts), cpu_count=os.cpu_count(),
        all_parts_recorded=parts_account_for_every_checkpoint(parts))
    if all('other_cpu_s' in p for p in parts):     # parts kept before it was measured lack it
        other = sum(p['other_cpu_s'] for p in parts)
        meta.update(other_cpu_s=round(other, 1),
                    other_cpu_share=round(other / (meta['execution_s'] * os.cpu_count()), 4))
    target = kept_runs.reference_dir(chapter, root)
    target.mkdir(exist_ok=True)
    keep_other_runs(nb, target / source.name, selected)
    nbformat.write(nb, str(target / source.name))
    paths = {}
    for run, (record,) in found.items():
        # The times and loads are the notebook's execution's, all of its runs together.
        record = dict(record, reference=dict(meta, **({'run': run} if run else {})))
        path = paths[run] = kept_runs.record_path(chapter, framework, run, root)
        path.write_text(json.dumps(record, indent=1) + '\n')
        print(f'{time.strftime("%H:%M:%S")} {label}{f"/{run}" if run else ""}: done, '
              f'{len(record["history"])} epochs, {record["wall_time_s"] / 60:.1f} min of '
              f'training; wrote {path.relative_to(root)}', flush=True)
    refs = kept_runs.load_all(chapter, root)      # this run and the chapter's others
    shown = [kept_runs.load(chapter, framework, root, run) for run in found]
    for notebook in showing.show_in_sources(chapter, shown, root):
        print(f'{label}: its outputs are now in {notebook.relative_to(root)}', flush=True)
    if showing.refresh(chapter, refs, root):
        figure = run_numbers.figure_path(chapter, root).relative_to(root)
        print(f'{label}: the comparison figure {figure} and the numbers the prose quotes are '
              'updated in the notebooks', flush=True)
    return paths


def records_of(cell):
    """The run records (runs.records) among a training cell's outputs."""
    return runs.records(nbformat.from_dict({'cells': [cell]}))


def keep_other_runs(nb, kept_path, selected):
    """Give the training cells of `nb` (an executed notebook) whose runs were not `selected` the
    outputs they have in the kept reference notebook at `kept_path`, if any: that notebook
    holds every run's outputs, whichever execution made them."""
    if not kept_path.exists():
        return
    kept = showing.train_cells(nbformat.read(str(kept_path), as_version=4), kept_path.name)
    for run, cell in showing.train_cells(nb, kept_path.name).items():
        if run not in selected and run in kept:
            cell.outputs, cell.execution_count = kept[run].outputs, kept[run].execution_count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--chapter', action='append', help='default: every chapter')
    parser.add_argument('--frameworks', default=','.join(IDS),
                        help='comma-separated, run in this order (default: %(default)s)')
    parser.add_argument('--runs', help='comma-separated names of the named runs to train '
                                       '(default: all); the others keep their kept outputs')
    parser.add_argument('--show-only', action='store_true',
                        help='run nothing; put the kept reference outputs into the source '
                             'notebooks (labelled stale where the code has changed), redraw '
                             'the comparison figure and quote the numbers in the prose')
    args = parser.parse_args(argv)
    names = args.chapter or chapters.chapters()
    frameworks = [fw.strip() for fw in args.frameworks.split(',') if fw.strip()]
    selected = [name.strip() for name in args.runs.split(',') if name.strip()] if args.runs else None
    unknown = sorted(set(frameworks) - set(IDS))
    if unknown:
        parser.error(f'unknown framework(s) {", ".join(unknown)}; choose from {", ".join(IDS)}')
    if args.show_only:
        for chapter in names:
            try:
                refs = kept_runs.load_all(chapter)
                named = [ref for by_fw in kept_runs.load_named(chapter).values()
                         for ref in by_fw.values()]
                shown = [ref for ref in list(refs.values()) + named if ref.framework in frameworks]
                changed = showing.show_in_sources(chapter, shown) + showing.refresh(chapter, refs)
            except (ReferenceRunError, chapters.ChapterError) as error:
                sys.exit(f'reference --show-only: {error}')
            for path in sorted(set(changed)):
                print(f'updated {path.relative_to(chapters.ROOT)}')
        return 0
    # Ctrl-C or SIGTERM (a session or job ending): while a notebook runs, execute stops its
    # kernel, which saves a checkpoint, and raises execute.Stopped; at other times the handler
    # below raises. Either way `run` notes its part, and the user needs to know what was kept
    # and how to go on.
    stopped = []

    def stop(signum, frame):
        if not stopped:         # once: a second signal must not cut the notes short
            stopped.append(signum)
            raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        for chapter in names:
            for framework in frameworks:
                try:
                    run(chapter, framework, runs=selected)
                except (ReferenceRunError, chapters.ChapterError) as error:
                    sys.exit(f'make reference: {error}')
                except BaseException as error:
                    signum = (error.signum if isinstance(error, execute.Stopped)
                              else stopped[0] if stopped else None)
                    if signum is None:
                        raise
                    kept = checkpoint_dir(chapter, framework).relative_to(chapters.ROOT)
                    print(f'\nmake reference: {chapter}/{framework} was stopped by '
                          f'{signal.Signals(signum).name}. Its checkpoints and the record of '
                          f'this part are kept in {kept}/: run the same command to resume.',
                          file=sys.stderr)
                    return 128 + signum
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


if __name__ == '__main__':
    sys.exit(main())
