"""Sphinx extension: the bibliography labels each entry as the text cites it ("Szegedy et al.,
2015", book/tools/citations.label) instead of pybtex's alpha labels ("SLJ+15"), so that the
page has one citation style, and lists the entries in the order of those labels, as the
notebooks' written reference lists do (citations.reference_list). sphinxcontrib-bibtex takes
both from a pybtex formatting style (`bibtex_default_style`): this registers one, 'd2lmini',
pybtex's `unsrt` with these labels and this order."""
import pathlib
import sys

from pybtex.plugin import register_plugin
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting import BaseSortingStyle

# The repository root: book/tools is not installed, and this file lies in book/_ext.
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))
from book.tools.citations import label, list_order  # noqa: E402


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        for entry in sorted_entries:
            yield label(entry)


class LabelOrder(BaseSortingStyle):
    def sorting_key(self, entry):
        return list_order(entry)


class Style(UnsrtStyle):
    default_label_style = 'd2lmini_author_year'
    default_sorting_style = 'd2lmini_label_order'


def setup(app):
    register_plugin('pybtex.style.labels', 'd2lmini_author_year', AuthorYearLabels)
    register_plugin('pybtex.style.sorting', 'd2lmini_label_order', LabelOrder)
    register_plugin('pybtex.style.formatting', 'd2lmini', Style)
    return {'version': '1.0', 'parallel_read_safe': True, 'parallel_write_safe': True}
