"""The built HTML book, read as files: tab structure, run table, links and images.

Needs the book built first (`make book`); fails, not skips, without it.
"""
import posixpath
import re
import urllib.parse

import nbformat
import pytest
import yaml
from bs4 import BeautifulSoup

from book.tools import chapters, kept_runs, merge, run_numbers, runs, showing
from book_helpers import HTML, ROOT, chapter_names, require_built_book
from d2lmini.frameworks import FRAMEWORKS as KNOWN

CHAPTERS = chapter_names()
FRAMEWORKS = [fw.id for fw in KNOWN]


def soup(path):
    return BeautifulSoup(path.read_text(encoding='utf-8'), 'html.parser')


def chapter_page(chapter):
    require_built_book()
    path = HTML / 'book' / chapter / f'{chapters.PAGE}.html'
    assert path.is_file(), f'{path} is missing: rebuild the book'
    return soup(path)


def executed(chapter, fw):
    path = ROOT / '_build' / 'executed' / 'book' / chapter / f'{chapter}_{fw}.ipynb'
    assert path.is_file(), f'{path} is missing: rebuild the book'
    return nbformat.read(str(path), as_version=4)


def squash(text):
    return re.sub(r'\s+', ' ', text).strip()


def tab_sets(page):
    return page.select('div.sd-tab-set.framework-tabs')


def tabs_of(tab_set):
    """framework -> the tab's content element, from the sphinx-design HTML."""
    tabs = {}
    for label in tab_set.find_all('label', class_='sd-tab-label', recursive=False):
        content = tab_set.find(id=label['aria-controls'])
        tabs[label['data-sync-id']] = content
    return tabs


@pytest.mark.parametrize('chapter', CHAPTERS)
def test_every_code_cell_is_inside_a_framework_tab(chapter):
    page = chapter_page(chapter)
    cells = page.select('div.cell')
    assert cells, 'no code cells on the page'
    outside = [squash(c.get_text())[:80] for c in cells if c.find_parent(class_='sd-tab-content') is None]
    assert outside == []


@pytest.mark.parametrize('chapter', CHAPTERS)
def test_tab_sets_offer_the_four_frameworks_in_one_sync_group(chapter):
    page = chapter_page(chapter)
    sets = tab_sets(page)
    generated = nbformat.read(str(ROOT / 'book' / chapter / f'{chapters.PAGE}.ipynb'), as_version=4)
    groups = {c.metadata[merge.META_KEY]['group'] for c in generated.cells if merge.META_KEY in c.metadata}
    assert len(sets) == len(groups)
    for tab_set in sets:
        labels = tab_set.find_all('label', class_='sd-tab-label', recursive=False)
        assert [label['data-sync-id'] for label in labels] == FRAMEWORKS
        assert {label['data-sync-group'] for label in labels} == {'framework'}
        assert [squash(label.get_text()) for label in labels] == [fw.label for fw in KNOWN]


@pytest.mark.parametrize('chapter', CHAPTERS)
def test_each_tab_holds_its_frameworks_code_in_order(chapter):
    page = chapter_page(chapter)
    for fw in FRAMEWORKS:
        rendered = [cell for tab_set in tab_sets(page) for cell in tabs_of(tab_set)[fw].select('div.cell')]
        codes = [c for c in executed(chapter, fw).cells if c.cell_type == 'code']
        assert len(rendered) == len(codes), fw
        for html_cell, code in zip(rendered, codes):
            assert squash(html_cell.select_one('div.cell_input').get_text()) == squash(code.source)
            if any(o.output_type == 'display_data' and 'image/png' in o.get('data', {}) for o in code.outputs):
                assert html_cell.select_one('div.cell_output img'), f'{fw}: an image output is missing'


@pytest.mark.parametrize('chapter', CHAPTERS)
def test_notes_sit_in_their_frameworks_tab(chapter):
    page = chapter_page(chapter)
    for fw in FRAMEWORKS:
        notes = [c for c in executed(chapter, fw).cells
                 if c.cell_type == 'markdown' and merge.NOTE_TAG in merge.tags(c)]
        alone = [c for c in notes if merge.NOTEBOOK_ONLY_TAG in merge.tags(c)]
        rendered = [n for tab_set in tab_sets(page) for n in tabs_of(tab_set)[fw].select('div.framework-note')]
        assert len(rendered) == len(notes) - len(alone), fw
        for note in alone:          # for a notebook read alone: not on the page
            assert squash(note.source.strip('*'))[:40] not in squash(page.get_text())
        assert not page.select('div.framework-note:not(.sd-tab-content div.framework-note)')


@pytest.mark.parametrize('chapter', CHAPTERS)
def test_shared_headings_appear_once(chapter):
    page = chapter_page(chapter)
    headings = [squash(h.get_text()).rstrip('#').strip() for h in page.select('article h1, article h2, article h3')]
    expected = [m.group(2) for c in executed(chapter, FRAMEWORKS[0]).cells if c.cell_type == 'markdown'
                and merge.NOTE_TAG not in merge.tags(c)
                for m in re.finditer(r'^(#{1,3})\s+(.*)$', c.source, re.MULTILINE)]
    plain = lambda text: re.sub(r'[*_`$\\]', '', text)
    assert [plain(h) for h in headings] == [plain(h) for h in expected]
    assert len(page.select('article h1')) == 1


@pytest.mark.parametrize('chapter', CHAPTERS)
def test_figures_of_the_prose_are_on_the_page(chapter):
    page = chapter_page(chapter)
    images = [posixpath.basename(urllib.parse.urlparse(img['src']).path) for img in page.select('article img')]
    # the notebooks link a figure's PNG; the page shows its SVG (figures.py)
    names = [posixpath.splitext(posixpath.basename(m))[0]
             for c in executed(chapter, FRAMEWORKS[0]).cells if c.cell_type == 'markdown'
             for m in re.findall(r'!\[[^\]]*\]\(([^)\s]+)', c.source)]
    # every figure drawn for the chapter is in its prose (a chapter may have none)
    drawn = sorted(path.stem for path in (ROOT / 'book' / chapter / 'figures').glob('*.svg'))
    assert sorted(set(names)) == drawn
    for name in names:
        assert f'{name}.svg' in images


@pytest.mark.parametrize('chapter', CHAPTERS)
def test_run_table_links_colab_downloads_and_states_budget_and_device(chapter):
    page = chapter_page(chapter)
    table = page.select_one('table.framework-run-table')
    assert table is not None, 'no run-it-yourself table'
    # near the top: right after the title, before the first section heading
    title = page.select_one('article h1')
    assert title.find_next('table') is table
    first_h2 = page.select_one('article h2')
    assert first_h2 is None or table.find_next('h2') is first_h2

    config = yaml.safe_load((ROOT / '_config.yml').read_text())
    owner_repo = config['repository']['url'].removeprefix('https://github.com/').removesuffix('.git')
    branch = config['repository']['branch']
    rows = table.select('tbody tr')
    assert [squash(r.find('td').get_text()) for r in rows] == [fw.label for fw in KNOWN]
    page_dir = HTML / 'book' / chapter
    for fw, row in zip(FRAMEWORKS, rows):
        source = chapters.notebook_path(chapter, fw)
        links = {squash(a.get_text()): a['href'] for a in row.find_all('a')}
        assert links['Open in Colab'] == (f'https://colab.research.google.com/github/{owner_repo}/blob/'
                                          f'{branch}/book/{chapter}/{chapter}_{fw}.ipynb')
        download = links['Download notebook']
        assert download.endswith('/' + source.name)
        assert (page_dir / download).resolve().read_bytes() == source.read_bytes(), (
            f'the downloadable notebook is not {source.relative_to(ROOT)}: did it change after the build?')
        outputs = squash(row.find_all('td')[2].get_text())
        ref = kept_runs.load(chapter, fw)
        if ref:
            assert f'reference run: {showing.describe(ref)}' in outputs
            assert ('produced by an earlier version of this code' in outputs) is not ref.current
            continue
        named = [by_fw[fw] for by_fw in kept_runs.load_named(chapter).values() if fw in by_fw]
        if named:       # one record per named run (the worked exercises)
            assert (f'reference runs ({", ".join(r.run for r in named)}): '
                    f'{showing.describe(named[0])}') in outputs
            continue
        nb = executed(chapter, fw)
        records = runs.records(nb)
        if any('train' in merge.tags(c) for c in nb.cells):
            assert records, f'{fw}: the training cell left no run record'
        for record in records:
            assert (f"{record['budget']['name']} budget on {record['device']['name']} "
                    f"({record['budget']['reason']})") in outputs
        if not records:
            assert 'no training in this notebook' in outputs


@pytest.mark.parametrize('chapter', CHAPTERS)
def test_training_tabs_show_the_reference_runs_labelled(chapter):
    page = chapter_page(chapter)
    refs = kept_runs.load_all(chapter)
    training = [tabs_of(t) for t in tab_sets(page) if t.select('div.cell.tag_train')]
    cells = showing.train_cells(executed(chapter, FRAMEWORKS[0]), chapter)
    if not cells:
        assert training == [] and refs == {}, 'a chapter without a training cell shows no runs'
        return
    # one tab set per training cell: the chapter's one run, or each named run
    assert len(training) == len(cells), 'a tab set for each training cell'
    for run, tabs in zip(cells, training):
        check_reference_tabs(chapter, run, tabs)


def check_reference_tabs(chapter, run, tabs):
    for fw, tab in tabs.items():
        label = tab.select('.d2lmini-reference')
        ref = kept_runs.load(chapter, fw, run=run)
        if ref is None:
            assert not label, f'{fw} has no reference run, yet its tab shows a label'
            continue
        assert len(label) == 1, f'{fw}: the reference run is shown without its label'
        kind = 'current' if ref.current else 'stale'
        assert f'd2lmini-reference-{kind}' in label[0]['class']
        assert showing.describe(ref) in squash(label[0].get_text())
        text = squash(tab.get_text())
        assert '_build' not in text and 'from the checkpoint' not in text, f'{fw}: build internals'
        for out in showing.reference_outputs(ref, showing.train_cell(ref.notebook, fw, run)):
            # its start line, and its epoch lines (a display with plain text only)
            shown = out.text if out.output_type == 'stream' else (
                out.data['text/plain'] if set(out.get('data', {})) == {'text/plain'} else '')
            for line in shown.splitlines():
                assert squash(line) in text, f'{fw}: the reference run output {line!r} is missing'


@pytest.mark.parametrize('chapter', CHAPTERS)
def test_prose_quotes_the_reference_runs(chapter):
    """Every number the shared prose quotes is on the page, with the value the records give."""
    page = chapter_page(chapter)
    values = run_numbers.chapter_quotes(chapter, kept_runs.load_all(chapter))
    prose = '\n'.join(c.source for c in executed(chapter, FRAMEWORKS[0]).cells if merge.is_shared(c))
    marked = [m.group('key') for m in showing.QUOTE_SPAN.finditer(prose)]
    shown = page.select('article [data-reference]')
    assert [el['data-reference'] for el in shown] == marked, 'the page lost or gained a quoted number'
    for element in shown:
        assert element.get_text() == values[element['data-reference']], element
        assert element.find_parent('p') is not None, f'{element} is not inside a sentence'
    if '<!-- reference: table -->' in prose:
        tables = [t for t in page.select('article table')
                  if [th.get_text(strip=True) for th in t.select('thead th')][:2] == ['framework', 'epochs']]
        assert len(tables) == 1, 'the table of the reference runs is not on the page'
        cells = lambda line: [c.strip() for c in line.strip().strip('|').split('|')]
        expected = [cells(line) for i, line in enumerate(values['table'].splitlines()) if i != 1]
        assert [[c.get_text(strip=True) for c in tr.select('th, td')] for tr in tables[0].select('tr')] == expected
    text = squash(' '.join(p.get_text() for p in page.select('article p')))
    assert '{{' not in text, 'a substitution was left unrendered'


def _local_targets(html_file, page):
    for tag, attr in (('a', 'href'), ('img', 'src'), ('link', 'href'), ('script', 'src'), ('source', 'src')):
        for element in page.find_all(tag):
            value = element.get(attr)
            if not value or re.match(r'^[a-zA-Z][a-zA-Z0-9+.-]*:', value) or value.startswith('//'):
                continue
            yield value


def test_no_broken_local_links_or_images():
    require_built_book()
    ids, broken = {}, []

    def ids_of(path):
        if path not in ids:
            ids[path] = {e['id'] for e in soup(path).find_all(id=True)}
        return ids[path]

    pages = sorted(p for p in HTML.rglob('*.html') if '_static' not in p.parts)
    assert len(pages) >= 2
    for html_file in pages:
        page = soup(html_file)
        for value in _local_targets(html_file, page):
            parsed = urllib.parse.urlparse(value)
            path = urllib.parse.unquote(parsed.path)
            target = html_file if not path else (html_file.parent / path).resolve()
            if target.is_dir():
                target = target / 'index.html'
            if not target.exists():
                broken.append(f'{html_file.relative_to(HTML)}: {value}')
            elif parsed.fragment and target.suffix == '.html' and parsed.fragment not in ids_of(target):
                broken.append(f'{html_file.relative_to(HTML)}: {value} (no such anchor)')
    assert broken == []


def test_intro_explains_tabs_budgets_and_running():
    require_built_book()
    text = squash(soup(HTML / 'book' / 'intro.html').select_one('article').get_text())
    for needle in ('?framework=jax', 'make book', 'make test', 'D2LMINI_BUDGET', 'smoke', 'full', 'auto',
                   'Colab', *(fw.kernel for fw in KNOWN)):
        assert needle in text, needle


def test_toc_lists_the_intro_and_the_chapters():
    toc = yaml.safe_load((ROOT / '_toc.yml').read_text())
    assert toc['root'] == 'book/intro'
    assert CHAPTERS, '_toc.yml lists no chapter'
    for chapter in CHAPTERS:
        assert all(path.exists() for path in chapters.notebooks(chapter).values())


@pytest.mark.parametrize('chapter', CHAPTERS)
def test_worked_answers_are_folded_under_their_exercises(chapter):
    """book/_ext/answers.py: the body of each `### Answer` section sits in a closed <details>,
    code tabs and outputs included, under its `## Exercise N` section; nothing else is folded."""
    page = chapter_page(chapter)
    answered, current = {}, None
    for cell in executed(chapter, FRAMEWORKS[0]).cells:
        if cell.cell_type == 'markdown' and not merge.tags(cell):
            for level, title in re.findall(r'^(#{2,3}) (.*)$', cell.source, re.MULTILINE):
                if level == '##':
                    number = re.fullmatch(r'Exercise (\d+)', title)
                    current = int(number.group(1)) if number else None
                    if current:
                        answered[current] = False
                elif title == 'Answer' and current:
                    answered[current] = True
    assert len(page.select('details.answer')) == sum(answered.values())
    for n, has_answer in answered.items():
        section = page.find('section', id=f'exercise-{n}')
        assert section is not None, f'no section with the anchor exercise-{n}'
        folded = section.select('details.answer')
        assert len(folded) == has_answer, f'exercise {n}'
        if has_answer:
            details = folded[0]
            assert not details.has_attr('open')
            sets = details.select('div.sd-tab-set.framework-tabs')
            assert sets and all(tabs_of(s).keys() == set(FRAMEWORKS) for s in sets)
            assert details.select('div.cell_output'), f'exercise {n}: no outputs in the answer'
