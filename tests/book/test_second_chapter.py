"""Adding a chapter needs nothing but its folder and a `_toc.yml` entry.

A temporary copy of the book gets a second, tiny chapter (tests/book/fixtures/demo_chapter.py:
a two-layer perceptron on Fashion-MNIST, four notebooks, each run by its framework's kernel
under the smoke budget) and a `_toc.yml` listing it in place of the real chapters (whose
execution takes minutes). The real build tool builds the copy; then the site and prose tests
run on it, and the checks below look at the new chapter's page, tabs and run table. The
chapter has made-up reference runs in PyTorch (current) and JAX (of older code), so the page
shows them in place of those frameworks' smoke runs.
"""
import os
import shutil
import subprocess
import sys

import yaml
from bs4 import BeautifulSoup

from book.tools import chapters
from book_helpers import ROOT
from d2lmini.frameworks import FRAMEWORKS
from fixtures import demo_chapter

NAME = 'tiny'


def copy_of_the_book(target):
    """The repository's top-level files, book/ without its chapters, and the book tests."""
    skip = {ROOT / 'book' / name for name in chapters.chapters()}
    for path in ROOT.iterdir():
        if path.is_file():
            shutil.copy(path, target / path.name)
    shutil.copytree(ROOT / 'book', target / 'book', ignore=lambda folder, names: [
        n for n in names if ROOT / 'book' / n in skip or n == '__pycache__'])
    for tests in ('book', 'notebooks'):
        shutil.copytree(ROOT / 'tests' / tests, target / 'tests' / tests, ignore=shutil.ignore_patterns('__pycache__'))
    shutil.copy(ROOT / 'tests' / 'conftest.py', target / 'tests' / 'conftest.py')
    (target / '.mathjax').symlink_to(ROOT / '.mathjax')      # MathJax, unpacked by `make setup`


def test_a_second_chapter_gets_its_page_tabs_and_run_table(tmp_path):
    copy_of_the_book(tmp_path)
    demo_chapter.write_chapter(tmp_path / 'book' / NAME)
    demo_chapter.write_reference(tmp_path / 'book' / NAME, 'pytorch', [2.3, 1.1, 0.7], [0.1, 0.6, 0.75])
    demo_chapter.write_reference(tmp_path / 'book' / NAME, 'jax', [2.3, 1.2, 0.8], [0.1, 0.55, 0.71],
                                 current=False)
    toc = yaml.safe_load((tmp_path / '_toc.yml').read_text())
    toc.pop('parts', None)
    toc['chapters'] = [{'file': f'book/{NAME}/index'}]
    (tmp_path / '_toc.yml').write_text(yaml.safe_dump(toc))

    env = dict(os.environ, D2LMINI_BUDGET='smoke')
    build = subprocess.run([sys.executable, '-m', 'book.tools.build_book'], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=900)
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    site = subprocess.run([sys.executable, '-m', 'pytest', '-v', 'tests/book/test_site.py',
                           'tests/notebooks/test_prose.py'], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert site.returncode == 0, site.stdout[-5000:]
    ran = [line for line in site.stdout.splitlines() if f'[{NAME}] PASSED' in line]
    assert len(ran) >= 10, site.stdout[-5000:]     # the per-chapter tests ran on the new chapter

    page = BeautifulSoup((tmp_path / '_build' / 'html' / 'book' / NAME / 'index.html').read_text(), 'html.parser')
    assert page.select_one('article h1').get_text().strip('#¶ \n') == 'Demo chapter'
    # tabs: imports, model (with PyTorch's note), training, remarks (notes of JAX and MXNet)
    sets = page.select('div.sd-tab-set.framework-tabs')
    assert len(sets) == 4
    for tab_set in sets:
        labels = tab_set.find_all('label', class_='sd-tab-label', recursive=False)
        assert [label['data-sync-id'] for label in labels] == [fw.id for fw in FRAMEWORKS]
    pytorch_model = sets[1].find(id=sets[1].find('label', attrs={'data-sync-id': 'pytorch'})['aria-controls'])
    assert 'In PyTorch a model is an nn.Module.' in ' '.join(pytorch_model.get_text().split())
    assert 'class MLP' in pytorch_model.get_text()
    # the figure, referenced relative to the chapter's folder, is on the page
    assert any(img['src'].endswith(f'{NAME}.svg') for img in page.select('article img'))
    # the run table: the reference runs of PyTorch and JAX, smoke runs on the CPU for the others
    rows = page.select('table.framework-run-table tbody tr')
    assert [row.find('td').get_text().strip() for row in rows] == [fw.label for fw in FRAMEWORKS]
    shown = {fw.id: ' '.join(row.find_all('td')[2].get_text().split()) for fw, row in zip(FRAMEWORKS, rows)}
    for fw in ('tensorflow', 'mxnet'):
        assert 'smoke budget on cpu' in shown[fw]
    assert shown['pytorch'].startswith('reference run: full budget, 3 epochs on CPU')
    assert shown['jax'].endswith('(produced by an earlier version of this code)')
    assert page.select_one('.framework-smoke-warning') is not None
    assert 'JAX' in page.select_one('.framework-stale-warning').get_text()
    assert f'the reference run book/{NAME}/reference/jax.json was produced by an earlier' in build.stdout
    assert 'reference/pytorch.json' not in build.stdout
    # the prose quotes the PyTorch run, and the table has both
    text = ' '.join(page.select_one('article').get_text().split())
    assert 'The PyTorch reference run reached a validation accuracy of 0.750 in 3 epochs.' in text
    table, = [t for t in page.select('article table') if t.select_one('thead th').get_text() == 'framework']
    rows = [' '.join(r.get_text().split()) for r in table.select('tbody tr')]
    assert rows[0].startswith('PyTorch 3 0.700 0.700 0.750') and rows[2].startswith('JAX 3 0.800')
    assert rows[1] == 'TensorFlow ' + ' '.join(['n/a'] * 7)
