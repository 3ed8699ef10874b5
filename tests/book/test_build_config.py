"""book/tools: chapters from _toc.yml, Colab links from _config.yml, checks."""
import pytest

from book.tools import build_book, chapters


def write(tmp_path, config='', toc=''):
    (tmp_path / '_config.yml').write_text(config)
    (tmp_path / '_toc.yml').write_text(toc)
    return tmp_path


def test_chapters_are_the_index_pages_of_the_toc(tmp_path):
    root = write(tmp_path, toc='format: jb-book\nroot: book/intro\nparts:\n'
                                '  - caption: CNNs\n    chapters:\n'
                                '      - file: book/googlenet/index\n'
                                '        sections:\n          - file: book/resnet/index.ipynb\n'
                                '      - file: book/notes\n      - file: book/x/notes\n')
    assert chapters.chapters(root) == ['googlenet', 'resnet']


def test_colab_links_follow_the_repository_settings(tmp_path):
    root = write(tmp_path, config='repository:\n  url: https://github.com/someone/fork.git\n  branch: dev\n')
    link = build_book.colab_links(root)
    assert link('book/googlenet/googlenet_jax.ipynb') == (
        'https://colab.research.google.com/github/someone/fork/blob/dev/book/googlenet/googlenet_jax.ipynb')
    root = write(tmp_path, config='repository:\n  url: https://github.com/a/b\n  branch: main\n'
                                  '  path_to_book: docs/\n')
    assert build_book.colab_links(root)('book/x/x_mxnet.ipynb') == (
        'https://colab.research.google.com/github/a/b/blob/main/docs/book/x/x_mxnet.ipynb')


def test_colab_links_need_a_github_repository(tmp_path):
    root = write(tmp_path, config='repository:\n  url: https://gitlab.com/a/b\n')
    with pytest.raises(chapters.ChapterError, match='GitHub repository address'):
        build_book.colab_links(root)


def test_missing_notebooks_of_a_listed_chapter_are_named(tmp_path):
    (tmp_path / 'book' / 'demo').mkdir(parents=True)
    (tmp_path / 'book' / 'demo' / 'demo_pytorch.ipynb').write_text('{}')
    with pytest.raises(chapters.ChapterError) as error:
        chapters.notebooks('demo', tmp_path)
    message = str(error.value)
    assert 'book/demo/demo_tensorflow.ipynb' in message and 'book/demo/demo_mxnet.ipynb' in message
    assert 'demo_pytorch' not in message


def test_the_project_config_points_colab_at_the_book_repository():
    link = build_book.colab_links()
    assert link('book/googlenet/googlenet_pytorch.ipynb') == (
        'https://colab.research.google.com/github/d2lmini/book/blob/main/book/googlenet/googlenet_pytorch.ipynb')


def test_budget_is_parsed_as_d2lmini_parses_it():
    assert build_book.budget_and_timeout(None, {'D2LMINI_BUDGET': 'Smoke'}) == ('smoke', 900)
    assert build_book.budget_and_timeout(None, {}) == ('auto', 14400)
    assert build_book.budget_and_timeout(60, {'D2LMINI_BUDGET': 'full'}) == ('full', 60)
    with pytest.raises(build_book.BuildError, match="'tiny' is not one of"):
        build_book.budget_and_timeout(None, {'D2LMINI_BUDGET': 'tiny'})


def test_github_links_point_at_the_files_in_the_repository(tmp_path):
    root = write(tmp_path, config='repository:\n  url: https://github.com/a/b.git\n  branch: dev\n'
                                  '  path_to_book: docs\n')
    assert build_book.github_links(root)('book/x/x_jax.ipynb') == (
        'https://github.com/a/b/blob/dev/docs/book/x/x_jax.ipynb')
