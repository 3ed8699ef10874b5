"""Where the book's chapters are, what is known about them, and their code.

A chapter is a `_toc.yml` entry `book/<name>/index`: the page the build merges from the
folder's notebooks `book/<name>/<name>_<framework>.ipynb`. Facts about a chapter are in
`book/<name>/chapter.yml` (`facts`): what its tests check (its parameter count, ...) and what
its reference runs are read against (chance, run_numbers.Facts).
`python -m book.tools.chapters` prints every chapter's notebooks (for the Makefile).
"""
import json
import pathlib
import re
import types

from d2lmini import chapter_code
# the cell that installs d2lmini where it is missing (Colab), the one that calls Trainer.fit,
# and both: the cells `load_code` leaves out
from d2lmini.chapter_code import INSTALL_TAG, SKIPPED_TAGS, TRAIN_TAG  # noqa: F401
from d2lmini.frameworks import FRAMEWORKS

# A notebook may train several runs, one per training cell, each named by a tag `run-<name>`
# beside `train` (the worked exercises: one per variant); a chapter's one training cell needs
# no name. A name is lower case, digits and hyphens.
RUN_TAG_PREFIX = 'run-'
RUN_NAME = re.compile(r'[a-z0-9][a-z0-9-]*')


def run_name(cell):
    """The run a training cell trains: the name of its `run-<name>` tag, or None."""
    names = [tag[len(RUN_TAG_PREFIX):] for tag in cell.get('metadata', {}).get('tags', [])
             if tag.startswith(RUN_TAG_PREFIX)]
    return names[0] if names else None

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGE = 'index'


class ChapterError(Exception):
    pass


def chapters(root=ROOT):
    """The chapter names, in _toc.yml's order."""
    import yaml   # not in MXNet's environment, which needs only load_code

    def files(entry):
        if isinstance(entry, list):
            for item in entry:
                yield from files(item)
        elif isinstance(entry, dict):
            yield entry.get('file') or entry.get('root') or ''
            yield from files([v for v in entry.values() if isinstance(v, (list, dict))])

    toc = yaml.safe_load((pathlib.Path(root) / '_toc.yml').read_text())
    matches = (re.fullmatch(rf'book/([\w-]+)/{PAGE}(?:\.ipynb)?', f) for f in files(toc))
    return [m.group(1) for m in matches if m]


def github(root=ROOT):
    """(owner, repository, branch, path of the book inside it) from _config.yml's `repository`:
    where the Colab links and the notebooks' figure addresses point. Raises ChapterError if
    its url is not a GitHub repository's address."""
    import yaml
    config = yaml.safe_load((pathlib.Path(root) / '_config.yml').read_text()) or {}
    repository = config.get('repository') or {}
    url = repository.get('url') or ''
    match = re.fullmatch(r'https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?', url)
    if not match:
        raise ChapterError(f'_config.yml: repository.url must be a GitHub repository address '
                           f'(https://github.com/<owner>/<repo>) for the Colab links and the '
                           f'figures, not {url!r}')
    return (*match.groups(), repository.get('branch', 'main'),
            (repository.get('path_to_book') or '').strip('/'))


def notebook_path(chapter, framework, root=ROOT):
    return pathlib.Path(root) / 'book' / chapter / f'{chapter}_{framework}.ipynb'


def notebooks(chapter, root=ROOT):
    """framework id -> notebook path, in book order; ChapterError naming any that are missing."""
    found = {fw.id: notebook_path(chapter, fw.id, root) for fw in FRAMEWORKS}
    missing = [str(p.relative_to(root)) for p in found.values() if not p.exists()]
    if missing:
        raise ChapterError(f'_toc.yml lists book/{chapter}/{PAGE}, but these notebooks are '
                           f'missing: {", ".join(missing)}')
    return found


def code_hash(path):
    """SHA-256 of a notebook's code cells but its install cell (their sources, in order): what
    a reference run of it must match to count as current. The install cell computes nothing
    (it installs d2lmini where it is missing; a run's record gives the versions it used), so
    its wording and release tag may change without making a reference run stale."""
    import hashlib
    cells = json.loads(pathlib.Path(path).read_text())['cells']
    code = '\n\0\n'.join(''.join(c['source']) for c in cells if c['cell_type'] == 'code'
                          and INSTALL_TAG not in c.get('metadata', {}).get('tags', []))
    return hashlib.sha256(code.encode()).hexdigest()


def facts(chapter, root=ROOT):
    """The chapter's chapter.yml as a dict ({} without one)."""
    import yaml
    path = pathlib.Path(root) / 'book' / chapter / 'chapter.yml'
    return yaml.safe_load(path.read_text()) or {} if path.exists() else {}


def load_code(chapter, framework, root=ROOT, quiet=True):
    """Run a notebook's code cells but the install and training cells, and return the
    namespace: tests and benchmarks use exactly the code the reader sees (the same loading as
    `d2l.load_chapter`, d2lmini/chapter_code.py, from this checkout's notebook)."""
    path = notebook_path(chapter, framework, root)
    module = types.ModuleType(f'{chapter}_{framework}')
    chapter_code.run_cells(json.loads(path.read_text()), module, str(path), quiet)
    return vars(module)


if __name__ == '__main__':
    # For the Makefile: a line per framework, its kernel and then its notebooks of every
    # chapter (nbval runs each framework's notebooks with its kernel: the notebooks name
    # Colab's python3).
    for fw in FRAMEWORKS:
        print(fw.kernel, ' '.join(str(notebook_path(c, fw.id).relative_to(ROOT))
                                  for c in chapters() if notebooks(c)))
