"""Sphinx extension: turn the framework cells of a merged chapter page into synced tab sets.

book/tools/merge.py marks code cells with `metadata.framework_tabs` (group, framework) and
notes with the directive `{framework-note} <framework> <group>` defined here. MyST-NB renders
code cells only at a page's top level, so once a document is read, each group's cells are
moved into a sphinx-design tab set: one tab per framework of d2lmini.frameworks, all in the
sync group `framework`. framework-tabs.js, handed the framework list, adds what
sphinx-design's JavaScript lacks."""
import dataclasses
import json
import pathlib

from docutils import nodes
from sphinx.util.docutils import SphinxDirective
from sphinx_design.shared import create_component

from d2lmini.frameworks import FRAMEWORKS

SYNC_GROUP = 'framework'
STATIC = pathlib.Path(__file__).resolve().parent.parent / '_static'


class FrameworkNote(SphinxDirective):
    """`{framework-note} <framework> <group>`: a framework's remark, for its tab of a group."""
    required_arguments = 2
    has_content = True

    def run(self):
        node = nodes.container(classes=['framework-note'], framework=self.arguments[0],
                               group=int(self.arguments[1]))
        self.state.nested_parse(self.content, self.content_offset, node)
        return [node]


def _tagged(node):
    """(group, framework) of a marked cell or note, or None."""
    if not isinstance(node, nodes.container):
        return None
    info = (node.get('cell_metadata') or {}).get('framework_tabs') or node.attributes
    return (int(info['group']), info['framework']) if 'framework' in info else None


def _tab_item(framework, label, children, empty=False):
    title = nodes.rubric(label, '', nodes.Text(label), sync_id=framework, sync_group=SYNC_GROUP,
                         classes=['sd-tab-label'] + (['framework-tab-empty'] if empty else []))
    content = create_component('tab-content', classes=['sd-tab-content'], children=children)
    return create_component('tab-item', classes=['sd-tab-item', f'framework-tab-{framework}'],
                            children=[title, content])


def wrap_framework_cells(app, doctree):
    """Move each group's cells (consecutive, as merge.py writes them) into one tab set."""
    groups = {}   # group -> [(node, framework)], in document order
    for node in list(doctree.findall(lambda n: _tagged(n) is not None)):
        group, framework = _tagged(node)
        groups.setdefault(group, []).append((node, framework))
    for members in groups.values():
        first = members[0][0]
        parent, start = first.parent, first.parent.index(first)
        has_code = any(node.get('nb_element') == 'cell_code' for node, _ in members)
        items = []
        for fw in FRAMEWORKS:
            cells = [node for node, framework in members if framework == fw.id]
            for node in cells:
                node.parent.remove(node)
            placeholder = nodes.paragraph('', f'No remark for {fw.label} here.', classes=['framework-tabs-empty'])
            items.append(_tab_item(fw.id, fw.label, cells or [placeholder], empty=not cells))
        # full-width: the theme folds its in-page table of contents away while such a set is on
        # screen; framework-tabs.css lets code sets use that margin on wide screens
        kind = ['framework-tabs-code', 'full-width'] if has_code else ['framework-tabs-notes']
        tab_set = create_component('tab-set', classes=['sd-tab-set', 'framework-tabs', *kind], children=items)
        tab_set.source, tab_set.line = first.source, first.line
        parent.insert(start, tab_set)


def add_static_path(app, config):
    if str(STATIC) not in config.html_static_path:
        config.html_static_path.append(str(STATIC))


def drop_duplicate_scripts(app, pagename, templatename, context, doctree):
    """Include each script once. Sphinx 7.4 adds an inline script that an extension registers
    after the builder started (sphinx-thebe's `const THEBE_JS_URL = ...`) twice, once under
    the name None and once under '', which breaks the page's JavaScript with a redeclaration
    error (fixed upstream in sphinx-doc/sphinx#13402, Sphinx 8.2)."""
    scripts = context.get('script_files')
    if not isinstance(scripts, list):
        return
    seen, unique = set(), []
    for script in scripts:
        key = (getattr(script, 'filename', script) or '',
               tuple(sorted(getattr(script, 'attributes', {}).items())))
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique


def add_assets(app):
    if app.builder.format != 'html':
        return
    known = json.dumps([dataclasses.asdict(fw) for fw in FRAMEWORKS])
    # after sphinx-design's design-tabs.js (priority 500), so its listeners come first
    app.add_js_file('framework-tabs.js', priority=600, **{'data-frameworks': known})
    app.add_css_file('framework-tabs.css')


def setup(app):
    app.setup_extension('sphinx_design')
    app.add_directive('framework-note', FrameworkNote)
    app.connect('config-inited', add_static_path)
    app.connect('builder-inited', add_assets)
    app.connect('doctree-read', wrap_framework_cells)
    app.connect('html-page-context', drop_duplicate_scripts)
    return {'version': '1.0', 'parallel_read_safe': True, 'parallel_write_safe': True}
