"""Figures as every front end shows them (figures.py): notebooks link a PNG by its address in the
repository (Colab and GitHub show neither attachments nor SVG), rendered from the figure's SVG
and marked with its hash; the book shows the SVG beside the page, with numbered captions; and
the built page's citations and bibliography."""
import re

import nbformat
import pytest

from book.tools import chapters, figures
from book_helpers import HTML, chapter_names, require_built_book

SVG = '<svg xmlns="http://www.w3.org/2000/svg" width="30" height="20"><rect width="30" height="10" fill="red"/></svg>'
KEYS = ['szegedy2015going', 'lin2013network', 'simonyan2014very', 'ioffe2015batch', 'szegedy2016rethinking',
        'szegedy2017inception', 'krizhevsky2012imagenet', 'xiao2017fashion']
ADDRESS = 'https://raw.githubusercontent.com/someone/fork/dev/book/demo/figures/{}.png'


def book(tmp_path, *names):
    """A repository root with _config.yml and book/demo/figures/<name>.svg for each name."""
    (tmp_path / '_config.yml').write_text('repository:\n  url: https://github.com/someone/fork\n'
                                          '  branch: dev\n')
    folder = tmp_path / 'book' / 'demo' / 'figures'
    folder.mkdir(parents=True)
    for name in names:
        (folder / f'{name}.svg').write_text(SVG)
    return tmp_path


def notebook(path, *sources, attachments=None):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(s) for s in sources]
    nb.cells.append(nbformat.v4.new_code_cell("print('![x](figures/a.svg)')"))
    if attachments:
        nb.cells[0]['attachments'] = attachments
    nbformat.write(nb, str(path))
    return path


def test_link_gives_every_figure_its_address_and_drops_attachments(tmp_path):
    root = book(tmp_path, 'a', 'b')
    path = notebook(root / 'book' / 'demo' / 'demo_jax.ipynb',
                    'Text ![A figure](attachment:a.svg) and <img src="figures/b.svg">',
                    '![Again](figures/a.png) ![Elsewhere](https://example.org/x.png)',
                    attachments={'a.svg': {'image/svg+xml': 'PHN2Zz48L3N2Zz4='}})
    assert figures.link(path, root)
    nb = nbformat.read(str(path), as_version=4)
    assert nb.cells[0].source == (f'Text ![A figure]({ADDRESS.format("a")}) and '
                                  f'<img src="{ADDRESS.format("b")}">')
    assert nb.cells[1].source == (f'![Again]({ADDRESS.format("a")}) '
                                  '![Elsewhere](https://example.org/x.png)')
    assert 'attachments' not in nb.cells[0]
    assert nb.cells[2].source == "print('![x](figures/a.svg)')"        # code is left alone
    assert not figures.link(path, root), 'a second run changes nothing'


def test_the_book_shows_the_svg_beside_the_page(tmp_path):
    root = book(tmp_path, 'a')
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(f'![A]({ADDRESS.format("a")}) ![B](https://example.org/b.png)')]
    figures.localize(nb, 'demo', root)
    assert nb.cells[0].source == '![A](figures/a.svg) ![B](https://example.org/b.png)'
    nb.cells = [nbformat.v4.new_markdown_cell(f'![C]({ADDRESS.format("c")})')]
    with pytest.raises(figures.FigureError, match='figure c, but there is no book/demo/figures/c.svg'):
        figures.localize(nb, 'demo', root)


def test_render_writes_a_png_at_twice_the_size_marked_with_its_svgs_hash(tmp_path):
    from PIL import Image
    root = book(tmp_path, 'a')
    svg = root / 'book' / 'demo' / 'figures' / 'a.svg'
    png = figures.render(svg)
    with Image.open(png) as image:
        assert image.size == (60, 40)
        assert image.convert('RGB').getpixel((30, 5)) == (255, 0, 0)        # the red half
        assert image.convert('RGB').getpixel((30, 35)) == (255, 255, 255)
    assert figures.png_source_hash(png) == figures.source_hash(svg)
    assert figures.render_chapter(root / 'book' / 'demo') == [], 'current PNGs are left alone'


def test_problems_name_what_a_front_end_would_not_show(tmp_path):
    root = book(tmp_path, 'a', 'b')
    folder = root / 'book' / 'demo'
    for name in ('a', 'b'):
        figures.render(folder / 'figures' / f'{name}.svg')
    path = notebook(folder / 'demo_jax.ipynb', f'![A]({ADDRESS.format("a")})')
    assert figures.problems(path, root) == []
    (folder / 'figures' / 'a.svg').write_text(SVG.replace('red', 'blue'))       # redrawn
    notebook(path, f'![A]({ADDRESS.format("a")})', '![B](figures/b.svg)',
             attachments={'b.png': {'image/png': 'iVBORw0KGgo='}})
    found = '\n'.join(figures.problems(path, root))
    assert 'cell 0: carries attachments' in found
    assert 'figures/a.png was not rendered from the current a.svg' in found
    assert 'cell 1: the image figures/b.svg is not linked by its address' in found


@pytest.mark.parametrize('chapter', chapters.chapters())
def test_the_chapters_figures_show_in_colab_on_github_and_in_the_book(chapter):
    paths = chapters.notebooks(chapter).values()
    found = [problem for path in paths for problem in figures.problems(path)]
    assert not found, '\n'.join(found)
    linked = {m.group(2) for path in paths for c in nbformat.read(str(path), as_version=4).cells
              if c.cell_type == 'markdown' for m in figures.IMAGE.finditer(c.source)}
    # every figure drawn for the chapter is shown (a chapter may have none)
    drawn = {path.stem for path in (chapters.ROOT / 'book' / chapter / 'figures').glob('*.svg')}
    assert {name.rsplit('/', 1)[-1].removesuffix('.png') for name in linked} == drawn, chapter


@pytest.mark.parametrize('chapter', chapter_names())
def test_page_shows_the_figures_captions_citations_and_bibliography(chapter):
    from bs4 import BeautifulSoup
    require_built_book()
    page = BeautifulSoup((HTML / 'book' / chapter / f'{chapters.PAGE}.html').read_text(), 'html.parser')
    article = page.select_one('article')
    text = re.sub(r'\s+', ' ', article.get_text())
    # figures: the SVGs of the notebooks' figures, copied by Sphinx, each with its caption
    linked = sorted({m.group(2).rsplit('/', 1)[-1].removesuffix('.png')
                     for c in nbformat.read(str(chapters.notebooks(chapter)['pytorch']), as_version=4).cells
                     if c.cell_type == 'markdown' for m in figures.IMAGE.finditer(c.source)})
    shown = [img['src'].rsplit('/', 1)[-1] for img in article.select('img')]
    assert all(f'{name}.svg' in shown for name in linked)
    assert 'raw.githubusercontent.com' not in str(article), 'the book needs no network for figures'
    for n in range(1, len(linked) + 1):
        assert f'Figure {n}:' in text
    # citations: author-year links into the bibliography, which lists every cited source once
    bibliography = article.select_one('.citation-list') or article.select_one('.bibliography')
    assert bibliography is not None, 'no bibliography on the page'
    entries = bibliography.select('.citation')
    if chapter == 'googlenet':
        assert len(entries) == len(KEYS)
        assert '[Szegedy et al., 2015]' in text
    targets = {a['href'].split('#')[-1] for a in article.select('span.bibtex-citation a')}
    ids = {e.get('id') for e in entries}
    assert targets == ids, 'every citation links an entry of the bibliography, and every entry is cited'
    assert '{cite' not in text
    # one style: the list labels its entries as the text cites them, not 'SLJ+15'
    labels = [re.sub(r'\s+', ' ', e.select_one('.label').get_text()).strip(' []') for e in entries]
    assert labels and all(re.fullmatch(r'[A-Z][^,]*, \d{4}', label) for label in labels), labels
    # in the order of the notebooks' written list
    assert labels == sorted(labels, key=str.lower)


def test_link_leaves_other_sites_alone_and_names_a_missing_source(tmp_path):
    root = book(tmp_path, 'a')
    path = notebook(root / 'book' / 'demo' / 'demo_jax.ipynb',
                    '![Elsewhere](https://d2l.ai/_images/figures/lenet.svg) ![A](figures/a.svg)')
    figures.link(path, root)
    assert nbformat.read(str(path), as_version=4).cells[0].source == (
        f'![Elsewhere](https://d2l.ai/_images/figures/lenet.svg) ![A]({ADDRESS.format("a")})')
    notebook(path, '![Typo](figures/incepton.svg)')
    with pytest.raises(figures.FigureError, match=r'figures/incepton.svg has no source .*incepton.svg'):
        figures.link(path, root)
    with pytest.raises(figures.FigureError, match='has no figures folder'):
        figures.render_chapter(root / 'book' / 'nowhere')
