"""Citations that read well wherever a chapter is read.

A notebook cites a source of references.bib as plain markdown, author-year text linked to its DOI
(or, without one, its address), in parentheses, several separated by semicolons:

    ... a tribute to LeNet ([Szegedy et al., 2015](https://doi.org/10.1109/CVPR.2015.7298594)).

and ends with a reference list written out between two marks:

    ## References

    <!-- references -->
    - Szegedy, C., Liu, W., ... (2015). Going Deeper with Convolutions. ...
    <!-- end references -->

Colab, GitHub and Jupyter show both as they are (a `{cite:p}` role or a `{bibliography}`
directive would show raw there). The book build turns them back into what sphinxcontrib-bibtex
renders (`to_book`): each citation into `{cite:p}` with the entry's key, found by its link, and
the list into the `{bibliography}` directive, so the page has linked citations and one
bibliography in one style (book/_ext/citation_labels.py labels its entries as the text cites
them).

    python -m book.tools.citations book/<chapter>/*.ipynb

rewrites each notebook's list from references.bib for the sources it cites, and fails naming
a citation whose link is no entry's.
"""
import functools
import pathlib
import re
import sys

import nbformat

from book.tools import chapters

BIB = 'references.bib'
LIST = re.compile(r'(<!-- references -->\n)(?P<list>.*?)(<!-- end references -->)', re.S)
# ([Name, 2015](link)) or ([Name, 2015](link); [Other et al., 2016](link)): a citation, in
# parentheses, its text ending in a year (other links in parentheses are left alone)
_CITED = r'\[[^\]]+?, \d{4}[a-z]?\]\([^)\s]+\)'
CITATION = re.compile(rf'\((?P<links>{_CITED}(?:;\s*{_CITED})*)\)')
LINK = re.compile(r'\[(?P<text>[^\]]+)\]\((?P<url>[^)\s]+)\)')
# a link whose text ends in a year: meant as a citation, whatever the form around it
YEAR_LINK = re.compile(r'\[[^\]]*\b\d{4}[a-z]?\]\([^)\s]+\)')
# Each page's bibliography lists what the page cites. Two pages citing one entry would give
# sphinxcontrib-bibtex two citations of one key ("duplicate citation"): its documented fix is a
# key prefix per bibliography, which the page's roles then name too.
BIBLIOGRAPHY = '```{{bibliography}}\n:filter: docname in docnames\n{keyprefix}```\n'


class CitationError(Exception):
    """A citation or reference list that does not match references.bib; says where."""


@functools.lru_cache(maxsize=None)
def _entries(path):
    from pybtex.database import parse_file
    return parse_file(path).entries


def entries(root=chapters.ROOT):
    """key -> pybtex Entry of references.bib, in file order."""
    return _entries(str(pathlib.Path(root) / BIB))


def _plain(text):
    return re.sub(r'[{}]', '', str(text))


def link(entry):
    """Where a citation of `entry` points: its DOI, else its url, else its arXiv page."""
    fields = entry.fields
    if 'doi' in fields:
        return f'https://doi.org/{fields["doi"]}'
    if 'url' in fields:
        return fields['url']
    if fields.get('archiveprefix', '').lower() == 'arxiv' and 'eprint' in fields:
        return f'https://arxiv.org/abs/{fields["eprint"]}'
    raise CitationError(f'{BIB}: {entry.key} has no doi, url or arXiv eprint to link a citation to')


def authors(entry):
    """The entry's authors (pybtex Persons), without BibTeX's 'others'; CitationError if
    it names none."""
    people = [p for p in entry.persons.get('author', []) if str(p) != 'others']
    if not people:
        raise CitationError(f'{BIB}: {entry.key} names no author, which an author-year '
                            f'citation needs')
    return people


def label(entry):
    """Author-year text: 'Xiao, 2017', 'Simonyan and Zisserman, 2015', 'Szegedy et al., 2015'
    (also for two authors and 'others')."""
    people = authors(entry)
    last = [_plain(' '.join(p.last_names)) for p in people]
    more = len(entry.persons.get('author', [])) > len(people)
    names = (f'{last[0]} et al.' if len(last) > 2 or more
             else last[0] if len(last) == 1 else f'{last[0]} and {last[1]}')
    return f'{names}, {entry.fields["year"]}'


def reference(entry):
    """One line of the written reference list (markdown)."""
    def name(person):       # 'Szegedy, C.'; an organisation ({NVIDIA}) has no initials
        initials = ' '.join(f'{_plain(n)[0]}.' for n in person.first_names + person.middle_names)
        return _plain(' '.join(person.last_names)) + (f', {initials}' if initials else '')
    people = [name(p) for p in authors(entry)]
    if len(entry.persons.get('author', [])) > len(people):      # BibTeX's 'and others'
        authors_text = ', '.join(people) + ', et al.'
    else:
        authors_text = people[0] if len(people) == 1 else ', '.join(people[:-1]) + ', & ' + people[-1]
    fields = entry.fields
    venue = fields.get('booktitle') or fields.get('journal') or ''
    where = f' *{_plain(venue)}*.' if venue else ''
    return (f'- {authors_text} ({fields["year"]}). {_plain(fields["title"])}.{where} '
            f'<{link(entry)}>')


def by_link(root=chapters.ROOT):
    return {link(entry): key for key, entry in entries(root).items()}


def cited(source, root=chapters.ROOT, where='the notebook'):
    """The keys `source` (markdown) cites, in order of first citation. CitationError names a
    citation whose link is no entry's, or whose text is not the entry's author-year label."""
    keys, known = [], by_link(root)
    # a link that reads like a citation but is not in the form: in the book it would stay a
    # plain link, outside the bibliography
    stray = YEAR_LINK.findall(CITATION.sub('', source))
    if stray:
        raise CitationError(f'{where}: {stray[0]} reads like a citation, but a citation is '
                            f'author-year text linked in parentheses, several separated by '
                            f'semicolons: ([Szegedy et al., 2015](https://doi.org/...))')
    for citation in CITATION.finditer(source):
        for match in LINK.finditer(citation['links']):
            key = known.get(match['url'])
            if key is None:
                raise CitationError(f'{where}: the citation [{match["text"]}]({match["url"]}) '
                                    f'links no entry of {BIB} (by its doi, url or eprint)')
            expected = label(entries(root)[key])
            if match['text'] != expected:
                raise CitationError(f'{where}: [{match["text"]}] cites {key}, which reads '
                                    f'[{expected}]')
            if key not in keys:
                keys.append(key)
    return keys


def list_order(entry):
    """Where `entry` stands in a reference list: by its label, then its key (the written
    lists and the book's bibliography both)."""
    return label(entry).lower(), entry.key


def reference_list(keys, root=chapters.ROOT):
    """The written list of `keys`, in `list_order`, as the book's bibliography is."""
    found = entries(root)
    ordered = sorted(keys, key=lambda k: list_order(found[k]))
    return ''.join(reference(found[k]) + '\n' for k in ordered)


def write_list(nb, root=chapters.ROOT, where='the notebook'):
    """Rewrite the reference list of `nb` (in place) for the sources its markdown cites.
    CitationError if a citation links no entry, or the notebook cites but has no list."""
    markdown = [c for c in nb.cells if c.cell_type == 'markdown']
    keys = cited('\n'.join(c.source for c in markdown), root, where)
    lists = [c for c in markdown if LIST.search(c.source)]
    if keys and len(lists) != 1:
        raise CitationError(f'{where}: cites {len(keys)} sources, so it needs one reference list '
                            f'between <!-- references --> and <!-- end references --> '
                            f'({len(lists)} found)')
    for cell in lists:
        cell.source = LIST.sub(lambda m: m[1] + reference_list(keys, root) + m[3], cell.source)
    return nb


def to_book(nb, root=chapters.ROOT, where='the page', prefix=''):
    """For the book: citations -> `{cite:p}` roles, the reference list -> the bibliography
    directive (in place), its keys prefixed by `prefix` (one per page, e.g. 'googlenet-', so
    that pages may cite the same entries). Returns nb."""
    known = by_link(root)

    def role(citation):
        keys = [known.get(m['url']) for m in LINK.finditer(citation['links'])]
        if None in keys:
            raise CitationError(f'{where}: the citation {citation[0]} links no entry of {BIB}')
        return '{cite:p}`' + ','.join(prefix + key for key in keys) + '`'
    for cell in nb.cells:
        if cell.cell_type == 'markdown':
            keyprefix = f':keyprefix: {prefix}\n' if prefix else ''
            cell.source = LIST.sub(BIBLIOGRAPHY.format(keyprefix=keyprefix).rstrip('\n'),
                                   CITATION.sub(role, cell.source))
    return nb


if __name__ == '__main__':
    try:
        for path in sys.argv[1:]:
            nb = nbformat.read(path, as_version=4)
            before = nbformat.writes(nb)
            write_list(nb, where=path)
            if nbformat.writes(nb) != before:
                nbformat.write(nb, path)
                print(f'{path}: reference list rewritten')
    except CitationError as error:
        sys.exit(f'citations: {error}')
