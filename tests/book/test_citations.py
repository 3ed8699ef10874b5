"""Citations as every front end reads them (citations.py): linked author-year text and a written
reference list in the notebooks, sphinxcontrib-bibtex's roles and bibliography in the book."""
import nbformat
import pytest

from book.tools import chapters, citations

BIB = '''@inproceedings{one2015,
  author = {Szegedy, Christian and Liu, Wei and Jia, Yangqing},
  title = {Going {Deeper}}, booktitle = {CVPR}, year = {2015}, doi = {10.1/x},
}
@misc{two2017,
  author = {Xiao, Han}, title = {Data}, year = {2017}, eprint = {1708.07747}, archiveprefix = {arXiv},
}
'''
ONE = '([Szegedy et al., 2015](https://doi.org/10.1/x))'
TWO = '[Xiao, 2017](https://arxiv.org/abs/1708.07747)'


@pytest.fixture
def root(tmp_path):
    (tmp_path / 'references.bib').write_text(BIB)
    return tmp_path


def notebook(*sources):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(s) for s in sources]
    return nb


def test_the_list_is_written_from_the_bib_for_what_is_cited(root):
    nb = notebook(f'Deeper {ONE}, then data ({TWO}; [Szegedy et al., 2015](https://doi.org/10.1/x)).',
                  'A link ([not a citation](https://example.org)).',
                  '## References\n\n<!-- references -->\nold\n<!-- end references -->')
    citations.write_list(nb, root)
    assert nb.cells[2].source == (
        '## References\n\n<!-- references -->\n'
        '- Szegedy, C., Liu, W., & Jia, Y. (2015). Going Deeper. *CVPR*. <https://doi.org/10.1/x>\n'
        '- Xiao, H. (2017). Data. <https://arxiv.org/abs/1708.07747>\n<!-- end references -->')


def test_a_citation_that_matches_no_entry_or_misreads_it_is_named(root):
    with pytest.raises(citations.CitationError, match=r'\[Lin et al., 2014\]\(https://x.org\) links no entry'):
        citations.write_list(notebook('([Lin et al., 2014](https://x.org))'), root)
    with pytest.raises(citations.CitationError, match=r'\[Xiao et al., 2017\] cites two2017, which reads \[Xiao, 2017\]'):
        citations.write_list(notebook('([Xiao et al., 2017](https://arxiv.org/abs/1708.07747))'), root)
    with pytest.raises(citations.CitationError, match='needs one reference list'):
        citations.write_list(notebook(ONE), root)


def test_the_book_gets_roles_and_the_bibliography(root):
    nb = notebook(f'Deeper {ONE}, data ({TWO}; [Szegedy et al., 2015](https://doi.org/10.1/x)).',
                  'A link ([not a citation](https://example.org)).',
                  '## References\n\n<!-- references -->\n- a line\n<!-- end references -->')
    citations.to_book(nb, root)
    assert nb.cells[0].source == 'Deeper {cite:p}`one2015`, data {cite:p}`two2017,one2015`.'
    assert nb.cells[1].source == 'A link ([not a citation](https://example.org)).'
    assert nb.cells[2].source == ('## References\n\n```{bibliography}\n'
                                  ':filter: docname in docnames\n```')


@pytest.mark.parametrize('chapter', chapters.chapters())
def test_the_chapters_cite_in_a_form_every_front_end_reads(chapter):
    for path in chapters.notebooks(chapter).values():
        nb = nbformat.read(str(path), as_version=4)
        text = '\n'.join(c.source for c in nb.cells if c.cell_type == 'markdown')
        for raw in ('{cite', '{bibliography}', ':filter:'):
            assert raw not in text, f'{path.name}: {raw} shows raw outside the book'
        assert citations.cited(text, where=path.name), f'{path.name} cites nothing'
        before = nbformat.writes(nb)
        citations.write_list(nb, where=path.name)
        assert nbformat.writes(nb) == before, (
            f'{path.name}: its reference list is not the one references.bib gives: run '
            f'python -m book.tools.citations {path.relative_to(chapters.ROOT)}')


@pytest.mark.parametrize('text', [
    'as ([Szegedy et al. 2015](https://doi.org/10.1/x)) showed',        # no comma
    'as [Szegedy et al., 2015](https://doi.org/10.1/x) showed',          # no parentheses
    '[[Szegedy et al., 2015](https://doi.org/10.1/x)]',                  # brackets
    f'({TWO}, [Szegedy et al., 2015](https://doi.org/10.1/x))',         # a comma between two
])
def test_a_citation_in_another_form_is_named(root, text):
    with pytest.raises(citations.CitationError, match='reads like a citation'):
        citations.write_list(notebook(text), root)


def test_others_and_a_missing_author(tmp_path):
    (tmp_path / 'references.bib').write_text(
        '@article{lecun1998, author = {LeCun, Yann and others}, title = {Gradient}, year = {1998},'
        ' url = {https://x.org}}\n@book{edited, editor = {Someone, A.}, title = {B}, year = {2000},'
        ' url = {https://y.org}}\n')
    entry = citations.entries(tmp_path)['lecun1998']
    assert citations.label(entry) == 'LeCun et al., 1998'
    assert citations.reference(entry).startswith('- LeCun, Y., et al. (1998). Gradient.')
    with pytest.raises(citations.CitationError, match='edited names no author'):
        citations.label(citations.entries(tmp_path)['edited'])


def test_an_organisation_as_author_is_written_without_initials(tmp_path):
    (tmp_path / 'references.bib').write_text(
        '@misc{nvidia, author = {{NVIDIA}}, title = {Datasheet}, year = {2018}, url = {https://n.com}}\n')
    entry = citations.entries(tmp_path)['nvidia']
    assert citations.label(entry) == 'NVIDIA, 2018'
    assert citations.reference(entry) == '- NVIDIA (2018). Datasheet. <https://n.com>'


def test_each_page_prefixes_its_keys_so_that_pages_may_cite_the_same_entry(root):
    pages = [notebook(f'Deeper {ONE}.', '## References\n\n<!-- references -->\n<!-- end references -->')
             for _ in range(2)]
    for page, prefix in zip(pages, ('first-', 'second-')):
        citations.to_book(page, root, prefix=prefix)
        assert page.cells[0].source == f'Deeper {{cite:p}}`{prefix}one2015`.'
        assert page.cells[1].source.endswith(f':filter: docname in docnames\n:keyprefix: {prefix}\n```')
