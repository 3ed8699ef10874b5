"""Figures embedded in the notebooks (cell attachments) become files of the merged page, and the
built chapter page shows them with their numbered captions, its citations and its bibliography."""
import base64
import re

import nbformat
import pytest

from book.tools import attachments, chapters
from book_helpers import HTML, ROOT, chapter_names, require_built_book

SVG = b'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="10" height="10"/></svg>'
KEYS = ['szegedy2015going', 'lin2013network', 'simonyan2014very', 'ioffe2015batch', 'szegedy2016rethinking',
        'szegedy2017inception', 'krizhevsky2012imagenet', 'xiao2017fashion']


def cell_with(source, **attached):
    cell = nbformat.v4.new_markdown_cell(source)
    if attached:
        cell['attachments'] = {name: {'image/svg+xml': base64.b64encode(data).decode()}
                               for name, data in attached.items()}
    return cell


def test_attachments_become_files_and_links_point_to_them(tmp_path):
    nb = nbformat.v4.new_notebook()
    nb.cells = [cell_with('Text\n\n![A figure](attachment:a.svg)\n\n`attachment:a.svg` stays code? no: '
                          '<img src="attachment:a.svg">', **{'a.svg': SVG}),
                cell_with('![Again](attachment:a.svg)', **{'a.svg': SVG}),
                nbformat.v4.new_code_cell("print('![x](attachment:a.svg)')")]
    page = tmp_path / 'chapter.ipynb'
    nbformat.write(nb, str(page))
    assert attachments.extract_to_files(page) == ['a.svg']
    assert (tmp_path / 'chapter_attachments' / 'a.svg').read_bytes() == SVG
    out = nbformat.read(str(page), as_version=4)
    assert '![A figure](chapter_attachments/a.svg)' in out.cells[0].source
    assert '<img src="chapter_attachments/a.svg">' in out.cells[0].source
    assert out.cells[1].source == '![Again](chapter_attachments/a.svg)'
    assert 'attachments' not in out.cells[0] and 'attachments' not in out.cells[1]
    assert out.cells[2].source == "print('![x](attachment:a.svg)')"       # code is left alone


def test_missing_and_conflicting_attachments_are_reported():
    nb = nbformat.v4.new_notebook()
    nb.cells = [cell_with('![A](attachment:b.svg)', **{'a.svg': SVG})]
    with pytest.raises(attachments.AttachmentError, match=r'cell 0: links attachment:b.svg, .*it has: a.svg'):
        attachments.extract(nb, 'files')
    nb.cells = [cell_with('![A](attachment:a.svg)', **{'a.svg': SVG}),
                cell_with('![B](attachment:a.svg)', **{'a.svg': SVG.replace(b'10', b'20')})]
    with pytest.raises(attachments.AttachmentError, match="different images named 'a.svg'"):
        attachments.extract(nb, 'files')


def test_embed_refreshes_attachments_from_the_figures_folder(tmp_path):
    (tmp_path / 'figures').mkdir()
    (tmp_path / 'figures' / 'a.svg').write_bytes(SVG)
    nb = nbformat.v4.new_notebook()
    nb.cells = [cell_with('![A](attachment:a.svg)', **{'a.svg': b'<svg>old</svg>'})]
    path = tmp_path / 'n.ipynb'
    nbformat.write(nb, str(path))
    assert attachments.embed(path) == ['a.svg']
    data = nbformat.read(str(path), as_version=4).cells[0].attachments['a.svg']['image/svg+xml']
    assert base64.b64decode(''.join(data)) == SVG


@pytest.mark.parametrize('chapter', chapter_names())
def test_page_shows_embedded_figures_captions_citations_and_bibliography(chapter):
    from bs4 import BeautifulSoup
    require_built_book()
    page = BeautifulSoup((HTML / 'book' / chapter / f'{chapters.PAGE}.html').read_text(), 'html.parser')
    article = page.select_one('article')
    text = re.sub(r'\s+', ' ', article.get_text())
    # figures: files written from the attachments, copied by Sphinx, each with its caption
    generated = sorted(p.name for p in (ROOT / 'book' / chapter / f'{chapters.PAGE}_attachments').iterdir())
    shown = [img['src'].rsplit('/', 1)[-1] for img in article.select('img')]
    assert generated and all(name in shown for name in generated)
    assert 'attachment:' not in str(article)
    for n in range(1, len(generated) + 1):
        assert f'Figure {n}:' in text
    # citations: author-year links into the bibliography, which lists every cited source once
    bibliography = article.select_one('.citation-list') or article.select_one('.bibliography')
    assert bibliography is not None, 'no bibliography on the page'
    entries = bibliography.select('.citation')
    if chapter == 'googlenet':
        assert len(entries) == len(KEYS)
    targets = {a['href'].split('#')[-1] for a in article.select('span.bibtex-citation a')}
    ids = {e.get('id') for e in entries}
    assert targets == ids, 'every citation links an entry of the bibliography, and every entry is cited'
    assert '[Szegedy et al., 2015]' in text and '{cite' not in text
