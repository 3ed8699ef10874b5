"""The PDFs of `make pdf`: one per framework, with that framework's code only, figures and typeset
math. The first pages are rendered with pdftoppm into _build/pdf/pages/ for a person to look at.

Needs `make pdf` first (the Makefile's test-book runs it); fails, not skips, without it.
"""
import re
import shutil
import subprocess

import pytest
from PIL import Image

from book.tools import build_book, chapters
from book_helpers import ROOT, chapter_names
from d2lmini.frameworks import BY_ID, IDS

PDF = ROOT / '_build' / 'pdf'
PAGES = PDF / 'pages'
FRAMEWORKS = list(IDS)
# A line that each framework's notebook has and no other: its d2lmini import.
IMPORT = {fw_id: f'from d2lmini import {fw.module} as d2l' for fw_id, fw in BY_ID.items()}
CHAPTER_TITLE = 'Multi-Branch Networks (GoogLeNet)'


def pdf_text(path):
    for tool in ('pdftotext', 'pdftoppm'):
        if not shutil.which(tool):
            pytest.fail(f'{tool} not found: install poppler-utils (`make setup` does, as root).', pytrace=False)
    if not path.is_file():
        pytest.fail(f'{path} is missing: run `make pdf` first.', pytrace=False)
    return subprocess.run(['pdftotext', '-layout', str(path), '-'], capture_output=True, text=True,
                          check=True).stdout


@pytest.mark.parametrize('fw', FRAMEWORKS)
def test_pdf_holds_the_chapter_with_only_its_frameworks_code(fw):
    text = pdf_text(PDF / f'{fw}.pdf')
    flat = re.sub(r'\s+', ' ', text)
    assert CHAPTER_TITLE in flat
    assert IMPORT[fw] in flat
    others = [other for other in FRAMEWORKS if other != fw and IMPORT[other] in flat]
    assert others == [], f'{fw}.pdf shows the code of {others}'
    # the figures (their SVG text is printed as text), the bibliography, the exercises
    for expected in ('Figure 1:', 'Figure 2:', 'channel concatenation', 'References', 'Going deeper with convolutions',
                     'Exercises'):
        assert expected in flat, f'{fw}.pdf lacks {expected!r}'
    # math typeset by MathJax: its glyphs are there (the dot of 25 \cdot C_in, the table's products),
    # and no TeX delimiters or commands are left in the text
    assert '⋅' in flat and '= 22,118,400' in flat
    assert not re.search(r'\\[(\[]|\\(lfloor|cdot|ln|times)\b', text), 'raw TeX in the PDF'


@pytest.mark.parametrize('fw', FRAMEWORKS)
def test_first_pages_render(fw):
    pdf_text(PDF / f'{fw}.pdf')
    PAGES.mkdir(parents=True, exist_ok=True)
    for old in PAGES.glob(f'{fw}-*.png'):
        old.unlink()
    subprocess.run(['pdftoppm', '-png', '-r', '60', '-f', '1', '-l', '6', str(PDF / f'{fw}.pdf'),
                    str(PAGES / fw)], check=True)
    pages = sorted(PAGES.glob(f'{fw}-*.png'))
    assert len(pages) == 6
    for page in pages:
        image = Image.open(page).convert('L')
        assert image.width < image.height                      # A4 portrait
        histogram = image.histogram()
        ink = sum(histogram[:200]) / (image.width * image.height)
        assert 0.01 < ink < 0.5, f'{page.name}: {ink:.1%} of the page is ink (blank or black page?)'
    # The chapter starts on one of these pages.
    text = subprocess.run(['pdftotext', '-f', '1', '-l', '6', str(PDF / f'{fw}.pdf'), '-'],
                          capture_output=True, text=True, check=True).stdout
    assert CHAPTER_TITLE in re.sub(r'\s+', ' ', text)


def pdf_links(path):
    """The addresses of the PDF's links, from poppler's `pdfinfo -url` (page, type, URL rows)."""
    pdf_text(path)
    rows = subprocess.run(['pdfinfo', '-url', str(path)], capture_output=True, text=True, check=True).stdout
    return [line.split()[-1] for line in rows.splitlines()[1:] if line.strip()]


@pytest.mark.parametrize('fw', FRAMEWORKS)
def test_links_lead_to_public_places(fw):
    links = pdf_links(PDF / f'{fw}.pdf')
    local = [url for url in links if re.match(r'https?://(127\.|localhost|\[::1\]|0\.0\.0\.0)', url)]
    assert local == [], f'{fw}.pdf links to the server that printed it: {local}'
    assert all(url.startswith('https://') for url in links), links
    # the download links of the run table: each notebook's page in the repository
    github = build_book.github_links()
    for chapter in chapter_names():
        for path in chapters.notebooks(chapter).values():
            assert github(path.relative_to(ROOT).as_posix()) in links, f'{fw}.pdf does not link {path.name}'


@pytest.mark.parametrize('fw', FRAMEWORKS)
def test_pdf_names_its_framework_and_leaves_out_screen_instructions(fw):
    label = BY_ID[fw].label
    info = subprocess.run(['pdfinfo', str(PDF / f'{fw}.pdf')], capture_output=True, text=True, check=True).stdout
    title = re.search(r'^Title:\s*(.*)$', info, re.MULTILINE)
    assert title and label in title.group(1), f'{fw}.pdf: metadata title {title and title.group(1)!r}'
    first = subprocess.run(['pdftotext', '-f', '1', '-l', '1', str(PDF / f'{fw}.pdf'), '-'],
                           capture_output=True, text=True, check=True).stdout
    assert f'{label} edition' in first
    # the intro's section on clicking tabs and ?framework= is for the web pages only
    flat = re.sub(r'\s+', ' ', pdf_text(PDF / f'{fw}.pdf'))
    assert '?framework=' not in flat and 'one click switches every framework' not in flat


def outline_titles(data):
    """The bookmark titles of a PDF as Chromium writes it (no PDF library in the environment):
    the document catalog names an /Outlines dictionary, each item has a /Title, a literal
    (escaped) or hex (UTF-16) string. The document's own /Title is among them."""
    if not re.search(rb'/Outlines \d+ 0 R', data):
        return []
    titles = []
    for literal, hexa in re.findall(rb'/Title\s*(?:\(((?:\\.|[^\\)])*)\)|<([0-9A-Fa-f]+)>)', data):
        if hexa:
            titles.append(bytes.fromhex(hexa.decode()).decode('utf-16'))
        else:
            titles.append(re.sub(rb'\\(.)', rb'\1', literal).decode('latin-1'))
    return titles


@pytest.mark.parametrize('fw', FRAMEWORKS)
def test_pdf_has_bookmarks_for_its_headings(fw):
    pdf_text(PDF / f'{fw}.pdf')
    titles = outline_titles((PDF / f'{fw}.pdf').read_bytes())
    assert titles, f'{fw}.pdf has no outline (bookmarks)'
    for heading in (CHAPTER_TITLE, 'Inception Blocks', 'Exercises', 'References'):
        assert heading in titles, f'{fw}.pdf: no bookmark {heading!r} in {titles}'
    doubled = [t for t in titles if len(t) % 2 == 0 and t[:len(t) // 2] == t[len(t) // 2:]]
    assert doubled == [], f'{fw}.pdf: bookmarks with their title twice: {doubled}'
