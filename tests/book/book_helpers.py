"""Shared paths and helpers for the book tests.

The unit tests (merge, runs, execute, configuration) need nothing built. The site and browser
tests check the built book in _build/html and fail (not skip) when it is missing: build it
first with `make book` (or `D2LMINI_BUDGET=smoke .venv/bin/python -m book.tools.build_book`).
"""
import pytest

from book.tools import chapters

ROOT = chapters.ROOT
HTML = ROOT / '_build' / 'html'


def require_built_book():
    """Fail the calling test unless the book has been built."""
    if not (HTML / 'index.html').is_file():
        pytest.fail(f'{HTML} does not hold a built book: run `make book` first '
                    f'(the book tests expect `D2LMINI_BUDGET=smoke make book`).', pytrace=False)


def chapter_names():
    return chapters.chapters(ROOT)
