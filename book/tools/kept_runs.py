"""The reference runs a chapter keeps, read from `book/<chapter>/reference/` (reference.py makes
them): per framework, the executed notebook `<chapter>_<framework>.ipynb` and its run record
`<framework>.json` (d2lmini/record.py) plus `reference` (the commit, the hash of the notebook's
code cells, when and how it ran). A notebook whose training cells train named runs (tag
`run-<name>`, chapters.run_name; the worked exercises) keeps one record per run,
`<framework>.<name>.json`. A command loads them once (`load_all`, `load_named`) and hands them on.
"""
import dataclasses
import json
import pathlib

import nbformat

from book.tools import chapters
from d2lmini.frameworks import IDS


class ReferenceRunError(Exception):
    """A reference run, or the notebook it belongs to, is not as it must be; says which."""


def reference_dir(chapter, root=chapters.ROOT):
    return pathlib.Path(root) / 'book' / chapter / 'reference'


@dataclasses.dataclass
class Reference:
    """A kept reference run: its record (with `reference`), its executed notebook, and whether
    its code is still the notebook's (`current`)."""
    chapter: str
    framework: str
    record: dict
    notebook: nbformat.NotebookNode
    current: bool
    run: str = None     # the run's name (chapters.run_name); None for a chapter's one run

    @property
    def name(self):
        return f'{self.chapter}/{self.framework}' + (f'/{self.run}' if self.run else '')


def record_path(chapter, framework, run=None, root=chapters.ROOT):
    """Where the record of a framework's reference run (named `run`, or the unnamed one) is."""
    return reference_dir(chapter, root) / (f'{framework}.json' if run is None
                                           else f'{framework}.{run}.json')


def load(chapter, framework, root=chapters.ROOT, run=None):
    """The chapter's reference run in `framework` (the run named `run`, or the unnamed one), or
    None if there is none. Raises ReferenceRunError if its record or notebook cannot be read."""
    folder = reference_dir(chapter, root)
    path = record_path(chapter, framework, run, root)
    source = chapters.notebook_path(chapter, framework, root)
    kept = folder / source.name
    if not path.exists():
        return None
    which = f' FRAMEWORKS={framework}'
    try:
        record = json.loads(path.read_text())
        nb = nbformat.read(str(kept), as_version=4)
        code_hash = record['reference']['code_hash']
    except (OSError, ValueError, KeyError) as error:
        raise ReferenceRunError(f'{path.relative_to(root)} or {kept.relative_to(root)} cannot be '
                                f'read as a reference run ({error!r}); run `make reference '
                                f'CHAPTER={chapter}{which}` again') from None
    return Reference(chapter, framework, record, nb,
                     current=code_hash == chapters.code_hash(source), run=run)


def load_all(chapter, root=chapters.ROOT):
    """framework id -> Reference, in book order, for the frameworks of the chapter that have
    one. Raises ReferenceRunError as `load` does."""
    found = {fw: load(chapter, fw, root) for fw in IDS}
    return {fw: ref for fw, ref in found.items() if ref is not None}


def load_named(chapter, root=chapters.ROOT):
    """run name -> {framework id -> Reference}, in book order, of the chapter's named reference
    runs (`<framework>.<name>.json`); {} for a chapter with one unnamed run per notebook.
    Raises ReferenceRunError as `load` does."""
    folder, named = reference_dir(chapter, root), {}
    for fw in IDS:
        for path in sorted(folder.glob(f'{fw}.*.json')):
            run = path.name[len(fw) + 1:-len('.json')]
            if chapters.RUN_NAME.fullmatch(run):
                named.setdefault(run, {})[fw] = load(chapter, fw, root, run)
    return named
