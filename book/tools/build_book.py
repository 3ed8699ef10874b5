"""Build the HTML book: `python -m book.tools.build_book` in the repository (`make book`).

1. execute each chapter's notebooks, each with its kernel and this environment (D2LMINI_BUDGET,
   default auto), into _build/executed/<same path>;
2. merge them into the chapter's page, book/<chapter>/index.ipynb (git-ignored, beside the
   notebooks and figures), with the run table from the run records. A training cell of a
   notebook with a reference run (book/<chapter>/reference/, kept_runs.py) shows that run's
   outputs, labelled, and the prose quotes their numbers (showing.py); figure addresses
   point to the SVGs beside the page (figures.py), citations and the reference list become
   sphinxcontrib-bibtex's (citations.py). A reference run of
   older code is labelled so, with a warning here;
3. render _config.yml/_toc.yml into _build/html with Jupyter Book, warnings as errors."""
import argparse
import os
import shutil
import subprocess
import sys
import time

import nbformat

from book.tools import chapters, citations, execute, figures, kept_runs, merge, run_numbers, runs, showing
from d2lmini import budget as d2lmini_budget, frameworks

ROOT = chapters.ROOT
BUILD = ROOT / '_build'


class BuildError(Exception):
    pass


def budget_and_timeout(explicit_timeout=None, environ=os.environ):
    """The budget asked for (d2lmini's own parser of D2LMINI_BUDGET) and the seconds a cell
    may run: 900 under 'smoke', 4 hours otherwise, unless given."""
    try:
        budget = d2lmini_budget.choice(environ)
    except ValueError as error:
        raise BuildError(str(error)) from None
    return budget, explicit_timeout or (900 if budget == 'smoke' else 14400)


def _repository_blob(root):
    """'<owner>/<repo>/blob/<branch>[/<path_to_book>]' from _config.yml's `repository:`."""
    owner, repo, branch, book = chapters.github(root)
    return '/'.join(p for p in (owner, repo, 'blob', branch, book) if p)


def colab_links(root=ROOT):
    """A function from a notebook's path (relative to the book root) to its Colab address."""
    prefix = _repository_blob(root)
    return lambda path: f'https://colab.research.google.com/github/{prefix}/{path}'


def github_links(root=ROOT):
    """A function from a file's path (relative to the book root) to its page in the public
    repository on GitHub: where a PDF's links to the book's files point."""
    prefix = _repository_blob(root)
    return lambda path: f'https://github.com/{prefix}/{path}'


def executed_path(source):
    return BUILD / 'executed' / source.relative_to(ROOT)


def warn(message):
    print(f'   WARNING: {message}', flush=True)


def show_references(name, refs, executed, rel):
    """Show each of the chapter's reference runs `refs` (References, of any runs) in its executed
    notebook's training cell for its run (executed, rel: framework -> notebook, path relative
    to the root); warn of any made by older code."""
    for ref in refs:
        fw = ref.framework
        showing.show(executed[fw], ref, rel[fw])
        if not ref.current:
            record = kept_runs.record_path(name, fw, ref.run, ROOT).relative_to(ROOT)
            warn(f'the reference run {record} was produced by an earlier version of {rel[fw]} (its code cells differ now); '
                 f'the page shows it labelled so. `make reference CHAPTER={name} FRAMEWORKS={fw}` '
                 f'runs it again.')


def merge_chapter(name, sources, colab):
    """Write the chapter's page from its executed notebooks (sources: framework -> path)."""
    executed = {fw: nbformat.read(executed_path(path), as_version=4) for fw, path in sources.items()}
    rel = {fw: path.relative_to(ROOT).as_posix() for fw, path in sources.items()}
    refs = kept_runs.load_all(name)                 # read once, for the cells, table and prose
    named = kept_runs.load_named(name)              # run -> framework -> Reference
    for nb in executed.values():
        showing.drop_install_output(nb)
    show_references(name, list(refs.values()) + [ref for by_fw in named.values()
                                                  for ref in by_fw.values()], executed, rel)
    table = showing.run_table([(frameworks.get(fw), colab(rel[fw]), path.name,
                                runs.records(executed[fw]),
                                refs.get(fw) or [by_fw[fw] for by_fw in named.values()
                                                 if fw in by_fw] or None)
                               for fw, path in sources.items()])
    page_path = ROOT / 'book' / name / f'{chapters.PAGE}.ipynb'
    page = merge.merge(executed, rel, header=table)
    values = run_numbers.chapter_quotes(name, refs)
    showing.quote_cells(page, values, page_path.relative_to(ROOT).as_posix())
    figures.localize(page, name)        # the notebooks' figure addresses -> the SVGs beside
    citations.to_book(page, where=page_path.relative_to(ROOT).as_posix(),    # -> {cite:p}, bibliography
                      prefix=f'{name}-')
    nbformat.write(page, page_path)
    return page_path


def check_mathjax(root=ROOT):
    """The book serves MathJax itself (_config.yml: mathjax_path, html_static_path .mathjax)."""
    if not (root / '.mathjax' / 'mathjax' / 'tex-mml-chtml.js').is_file():
        raise BuildError('MathJax is missing from .mathjax/mathjax: run `make setup`, which unpacks '
                         'the npm package mathjax there (it needs npm).')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--chapter', action='append', help='only this chapter (repeatable)')
    parser.add_argument('--skip-execute', action='store_true',
                        help='reuse the notebooks executed by an earlier build')
    parser.add_argument('--cell-timeout', type=int, help='seconds a cell may run')
    args = parser.parse_args(argv)
    budget, timeout = budget_and_timeout(args.cell_timeout)
    os.environ['D2LMINI_BUDGET'] = budget
    names = chapters.chapters()
    if set(args.chapter or ()) - set(names):
        raise BuildError(f'--chapter: choose from the chapters of _toc.yml: {", ".join(names)}')
    sources = {name: chapters.notebooks(name) for name in args.chapter or names}
    start = time.perf_counter()

    print(f'== execute (D2LMINI_BUDGET={budget})', flush=True)
    for fw, path in ((fw, p) for paths in sources.values() for fw, p in paths.items()):
        if not args.skip_execute:
            # the framework's kernel: the notebooks name Colab's python3 (README: "Colab")
            seconds = execute.execute(path, executed_path(path), cell_timeout=timeout,
                                      kernel=frameworks.get(fw).kernel)
            print(f'   {path.relative_to(ROOT)}: {seconds:.1f} s', flush=True)
    print('== merge', flush=True)
    colab = colab_links()
    for name, paths in sources.items():
        print(f'   {merge_chapter(name, paths, colab).relative_to(ROOT)}', flush=True)
    print('== html (jupyter-book build, warnings are errors)', flush=True)
    check_mathjax()
    for stale in (BUILD / 'html', BUILD / 'jupyter_execute'):   # no pages left from older builds
        shutil.rmtree(stale, ignore_errors=True)
    jupyter_book = os.path.join(os.path.dirname(sys.executable), 'jupyter-book')
    if subprocess.run([jupyter_book, 'build', str(ROOT), '--all', '-W', '--builder', 'html'], cwd=ROOT).returncode:
        raise BuildError('jupyter-book build failed; see above.')
    print(f'== done in {time.perf_counter() - start:.0f} s: open {(BUILD / "html" / "index.html").relative_to(ROOT)}')


if __name__ == '__main__':
    try:
        main()
    except (BuildError, chapters.ChapterError, execute.ExecutionError, merge.MergeError,
            figures.FigureError, citations.CitationError, kept_runs.ReferenceRunError) as error:
        sys.exit(f'\nbuild_book: {error}')
