"""Build the HTML book: `.venv/bin/python book/tools/build_book.py` (what `make book` runs).

1. execute: every chapter's four framework notebooks run, each with its own kernel and with
   this environment (D2LMINI_BUDGET, default auto), into _build/executed/<same path>;
2. merge: the four executed notebooks of a chapter become one page, book/_generated/<chapter>.ipynb
   (git-ignored), prose once and each group of framework cells tagged for a tab set;
3. html: Jupyter Book renders _config.yml/_toc.yml into _build/html, warnings as errors.

The chapters are the pages _toc.yml lists under book/_generated/; chapter <c> is made from
book/<c>/<c>_<framework>.ipynb.
"""
import argparse
import os
import pathlib
import re
import shutil
import subprocess
import sys
import time

import yaml

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import attachments  # noqa: E402
import execute  # noqa: E402
import merge  # noqa: E402

ROOT = HERE.parent.parent
GENERATED = 'book/_generated'
BUILD = ROOT / '_build'


class BuildError(Exception):
    pass


def chapters(root=ROOT):
    """The chapter names _toc.yml lists as book/_generated/<name>, in order."""
    toc = yaml.safe_load((root / '_toc.yml').read_text())
    found = []

    def walk(entry):
        if isinstance(entry, dict):
            file = entry.get('file')
            if file:
                file = re.sub(r'\.(ipynb|md)$', '', file)
                if file.startswith(GENERATED + '/'):
                    found.append(file[len(GENERATED) + 1:])
            for value in entry.values():
                if isinstance(value, (list, dict)):
                    walk(value)
        elif isinstance(entry, list):
            for item in entry:
                walk(item)

    walk(toc)
    return found


def colab_links(root=ROOT):
    """A function from a notebook's path (relative to the book root) to its Colab address."""
    config = yaml.safe_load((root / '_config.yml').read_text())
    repository = config.get('repository') or {}
    url, branch = repository.get('url', ''), repository.get('branch', 'main')
    match = re.fullmatch(r'https://github\.com/([^/]+)/([^/]+?)(?:\.git)?/?', url or '')
    if not match:
        raise BuildError(f'_config.yml: repository.url must be a GitHub repository address '
                         f'(https://github.com/<owner>/<repo>) for the Colab links, not {url!r}')
    owner, repo = match.groups()
    prefix = (repository.get('path_to_book') or '').strip('/')
    return lambda path: (f'https://colab.research.google.com/github/{owner}/{repo}/blob/{branch}/'
                         + '/'.join(p for p in (prefix, path) if p))


def sources(chapter, root=ROOT):
    found = {fw: root / 'book' / chapter / f'{chapter}_{fw}.ipynb' for fw, _ in merge.FRAMEWORKS}
    missing = [str(p.relative_to(root)) for p in found.values() if not p.exists()]
    if missing:
        raise BuildError(f'_toc.yml lists {GENERATED}/{chapter}, but these notebooks are missing: '
                         + ', '.join(missing))
    return found


def check_mathjax(root=ROOT):
    """The book serves MathJax itself (_config.yml: mathjax_path, html_static_path .mathjax)."""
    if not (root / '.mathjax' / 'mathjax' / 'tex-mml-chtml.js').is_file():
        raise BuildError('MathJax is missing from .mathjax/mathjax: run `make setup`, which unpacks '
                         'the npm package mathjax there (it needs npm).')


def executed_path(source, root=ROOT):
    return BUILD / 'executed' / source.relative_to(root)


def _say(message):
    print(message, flush=True)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('--chapter', action='append',
                        help='only this chapter (repeatable; default: all in _toc.yml; the '
                             'others keep the pages of the last merge)')
    parser.add_argument('--skip-execute', action='store_true',
                        help='reuse the notebooks executed by an earlier build')
    parser.add_argument('--cell-timeout', type=int, default=None,
                        help='seconds a cell may run (default: 900 with budget smoke, 14400 otherwise)')
    args = parser.parse_args(argv)

    os.environ.setdefault('D2LMINI_BUDGET', 'auto')
    budget = os.environ['D2LMINI_BUDGET']
    if budget.strip().lower() not in ('full', 'smoke', 'auto'):
        raise BuildError(f'D2LMINI_BUDGET={budget!r}: use full, smoke or auto.')
    timeout = args.cell_timeout or (900 if budget == 'smoke' else 14400)
    names = chapters()
    if args.chapter:
        unknown = sorted(set(args.chapter) - set(names))
        if unknown:
            raise BuildError(f'not in _toc.yml: {", ".join(unknown)} (listed: {", ".join(names)})')
        names = [n for n in names if n in args.chapter]
    chapter_sources = {name: sources(name) for name in names}
    timings, total = [], time.perf_counter()

    _say(f'== 1/3 execute (D2LMINI_BUDGET={budget}, at most {timeout} s per cell)')
    start = time.perf_counter()
    for name, paths in chapter_sources.items():
        for fw, path in paths.items():
            target = executed_path(path)
            if args.skip_execute:
                if not target.exists():
                    raise BuildError(f'--skip-execute: {target.relative_to(ROOT)} does not exist yet')
                _say(f'   {path.relative_to(ROOT)}: reusing {target.relative_to(ROOT)}')
                continue
            _say(f'   {path.relative_to(ROOT)} ...')
            seconds = execute.execute(path, target, cell_timeout=timeout)
            _say(f'   {path.relative_to(ROOT)}: {seconds:.1f} s')
    timings.append(('execute', time.perf_counter() - start))

    _say(f'== 2/3 merge into {GENERATED}/')
    start = time.perf_counter()
    generated = ROOT / GENERATED
    if not args.chapter and generated.exists():
        shutil.rmtree(generated)          # no stale pages of chapters that left the book
    colab = colab_links()
    for name, paths in chapter_sources.items():
        page = generated / f'{name}.ipynb'
        merged = merge.merge_chapter(name, {fw: executed_path(p) for fw, p in paths.items()},
                                     paths, page, ROOT, colab)
        dropped = merged.metadata[merge.META_KEY]['native_log_lines_dropped']
        attachments.extract_to_files(page)      # figures embedded in the notebooks -> files
        _say(f'   {page.relative_to(ROOT)}'
             + (f' ({dropped} lines of C++ library logs left out of stderr outputs)' if dropped else ''))
    timings.append(('merge', time.perf_counter() - start))

    _say('== 3/3 html (jupyter-book build, warnings are errors)')
    check_mathjax()
    start = time.perf_counter()
    for stale in (BUILD / 'html', BUILD / 'jupyter_execute'):   # no pages left from older builds
        if stale.exists():
            shutil.rmtree(stale)
    jupyter_book = pathlib.Path(sys.executable).with_name('jupyter-book')
    command = [str(jupyter_book) if jupyter_book.exists() else 'jupyter-book',
               'build', str(ROOT), '--all', '-W', '--builder', 'html']
    result = subprocess.run(command, cwd=ROOT)
    if result.returncode:
        raise BuildError(f'jupyter-book build failed (exit code {result.returncode}); see above.')
    timings.append(('html', time.perf_counter() - start))

    _say('== done: ' + ', '.join(f'{step} {seconds:.1f} s' for step, seconds in timings)
         + f', total {time.perf_counter() - total:.1f} s')
    _say(f'   open {(BUILD / "html" / "index.html").relative_to(ROOT)}')


if __name__ == '__main__':
    try:
        main()
    except (BuildError, execute.ExecutionError, merge.MergeError,
            attachments.AttachmentError) as error:
        print(f'\nbuild_book: {error}', file=sys.stderr)
        sys.exit(1)
