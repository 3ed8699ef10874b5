"""A chapter's code as a module: how a later notebook (the worked exercises) uses a chapter's
classes without copying them. `d2l.load_chapter('googlenet')` in any adapter.

The chapter notebooks are the only source of their code: d2lmini ships no copy of it (d2l
copies `#@save` cells into its library, so the library and the page can drift apart). Loading
runs the notebook's code cells, in order, in a fresh module, except the cells that install
packages (tag `colab-install`) and the one that trains (tag `train`): the classes and
functions come out exactly as the chapter defines them, and nothing is trained.

Where the notebook is found, in order:
1. `D2LMINI_BOOK`: the `book/` folder of a checkout, if the variable is set;
2. beside the running notebook: `../<chapter>/` (a chapter's notebooks are run from their
   folder, as Jupyter, the book's build and nbval do) and `./book/<chapter>/` (a checkout's root);
3. otherwise the release of this d2lmini on GitHub (`RELEASE_URL`, the tag the install cells
   name), as in Colab, where a notebook is opened alone.
"""
import json
import os
import pathlib
import re
import sys
import types
import urllib.error
import urllib.request

from d2lmini import __version__
from d2lmini.errors import D2lminiError
from d2lmini.frameworks import get as get_framework

INSTALL_TAG = 'colab-install'   # the cell that installs d2lmini where it is missing (Colab)
TRAIN_TAG = 'train'             # the one cell that calls Trainer.fit
SKIPPED_TAGS = frozenset({INSTALL_TAG, TRAIN_TAG})
# The book's notebooks at the release that matches this d2lmini (the tag the install cells use).
RELEASE_URL = f'https://raw.githubusercontent.com/d2lmini/book/v{__version__}/book'


class ChapterCodeError(D2lminiError, LookupError):
    """A chapter's notebook was not found, could not be read, or its code failed."""


def notebook_name(chapter, framework):
    return f'{chapter}_{framework}.ipynb'


def local_file(chapter, name):
    """The path of the chapter's file `name` (relative to its folder) on this machine, looked
    for as the module docstring says, or None."""
    folders = [pathlib.Path(os.environ['D2LMINI_BOOK']) / chapter] if os.environ.get('D2LMINI_BOOK') else []
    folders += [pathlib.Path('..') / chapter, pathlib.Path('book') / chapter]
    return next((folder / name for folder in folders if (folder / name).is_file()), None)


def local_notebook(chapter, framework):
    """The path of the chapter's notebook on this machine (see the module docstring), or None."""
    return local_file(chapter, notebook_name(chapter, framework))


def read_notebook(chapter, framework, timeout=30):
    """(the notebook as a dict, where it came from: a path or a URL). ChapterCodeError if it is
    neither on this machine nor downloadable."""
    path = local_notebook(chapter, framework)
    if path is not None:
        try:
            return json.loads(path.read_text(encoding='utf-8')), str(path)
        except (OSError, ValueError) as error:
            raise ChapterCodeError(f'{path}: not a readable notebook ({error})') from error
    url = f'{RELEASE_URL}/{chapter}/{notebook_name(chapter, framework)}'
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return json.loads(response.read().decode('utf-8')), url
    except (OSError, ValueError, urllib.error.URLError) as error:
        raise ChapterCodeError(
            f'The chapter {chapter!r} ({notebook_name(chapter, framework)}) is not on this '
            f'machine (looked in ../{chapter}/ and ./book/{chapter}/ from {os.getcwd()}) and '
            f'could not be downloaded from {url} ({error}). Run this notebook from its folder in '
            f'a checkout of the book, or set D2LMINI_BOOK to the checkout\'s book/ folder.') from error


def code_cells(notebook):
    """(index, source) of the cells `load` runs: code cells without a SKIPPED_TAGS tag."""
    for index, cell in enumerate(notebook.get('cells', [])):
        tags = set((cell.get('metadata') or {}).get('tags') or [])
        if cell.get('cell_type') == 'code' and not SKIPPED_TAGS & tags:
            source = cell.get('source', '')
            yield index, ''.join(source) if isinstance(source, list) else source


def run_cells(notebook, module, origin, quiet=True):
    """Run the notebook's code cells (`code_cells`) in `module`'s namespace. A cell's failure
    raises ChapterCodeError naming the notebook and the cell, chained to the error."""
    import contextlib
    import io
    name = origin.rsplit('/', 1)[-1]
    for index, source in code_cells(notebook):
        if source.lstrip().startswith(('%', '!')):
            continue        # IPython magics and shell lines: no code of the chapter
        code = compile(source, f'{name}[cell {index}]', 'exec')
        try:
            with contextlib.redirect_stdout(io.StringIO()) if quiet else contextlib.nullcontext():
                exec(code, module.__dict__)
        except Exception as error:
            raise ChapterCodeError(f'{origin}, cell {index}: its code failed while loading the '
                                   f'chapter ({type(error).__name__}: {error})') from error
    return module


def load(chapter, framework, quiet=True, blocks=None):
    """The chapter's code for `framework` (an id of d2lmini.frameworks: 'pytorch', ...) as a
    new module named `<chapter>_<framework>`: `load('googlenet', 'pytorch').GoogleNet`.

    Each call runs the code anew, so the module's classes and globals are the caller's own:
    changing one (a subclass, a replaced helper) changes nothing in another load or in the
    chapter. The cells' printed output is dropped unless `quiet` is False.

    `blocks` ({name: replacement}) loads the chapter with building blocks of the caller's in
    place of its own, in the spirit of torchvision's `GoogLeNet(blocks=...)`: e.g.
    `{'conv_relu': conv_bn_relu}` gives a module whose `GoogleNet` builds every convolution
    with `conv_bn_relu`, while the chapter's code stays as it is (its cells, its reference
    runs). Each name must be one the chapter defines; the replacement is in force wherever
    the chapter's code calls it after loading (building a network does). Such a module is
    named `<chapter>_<framework>_with_<names>` (plus a number, if taken).

    Raises ChapterCodeError (not found, not a notebook, a cell failed, a block the chapter
    does not define) and KeyError for an unknown framework.
    """
    get_framework(framework)
    if not re.fullmatch(r'[\w-]+', chapter):
        raise ChapterCodeError(f'a chapter is a folder name such as \'googlenet\', not {chapter!r}')
    notebook, origin = read_notebook(chapter, framework)
    name = f'{chapter}_{framework}'
    if blocks:
        name = unused_module_name(f'{name}_with_{"_".join(sorted(blocks))}')
    module = types.ModuleType(name, f'The code of {origin}.')
    module.__file__ = origin
    # Registered like an imported module, so that pickling, dataclasses and Flax (which look
    # classes up by their module's name) work on its classes.
    sys.modules[module.__name__] = module
    run_cells(notebook, module, origin, quiet)
    if blocks:
        unknown = sorted(set(blocks) - set(vars(module)))
        if unknown:
            defined = sorted(key for key, value in vars(module).items() if callable(value)
                             and getattr(value, '__module__', None) == module.__name__)
            raise ChapterCodeError(
                f'The chapter {chapter!r} defines no {", ".join(map(repr, unknown))}, so it cannot '
                f'be replaced; the blocks its code defines are: {", ".join(defined)}.')
        vars(module).update(blocks)
    return module


def unused_module_name(name):
    """`name`, or `name_2`, `name_3`, ... : the first that no loaded module has."""
    candidate, number = name, 1
    while candidate in sys.modules:
        number += 1
        candidate = f'{name}_{number}'
    return candidate


def loader(framework):
    """`load` for one framework: what each adapter exposes as `d2l.load_chapter(chapter)`."""
    get_framework(framework)

    def load_chapter(chapter, blocks=None, quiet=True):
        return load(chapter, framework, quiet, blocks)
    load_chapter.__doc__ = (f"The chapter's {get_framework(framework).label} code as a module, "
                            f"e.g. `d2l.load_chapter('googlenet').GoogleNet`; with `blocks`, "
                            f"with building blocks of yours in place of the chapter's (see "
                            f"d2lmini.chapter_code.load).")
    return load_chapter
