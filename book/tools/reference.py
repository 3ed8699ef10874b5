"""Reference runs: a chapter's notebooks executed with the full budget, kept in the chapter's
folder for the book to show (`make reference CHAPTER=googlenet FRAMEWORKS=jax,mxnet`).

Each framework runs on its own, one after another, with `D2LMINI_BUDGET=full` and checkpoints
in `_build/reference/<chapter>/<framework>/`: run the same command again after an
interruption and training resumes from the last epoch (or the step where Ctrl-C stopped it).
The log shows one line per finished epoch, read from the checkpoints, so `tail -f` follows it.

Results, in `book/<chapter>/reference/`:
    <chapter>_<framework>.ipynb   the executed notebook
    <framework>.json              its run record (d2lmini/record.py) plus `reference`: the git
                                  commit, the hash of the notebook's code cells (to tell a
                                  stale reference), when it ran, in how many processes
                                  (`parts`, more than 1 after a resume) taking `execution_s` in
                                  all, and the highest 1-minute load average seen during the
                                  run beside the CPU count (a load above the CPU count means
                                  something else ran too).
"""
import argparse
import datetime
import json
import os
import pathlib
import subprocess
import sys
import threading
import time

import nbformat

from book.tools import chapters, execute, runs
from d2lmini import checkpoint
from d2lmini.frameworks import IDS


def reference_dir(chapter, root=chapters.ROOT):
    return pathlib.Path(root) / 'book' / chapter / 'reference'


def checkpoint_dir(chapter, framework, root=chapters.ROOT):
    return pathlib.Path(root) / '_build' / 'reference' / chapter / framework


def git_commit(root=chapters.ROOT):
    try:
        commit = subprocess.run(['git', 'rev-parse', 'HEAD'], cwd=root, capture_output=True,
                                text=True, check=True).stdout.strip()
        dirty = subprocess.run(['git', 'status', '--porcelain', '--', 'd2lmini', 'book'],
                               cwd=root, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ('-dirty' if dirty else '')


class Watcher(threading.Thread):
    """Prints each epoch as its checkpoint appears, and keeps the highest load average."""

    def __init__(self, directory, label, every=10):
        super().__init__(daemon=True)
        self.directory, self.label, self.every = directory, label, every
        self.stop, self.printed, self.max_load = threading.Event(), 0, os.getloadavg()[0]

    def run(self):
        while not self.stop.wait(self.every):
            self.max_load = max(self.max_load, os.getloadavg()[0])
            self.poll()

    def poll(self):
        latest = self.directory / checkpoint.LATEST
        try:
            meta = json.loads((self.directory / latest.read_text().strip() / checkpoint.META)
                              .read_text())
        except (OSError, ValueError):
            return          # no checkpoint yet, or one being replaced
        for row in meta['history'][self.printed:]:
            speed = row['examples_per_sec']
            print(f"{time.strftime('%H:%M:%S')} {self.label} epoch {row['epoch']}/"
                  f"{meta['epochs_planned']}: train loss {row['train_loss']:.4f}, val loss "
                  f"{row['val_loss']:.4f}, val acc {row['val_acc']:.4f}, "
                  f"{'n/a' if speed is None else f'{speed:.1f}'} examples/s", flush=True)
        self.printed = max(self.printed, len(meta['history']))


def run(chapter, framework, root=chapters.ROOT):
    """Execute one notebook with the full budget (resuming from its checkpoints) and write
    its reference notebook and record; returns the record's path."""
    source = chapters.notebook_path(chapter, framework, root)
    directory = checkpoint_dir(chapter, framework, root)
    directory.mkdir(parents=True, exist_ok=True)
    # Relative to the notebook's folder, where its kernel starts: the outputs the book shows
    # then name no local path.
    env = dict(D2LMINI_BUDGET='full',
               D2LMINI_CHECKPOINT_DIR=os.path.relpath(directory, source.parent))
    label = f'{chapter}/{framework}'
    # What is run is fixed now: edits made while it trains must not be credited to it.
    code_hash, commit = chapters.code_hash(source), git_commit(root)
    # A run resumed over several processes adds up their times and loads (kept beside the
    # checkpoints; a finished run starts afresh).
    parts_path = directory / 'reference-parts.json'
    try:
        parts = json.loads(parts_path.read_text())
    except (OSError, ValueError):
        parts = []
    if parts and parts[-1].get('finished'):
        parts = []
    started = datetime.datetime.now(datetime.timezone.utc)
    print(f'{time.strftime("%H:%M:%S")} {label}: running {source.relative_to(root)} with the '
          f'full budget; checkpoints in {directory.relative_to(root)}', flush=True)
    watcher = Watcher(directory, label)
    watcher.start()
    executed = directory / f'{chapter}_{framework}.executed.ipynb'
    part = dict(started_at=started.isoformat(timespec='seconds'), code_hash=code_hash,
                git_commit=commit)
    begun = time.time()
    try:
        execute.execute(source, executed, cell_timeout=None, env=env)
        part['finished'] = True
    finally:
        watcher.stop.set()
        watcher.poll()
        part.update(execution_s=round(time.time() - begun, 1),
                    max_load_average=max(watcher.max_load, os.getloadavg()[0]))
        parts.append(part)
        parts_path.write_text(json.dumps(parts, indent=1) + '\n')
    nb = nbformat.read(str(executed), as_version=4)
    found = runs.records(nb)
    if len(found) != 1 or found[0]['status'] != 'finished':
        raise SystemExit(f'{label}: expected one finished run record, found '
                         f'{[r["status"] for r in found]}')
    if {p['code_hash'] for p in parts} != {code_hash}:
        raise SystemExit(f'{label}: the notebook\'s code changed between the parts of this run '
                         f'({parts_path.relative_to(root)}); delete {directory.relative_to(root)} '
                         'and run it again from the start')
    record = dict(found[0], reference=dict(
        notebook=source.name, code_hash=code_hash, git_commit=commit,
        started_at=parts[0]['started_at'], parts=len(parts),
        execution_s=round(sum(p['execution_s'] for p in parts), 1),
        max_load_average=max(p['max_load_average'] for p in parts), cpu_count=os.cpu_count()))
    target = reference_dir(chapter, root)
    target.mkdir(exist_ok=True)
    nbformat.write(nb, str(target / source.name))
    path = target / f'{framework}.json'
    path.write_text(json.dumps(record, indent=1) + '\n')
    print(f'{time.strftime("%H:%M:%S")} {label}: done, {len(record["history"])} epochs, '
          f'{record["wall_time_s"] / 60:.1f} min of training; wrote {path.relative_to(root)}',
          flush=True)
    return path


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--chapter', action='append', help='default: every chapter')
    parser.add_argument('--frameworks', default=','.join(IDS),
                        help='comma-separated, run in this order (default: %(default)s)')
    args = parser.parse_args(argv)
    names = args.chapter or chapters.chapters()
    frameworks = [fw.strip() for fw in args.frameworks.split(',') if fw.strip()]
    unknown = sorted(set(frameworks) - set(IDS))
    if unknown:
        parser.error(f'unknown framework(s) {", ".join(unknown)}; choose from {", ".join(IDS)}')
    for chapter in names:
        for framework in frameworks:
            run(chapter, framework)


if __name__ == '__main__':
    sys.exit(main())
