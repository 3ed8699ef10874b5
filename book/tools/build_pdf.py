"""Build one PDF of the book per framework: `python -m book.tools.build_pdf` (`make pdf`).

1. The book as one HTML page: Jupyter Book's `singlehtml` builder renders the pages of the last
   `make book` (which runs first when there are none) into _build/singlehtml, warnings as errors.
2. For every framework, Debian's Chromium (driven by Playwright) opens that page with
   `?framework=<id>`, so every tab set shows that framework's code and outputs; the other
   frameworks' tab labels are hidden for print; MathJax (served from _static) finishes typesetting;
   then Chromium prints the page to _build/pdf/<framework>.pdf, with a bookmark per heading
   (Chromium's own document outline) and the framework in the title, the first page and the
   running header. Links that lead to the local server the printer used are pointed at
   public places first: an anchor of the book itself, or the file in the repository on GitHub.

Why not `jupyter-book build --builder pdfhtml`: it prints the same singlehtml page, but through
pyppeteer, which downloads its own Chromium, and it knows nothing of framework tabs.
"""
import argparse
import functools
import http.server
import pathlib
import shutil
import subprocess
import sys
import threading
import time

from book.tools import build_book, chapters
from d2lmini.frameworks import BY_ID, IDS

ROOT = build_book.ROOT
SINGLE = build_book.BUILD / 'singlehtml'
PDF = build_book.BUILD / 'pdf'
SINGLE_PAGE = 'book.html'
CHROMIUM = '/usr/bin/chromium'
CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-background-networking',
                 '--disable-component-update', '--disable-sync', '--no-first-run']

# Print only the chosen framework: its tab labels go, the theme's navigation goes, and code
# and outputs wrap instead of being cut at the page edge.
PRINT_CSS = '''
@page { size: A4; margin: 14mm 12mm 14mm 12mm; }
html { font-size: 13px !important; }
.bd-article { padding: 0 !important; }
.bd-content { margin-left: 0 !important; }
table { font-size: 0.85rem; }
table td, table th { padding: 0.2rem 0.35rem !important; }
h1, h2, h3, h4 { break-inside: avoid; break-after: avoid; }
/* Space above a heading as padding, not margin: when a heading's top margin ends one page and
   its text starts the next, Chromium 156 writes its bookmark with the title twice. */
h2, h3, h4 { margin-top: 0 !important; padding-top: 1.6rem; }
figure, img, table, .cell_input, .framework-note { break-inside: avoid; }
/* Every document of the book after the first starts on a new sheet: Sphinx's singlehtml puts
   each one in a <section> right after an empty <span id="document-...">, and demotes its title
   to an <h2>. */
.toctree-wrapper > span[id^="document-"] + section { break-before: page; }
.sd-tab-set.framework-tabs > label.sd-tab-label { display: none !important; }
.sd-tab-set.framework-tabs > input:checked + label + .sd-tab-content { display: block !important; }
.sd-tab-set.framework-tabs.full-width { width: 100% !important; max-width: 100% !important; }
.bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-footer, .bd-footer-content,
.header-article, .prev-next-area, .bd-header-article, #pst-back-to-top, .theme-switch-button,
.headerlink, .copybtn, .search-button-field, details.answer > summary { display: none !important; }
.bd-main .bd-content .bd-article-container { max-width: 100% !important; }
.bd-container, .bd-container__inner, .bd-page-width { max-width: 100% !important; }
/* A code cell and its output on one page where they fit; Chromium still breaks a cell taller
   than the space a page has. */
div.cell { break-inside: avoid; }
/* A figure (a paragraph holding only an image) with its caption below it, and small enough
   that moving it to the next page leaves no half-empty page behind. */
p:has(> img:only-child) { break-after: avoid; margin-bottom: 0.4rem; }
p > img:only-child { width: auto; max-width: 100%; }
img.print-figure-wide { max-height: 72mm; }
img.print-figure-tall { max-height: 150mm; }
div.highlight pre, div.cell_output pre, .output pre { white-space: pre-wrap !important;
  overflow-wrap: anywhere; overflow: visible !important; }
/* One block per source line (see HANG_LINES_JS): a wrapped line continues indented. */
pre .print-line { display: block; min-height: 1lh; }
.print-edition { margin: 0.6rem 0 1.5rem 0; padding-bottom: 0.8rem; border-bottom: 1px solid #999;
  text-align: center; }
.print-edition .print-edition-framework { font-size: 1.8rem; font-weight: 600; margin: 0 0 0.6rem 0; }
.print-edition p { margin: 0.2rem 0; }
'''

# Wrapped code lines keep their indentation: each line of a <pre> becomes a block of its own
# with a hanging indent of its leading spaces plus two, so a continuation starts right of the
# line's own indentation. A Range clones each line with its syntax-highlighting spans.
HANG_LINES_JS = '''() => {
  for (const pre of document.querySelectorAll('div.highlight pre, div.cell_output pre')) {
    const nodes = [], walker = document.createTreeWalker(pre, NodeFilter.SHOW_TEXT);
    let text = '';
    while (walker.nextNode()) { nodes.push([walker.currentNode, text.length]); text += walker.currentNode.data; }
    if (!nodes.length) continue;
    const at = (offset) => {
      let i = nodes.length - 1;
      while (i > 0 && nodes[i][1] > offset) i--;
      return [nodes[i][0], Math.min(offset - nodes[i][1], nodes[i][0].data.length)];
    };
    const lines = text.replace(/\\n$/, '').split('\\n'), blocks = [];
    let start = 0;
    for (const line of lines) {
      const range = document.createRange();
      range.setStart(...at(start));
      range.setEnd(...at(start + line.length));
      const block = document.createElement('span');
      const hang = line.length - line.trimStart().length + 2;
      block.className = 'print-line';
      block.style.paddingLeft = `${hang}ch`;
      block.style.textIndent = `-${hang}ch`;
      block.append(range.cloneContents());
      blocks.push(block);
      start += line.length + 1;
    }
    pre.replaceChildren(...blocks);
  }
}'''

# Every link must lead somewhere for a reader of the PDF, not to the local server that served
# the page to the printer: an anchor of this page becomes a link inside the PDF, a file of the
# book (Sphinx's _downloads/<hash>/<name>) its page in the repository, and a link with no
# public place (none is visible in print today) plain text. Returns what it could not place.
PUBLIC_LINKS_JS = '''(files) => {
  const unplaced = [];
  for (const a of Array.from(document.querySelectorAll('a[href]'))) {
    const url = new URL(a.href, document.baseURI);
    if (url.origin !== window.location.origin) continue;
    const id = decodeURIComponent(url.hash.slice(1));
    const name = decodeURIComponent(url.pathname.split('/').pop());
    if (id && document.getElementById(id)) {
      a.setAttribute('href', '#' + id);
    } else if (url.pathname.includes('/_downloads/') && files[name]) {
      a.setAttribute('href', files[name]);
    } else {
      if (a.checkVisibility()) unplaced.push(url.pathname + url.hash);
      a.replaceWith(...a.childNodes);
    }
  }
  return unplaced;
}'''

# The framework on the first page, under the title that the theme prints above the book
# (#jb-print-docs-body), and in the document title (Chromium's PDF Title, and the running
# header's `title`).
EDITION_JS = '''([book, label, others, repository]) => {
  document.title = `${book} (${label})`;
  const edition = document.createElement('div');
  edition.className = 'print-edition';
  const line = (cls, text) => {
    const p = document.createElement('p');
    if (cls) p.className = cls;
    p.textContent = text;
    edition.append(p);
    return p;
  };
  line('print-edition-framework', `${label} edition`);
  line('', `This PDF shows the code of every chapter in ${label}, with its outputs. The same book `
       + `exists as a PDF for ${others}, and as web pages that show all the frameworks side by side, `
       + 'one tab each.');
  const source = line('', 'Notebooks and sources: ');
  const a = document.createElement('a');
  a.href = repository;
  a.textContent = repository.replace(/^https:\\/\\//, '');
  source.append(a);
  const title = document.querySelector('#jb-print-docs-body h1');
  if (title) title.after(edition);
  else document.querySelector('article h1').before(edition);
}'''

# A wide figure may shrink to 72 mm of height (a quarter of the page), so that moving it to
# the next page leaves little empty; a tall one keeps more, or its labels would get too small.
FIGURES_JS = '''() => document.querySelectorAll('p > img:only-child').forEach((img) =>
  img.classList.add(img.naturalHeight > img.naturalWidth ? 'print-figure-tall' : 'print-figure-wide'))'''

# Worked answers are folded on the web page (book/_ext/answers.py); on paper they are open.
OPEN_ANSWERS_JS = '''() => document.querySelectorAll('details.answer').forEach((d) => { d.open = true; })'''

HEADER = ('<div style="font-size:8px;width:100%;margin:0 12mm;color:#777;text-align:right;">'
          '<span class="title"></span></div>')
FOOTER = ('<div style="font-size:8px;width:100%;text-align:center;">'
          '<span class="pageNumber"></span> / <span class="totalPages"></span></div>')


class PdfError(Exception):
    pass


def _say(message):
    print(message, flush=True)


def build_singlehtml():
    pages = [ROOT / 'book' / name / f'{chapters.PAGE}.ipynb' for name in chapters.chapters()]
    if not all(page.is_file() for page in pages):
        _say('== no merged chapter pages yet: building the book first (book.tools.build_book)')
        build_book.main([])
    if SINGLE.exists():
        shutil.rmtree(SINGLE)
    jupyter_book = pathlib.Path(sys.executable).with_name('jupyter-book')
    command = [str(jupyter_book) if jupyter_book.exists() else 'jupyter-book',
               'build', str(ROOT), '--all', '-W', '--builder', 'singlehtml']
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True)
    if result.returncode:
        raise PdfError(f'jupyter-book build --builder singlehtml failed (exit code {result.returncode}):\n'
                       + result.stdout[-3000:] + result.stderr[-3000:])
    written = SINGLE / root_page()
    if not written.is_file():
        raise PdfError(f'{written} was not written')
    # Sphinx's singlehtml writes the page at the root document's path (book/intro.html) but with
    # links relative to the output folder (_static/, _images/): a copy at the top level works.
    shutil.copy(written, SINGLE / SINGLE_PAGE)


def root_page():
    """The singlehtml page: the book's root document (index.html only redirects to it)."""
    import yaml
    root = yaml.safe_load((ROOT / '_toc.yml').read_text())['root']
    return pathlib.Path(root).with_suffix('.html').as_posix()


def book_facts(root=ROOT):
    """(the book's title, its repository's address, a function from a file's path to its page
    on GitHub) from _config.yml."""
    import yaml
    config = yaml.safe_load((root / '_config.yml').read_text())
    owner, repo, _, _ = chapters.github(root)
    return config.get('title', ''), f'https://github.com/{owner}/{repo}', build_book.github_links(root)


def public_files(github, root=ROOT):
    """The files the book offers for download (the chapters' notebooks), by name: their pages
    on GitHub."""
    files = {}
    for name in chapters.chapters(root):
        for path in chapters.notebooks(name, root).values():
            files[path.name] = github(path.relative_to(root).as_posix())
    return files


def _others(frameworks):
    labels = [BY_ID[fw].label for fw in frameworks]
    return ', '.join(labels[:-1]) + ' and ' + labels[-1] if len(labels) > 1 else ''.join(labels)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def print_pdfs(frameworks, timeout_ms=120_000):
    from playwright.sync_api import sync_playwright

    if not pathlib.Path(CHROMIUM).exists():
        raise PdfError(f'{CHROMIUM} not found: install Debian\'s chromium (`make setup` does, as root).')
    PDF.mkdir(parents=True, exist_ok=True)
    httpd = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(_Quiet, directory=str(SINGLE)))
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    server = f'http://127.0.0.1:{httpd.server_port}'
    outside = set()
    title, repository, github = book_facts()
    files = public_files(github)

    def route(r):
        if r.request.url.startswith(server):
            r.continue_()
        else:                                   # the book must not need the internet
            outside.add(r.request.url)
            r.abort()

    written = []
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for fw in frameworks:
                start = time.perf_counter()
                context = browser.new_context(viewport={'width': 1100, 'height': 1400})
                context.route('**/*', route)
                page = context.new_page()
                page.goto(f'{server}/{SINGLE_PAGE}?framework={fw}', wait_until='load', timeout=timeout_ms)
                page.add_style_tag(content=PRINT_CSS)
                unplaced = page.evaluate(PUBLIC_LINKS_JS, files)
                if unplaced:
                    _say(f'   {fw}: links with no public place, printed as text: {", ".join(unplaced)}')
                page.evaluate(EDITION_JS, [title, BY_ID[fw].label, _others([i for i in IDS if i != fw]),
                                           repository])
                page.evaluate(HANG_LINES_JS)
                page.evaluate(FIGURES_JS)
                page.evaluate(OPEN_ANSWERS_JS)
                page.wait_for_function('() => window.MathJax && MathJax.startup && MathJax.startup.promise',
                                       timeout=timeout_ms)
                page.evaluate('() => MathJax.startup.promise')
                chosen = page.evaluate('''() => Array.from(document.querySelectorAll(
                    '.sd-tab-set.framework-tabs > input:checked + label')).map((l) => l.dataset.syncId)''')
                if not chosen or set(chosen) != {fw}:
                    raise PdfError(f'{fw}: the tab sets show {sorted(set(chosen))}, not only {fw}')
                path = PDF / f'{fw}.pdf'
                # outline: Chromium's bookmarks from the headings (it needs the tagged PDF)
                page.pdf(path=str(path), print_background=True, prefer_css_page_size=True,
                         display_header_footer=True, header_template=HEADER, footer_template=FOOTER,
                         tagged=True, outline=True)
                context.close()
                written.append(path)
                _say(f'   {path.relative_to(ROOT)}: {path.stat().st_size / 1e6:.1f} MB, '
                     f'{time.perf_counter() - start:.1f} s')
            browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
    if outside:
        raise PdfError('the book asked for outside addresses (blocked): ' + ', '.join(sorted(outside)))
    return written


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--framework', action='append', choices=IDS,
                        help='only this framework (repeatable; default: all)')
    args = parser.parse_args(argv)
    frameworks = args.framework or list(IDS)
    start = time.perf_counter()
    _say('== 1/2 singlehtml (jupyter-book build --builder singlehtml, warnings are errors)')
    build_singlehtml()
    _say(f'== 2/2 print with {CHROMIUM}')
    print_pdfs(frameworks)
    _say(f'== done in {time.perf_counter() - start:.1f} s: {PDF.relative_to(ROOT)}/<framework>.pdf')


if __name__ == '__main__':
    try:
        main()
    except (PdfError, build_book.BuildError, chapters.ChapterError) as error:
        print(f'\nbuild_pdf: {error}', file=sys.stderr)
        sys.exit(1)
