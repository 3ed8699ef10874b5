"""Sphinx extension: fold the worked answers of an exercises page.

In the notebooks an exercise's worked answer is a section of its own, titled `Answer`
(ANSWER_TITLE, at any heading level), under the exercise's question. A reader should try the
exercise before reading it, so on the HTML page the section keeps its heading (it stays in the
page's contents) and its body goes into a closed `<details>` element: a toggle that needs no
JavaScript and that find-in-page opens. book/tools/build_pdf.py opens them all before printing.

Why not sphinx-design's `{dropdown}` or sphinx-togglebutton: both wrap the content of one
directive, and an answer spans many notebook cells (prose, framework tab sets, figures), which
reach Sphinx as sibling nodes of a section, not as one directive's content.
"""
import pathlib

from docutils import nodes

ANSWER_TITLE = 'Answer'
SUMMARY = 'Show the worked answer'
STATIC = pathlib.Path(__file__).resolve().parent.parent / '_static'


def fold_answers(app, doctree):
    for section in list(doctree.findall(nodes.section)):
        title = section.children[0] if section.children else None
        if not isinstance(title, nodes.title) or title.astext().strip() != ANSWER_TITLE:
            continue
        section.insert(1, nodes.raw('', f'<details class="answer"><summary>{SUMMARY}</summary>\n',
                                    format='html'))
        section.append(nodes.raw('', '</details>\n', format='html'))


def add_static_path(app, config):
    if str(STATIC) not in config.html_static_path:
        config.html_static_path.append(str(STATIC))


def add_assets(app):
    if app.builder.format == 'html':
        app.add_css_file('answers.css')


def setup(app):
    app.connect('config-inited', add_static_path)
    app.connect('builder-inited', add_assets)
    app.connect('doctree-read', fold_answers)
    return {'version': '1.0', 'parallel_read_safe': True, 'parallel_write_safe': True}
