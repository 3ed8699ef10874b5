"""Build one PDF of the book per framework: `python -m book.tools.build_pdf` (`make pdf`).

1. The book as one HTML page: Jupyter Book's `singlehtml` builder renders the pages of the last
   `make book` (which runs first when there are none) into _build/singlehtml, warnings as errors.
2. For every framework, Debian's Chromium (driven by Playwright) opens that page with
   `?framework=<id>`, so every tab set shows that framework's code and outputs; the other
   frameworks' tab labels are hidden for print; MathJax (served from _static) finishes typesetting;
   then Chromium prints the page to _build/pdf/<framework>.pdf.

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
from d2lmini.frameworks import IDS

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
figure, img, table, .cell_output img, .cell_input, .framework-note { break-inside: avoid; }
.sd-tab-set.framework-tabs > label.sd-tab-label { display: none !important; }
.sd-tab-set.framework-tabs > input:checked + label + .sd-tab-content { display: block !important; }
.bd-header, .bd-sidebar-primary, .bd-sidebar-secondary, .bd-footer, .bd-footer-content,
.header-article, .prev-next-area, .bd-header-article, #pst-back-to-top, .theme-switch-button,
.headerlink, .copybtn, .search-button-field { display: none !important; }
.bd-main .bd-content .bd-article-container { max-width: 100% !important; }
.bd-container, .bd-container__inner, .bd-page-width { max-width: 100% !important; }
div.highlight pre, div.cell_output pre, .output pre { white-space: pre-wrap !important;
  word-break: break-word; overflow: visible !important; }
'''


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
                # every page of the book but the first starts on a new sheet
                page.evaluate('''() => Array.from(document.querySelectorAll('h1')).slice(1)
                                      .forEach((h) => { h.style.breakBefore = 'page'; })''')
                page.wait_for_function('() => window.MathJax && MathJax.startup && MathJax.startup.promise',
                                       timeout=timeout_ms)
                page.evaluate('() => MathJax.startup.promise')
                chosen = page.evaluate('''() => Array.from(document.querySelectorAll(
                    '.sd-tab-set.framework-tabs > input:checked + label')).map((l) => l.dataset.syncId)''')
                if not chosen or set(chosen) != {fw}:
                    raise PdfError(f'{fw}: the tab sets show {sorted(set(chosen))}, not only {fw}')
                path = PDF / f'{fw}.pdf'
                page.pdf(path=str(path), print_background=True, prefer_css_page_size=True,
                         display_header_footer=True, header_template='<span></span>',
                         footer_template='<div style="font-size:8px;width:100%;text-align:center;">'
                                         '<span class="pageNumber"></span> / <span class="totalPages"></span></div>')
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
