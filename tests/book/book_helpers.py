"""Shared paths and helpers for the book tests (imported first by each test module).

The unit tests (merge, execute, configuration) need nothing built. The site and browser tests
check the built book in _build/html and fail (not skip) when it is missing: build it first
with `make book` (or `D2LMINI_BUDGET=smoke .venv/bin/python book/tools/build_book.py`).
"""
import pathlib
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
HTML = ROOT / '_build' / 'html'
sys.path.insert(0, str(ROOT / 'book' / 'tools'))
sys.path.insert(0, str(ROOT / 'book' / '_ext'))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / 'fixtures'))


def require_built_book():
    """Fail the calling test unless the book has been built."""
    if not (HTML / 'index.html').is_file():
        pytest.fail(f'{HTML} does not hold a built book: run `make book` first '
                    f'(the book tests expect `D2LMINI_BUDGET=smoke make book`).', pytrace=False)


def chapter_names():
    import build_book
    return build_book.chapters(ROOT)
