"""d2l.load_chapter (d2lmini/chapter_code.py): a chapter's code as a fresh module, found beside
the running notebook, without the install and training cells; clear errors otherwise."""
import json
import urllib.request

import pytest

from d2lmini import chapter_code
from d2lmini.chapter_code import ChapterCodeError


def write_chapter(book, cells, chapter='demo', framework='pytorch'):
    folder = book / chapter
    folder.mkdir(parents=True)
    notebook = {'cells': [{'cell_type': kind, 'metadata': {'tags': tags} if tags else {},
                           'source': source} for kind, source, tags in cells],
                'metadata': {}, 'nbformat': 4, 'nbformat_minor': 5}
    (folder / f'{chapter}_{framework}.ipynb').write_text(json.dumps(notebook))
    return folder


CELLS = [('markdown', '# Demo', None),
         ('code', 'raise RuntimeError("the install cell must not run")', ['colab-install']),
         ('code', ['SIZE = 3\n', 'def double(x):\n', '    return 2 * x\n'], None),
         ('code', 'class Net:\n    width = double(SIZE)\nprint("building")', None),
         ('code', 'raise RuntimeError("the training cell must not run")', ['train']),
         ('code', '%matplotlib inline', None)]


def test_the_chapter_beside_the_running_notebook_is_loaded_without_install_and_training(
        tmp_path, monkeypatch, capsys):
    write_chapter(tmp_path / 'book', CELLS)
    (tmp_path / 'book' / 'exercises').mkdir()
    monkeypatch.chdir(tmp_path / 'book' / 'exercises')     # a notebook runs from its folder
    monkeypatch.delenv('D2LMINI_BOOK', raising=False)
    module = chapter_code.load('demo', 'pytorch')
    assert module.Net.width == 6 and module.double(4) == 8
    assert module.__name__ == 'demo_pytorch' and module.Net.__module__ == 'demo_pytorch'
    assert capsys.readouterr().out == ''            # quiet: the cells' prints are dropped
    # each load is the caller's own: changing one module changes nothing in the next
    module.SIZE = 100
    assert chapter_code.load('demo', 'pytorch').SIZE == 3


def test_d2lmini_book_points_at_a_checkout_from_anywhere(tmp_path, monkeypatch):
    write_chapter(tmp_path / 'checkout' / 'book', CELLS)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv('D2LMINI_BOOK', str(tmp_path / 'checkout' / 'book'))
    assert chapter_code.loader('pytorch')('demo').Net.width == 6


def test_a_failing_cell_is_named_with_its_notebook(tmp_path, monkeypatch):
    write_chapter(tmp_path / 'book', [('code', 'x = 1', None), ('code', '1 / 0', None)])
    monkeypatch.setenv('D2LMINI_BOOK', str(tmp_path / 'book'))
    with pytest.raises(ChapterCodeError, match=r'demo_pytorch\.ipynb, cell 1: .*ZeroDivisionError'):
        chapter_code.load('demo', 'pytorch')


def test_a_missing_chapter_says_where_it_looked_and_how_to_fix_it(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv('D2LMINI_BOOK', raising=False)
    asked = []

    def offline(url, timeout):
        asked.append(url)
        raise OSError('no network')
    monkeypatch.setattr(urllib.request, 'urlopen', offline)
    with pytest.raises(ChapterCodeError) as error:
        chapter_code.load('demo', 'jax')
    assert asked == [f'{chapter_code.RELEASE_URL}/demo/demo_jax.ipynb']
    message = str(error.value)
    assert 'demo_jax.ipynb' in message and '../demo/' in message and 'D2LMINI_BOOK' in message
    assert 'no network' in message


def test_bad_arguments_are_refused(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(KeyError, match='unknown framework'):
        chapter_code.load('demo', 'theano')
    with pytest.raises(ChapterCodeError, match='folder name'):
        chapter_code.load('../etc', 'pytorch')


BLOCK_CELLS = [('code', 'def block(x):\n    return x + 1\n', None),
               ('code', 'class Net:\n    def __init__(self):\n        self.out = block(1)\n', None)]


def test_a_chapter_loads_with_blocks_of_the_callers_in_place_of_its_own(tmp_path, monkeypatch):
    write_chapter(tmp_path / 'book', BLOCK_CELLS)
    monkeypatch.setenv('D2LMINI_BOOK', str(tmp_path / 'book'))
    variant = chapter_code.load('demo', 'pytorch', blocks={'block': lambda x: x * 10})
    assert variant.Net().out == 10                       # the chapter's class, built with ours
    assert variant.__name__.startswith('demo_pytorch_with_block')
    assert variant.Net.__module__ == variant.__name__
    again = chapter_code.loader('pytorch')('demo', blocks={'block': lambda x: x - 1})
    assert again.Net().out == 0 and again.__name__ != variant.__name__   # each load its own
    assert variant.Net().out == 10
    assert chapter_code.load('demo', 'pytorch').Net().out == 2    # the chapter as it is


def test_a_block_the_chapter_does_not_define_is_refused_naming_those_it_does(tmp_path,
                                                                             monkeypatch):
    write_chapter(tmp_path / 'book', BLOCK_CELLS)
    monkeypatch.setenv('D2LMINI_BOOK', str(tmp_path / 'book'))
    with pytest.raises(ChapterCodeError, match=r"The chapter 'demo' defines no 'blok', so it "
                                               r"cannot be replaced; the blocks its code defines "
                                               r"are: Net, block\."):
        chapter_code.load('demo', 'pytorch', blocks={'blok': print})
