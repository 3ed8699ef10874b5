"""The PDFs of `make pdf`: one per framework, with that framework's code only, figures and typeset
math. The first pages are rendered with pdftoppm into _build/pdf/pages/ for a person to look at.

Needs `make pdf` first (the Makefile's test-book runs it); fails, not skips, without it.
"""
import re
import shutil
import subprocess

import pytest
from PIL import Image

from book_helpers import ROOT
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
