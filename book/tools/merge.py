"""Merge a chapter's executed framework notebooks into the one notebook its page shows.

The notebooks share their prose: every markdown cell not tagged `framework-note` is the same
in all, in the same order. Between two shared cells each has a group of framework cells (code,
and markdown tagged `framework-note`). The page holds each shared cell once, then the group's
cells of all frameworks in book order, marked `metadata.framework_tabs = {"group", "framework"}`;
notes also in the `{framework-note}` directive, as MyST-NB drops markdown cells' metadata.
book/_ext/framework_tabs.py makes each group a tab set. Run records are left out (runs.py).
"""
import copy
import dataclasses
import re
import textwrap

import nbformat

from book.tools import runs
from d2lmini.frameworks import IDS

NOTE_TAG = 'framework-note'
# A note only for a notebook read alone (Colab, GitHub, a download), such as the one under the
# title that names its framework: the page, whose tabs name them all, leaves it out.
NOTEBOOK_ONLY_TAG = 'notebook-only'
META_KEY = 'framework_tabs'
# Shared prose may link another chapter's notebook for the reader's framework: the PyTorch
# notebook's cell links ../x/x_pytorch.ipynb where the JAX one's links ../x/x_jax.ipynb, so
# that GitHub, Colab and a download open the same framework's notebook. Such cells count as
# the same text; the page links the other chapter's page, ../x/index.ipynb, instead.
SIBLING_LINK = re.compile(r'\]\(\.\./([\w-]+)/\1_(' + '|'.join(IDS) + r')\.ipynb')


def links_for(text, framework):
    """`text` with its links to other chapters' notebooks made to name `framework`."""
    return SIBLING_LINK.sub(lambda m: f'](../{m[1]}/{m[1]}_{framework}.ipynb', text)


def page_links(text):
    """`text` with its links to other chapters' notebooks made links to those chapters' pages."""
    return SIBLING_LINK.sub(lambda m: f'](../{m[1]}/index.ipynb', text)


class MergeError(Exception):
    """The notebooks of a chapter do not fit together; the message names the cells."""


@dataclasses.dataclass
class Layout:
    """A notebook cut at its shared cells: `shared[i]` is (cell index, cell), `groups[i]` the
    framework cells before `shared[i]`, `groups[-1]` those after the last shared cell."""
    name: str
    shared: list
    groups: list


def tags(cell):
    return cell.get('metadata', {}).get('tags', []) or []


def is_shared(cell):
    return cell.cell_type == 'markdown' and NOTE_TAG not in tags(cell)


def first_line(cell, width=70):
    line = next((line for line in cell.source.splitlines() if line.strip()), '(empty)')
    return textwrap.shorten(line, width, placeholder='…')


def layout(nb, name):
    shared, groups = [], [[]]
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == 'raw':
            raise MergeError(f'{name} cell {index}: raw cells are not supported in the book '
                             f'(make it a markdown or code cell): {first_line(cell)!r}')
        if is_shared(cell):
            shared.append((index, cell))
            groups.append([])
        else:
            groups[-1].append((index, cell))
    return Layout(name, shared, groups)


# --- checking that the notebooks fit together ---------------------------------------------------

def _lines(cell):
    """A markdown cell's lines, ignoring trailing spaces and blank lines at either end."""
    return [line.rstrip() for line in page_links(cell.source).strip('\n').splitlines()]


def _compare_shared(ref, other, texts=True):
    """The first difference between two notebooks' shared cells (in number, or with texts, in
    text), as a message, or None."""
    for k in range(max(len(ref.shared), len(other.shared))):
        if k >= len(other.shared) or k >= len(ref.shared):
            longer, shorter = (ref, other) if k >= len(other.shared) else (other, ref)
            index, cell = longer.shared[k]
            return (f'{longer.name} has {len(longer.shared)} shared markdown cells but '
                    f'{shorter.name} has only {len(shorter.shared)}; the first without a '
                    f'counterpart is {longer.name} cell {index}: {first_line(cell)!r}')
        (i_ref, c_ref), (i_other, c_other) = ref.shared[k], other.shared[k]
        a, b = _lines(c_ref), _lines(c_other)
        if texts and a != b:
            n = next((n for n, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            show = lambda lines: repr(textwrap.shorten(lines[n], 100, placeholder='…')) \
                if n < len(lines) else '(no such line)'
            return (f'shared markdown cell #{k + 1} differs at its line {n + 1}:\n'
                    f'    {ref.name} cell {i_ref}: {show(a)}\n'
                    f'    {other.name} cell {i_other}: {show(b)}')
    return None


def _describe(run):
    parts = []
    for kind, word in (('code', 'code cell'), ('markdown', 'note')):
        found = [str(i) for i, c in run if c.cell_type == kind]
        if found:
            parts.append(f'{len(found)} {word}{"s" * (len(found) > 1)} (cell {", ".join(found)})')
    return ' and '.join(parts) or 'nothing'


def _position(lay, g):
    before = f'after cell {lay.shared[g - 1][0]}' if g > 0 else 'at the start'
    return before + (f', before cell {lay.shared[g][0]}' if g < len(lay.shared) else ', at the end')


def check_structure(layouts, texts=True):
    """Raise MergeError, naming the cells, unless the layouts (framework -> Layout) fit together:
    as many shared cells (with texts: the same shared prose), and framework cells for every
    framework where any has code."""
    ref, *others = layouts.values()
    problems = [p for p in (_compare_shared(ref, other, texts) for other in others) if p]
    for fw, lay in layouts.items():
        problems += [f'{lay.name} cell {index} links {m[0][2:]}, another framework\'s notebook: '
                     f'link {m[1]}_{fw}.ipynb (the page links the chapter\'s page)'
                     for index, cell in lay.shared for m in SIBLING_LINK.finditer(cell.source)
                     if m[2] != fw] if texts and fw in IDS else []
    if problems:
        raise MergeError('The shared prose differs between the framework notebooks '
                         '(shared markdown cells must be identical and in the same order; tag '
                         f"framework-specific remarks '{NOTE_TAG}'):\n  " + '\n  '.join(problems))
    for g in range(len(ref.groups)):
        with_code = [lay.name for lay in layouts.values() if any(c.cell_type == 'code' for _, c in lay.groups[g])]
        empty = [lay.name for lay in layouts.values() if not lay.groups[g]]
        if with_code and empty:
            where = f'after the shared cell {first_line(ref.shared[g - 1][1])!r}' if g else 'before the first shared cell'
            has = lambda names: f'{", ".join(names)} {"has" if len(names) == 1 else "have"}'
            problems.append(f'group {g} ({where}): {has(empty)} no cells where {has(with_code)} code:\n'
                            + '\n'.join(f'  {lay.name} {_position(lay, g)}: {_describe(lay.groups[g])}'
                                        for lay in layouts.values()))
    if problems:
        raise MergeError('The cell structure differs between the framework notebooks (every '
                         'framework needs code where any has code):\n' + '\n'.join(problems))


# --- merging ------------------------------------------------------------------------------------

def _markdown_cell(text, template=None):
    """A new markdown cell, with the template's attachments (figures) and metadata."""
    cell = nbformat.v4.new_markdown_cell(text)
    cell.update(copy.deepcopy({k: v for k, v in (template or {}).items() if k in ('attachments', 'metadata')}))
    return cell


def _framework_cell(cell, fw, g, index):
    if cell.cell_type == 'code':
        new = nbformat.from_dict(cell)
        new['id'] = f'{fw}-{cell.get("id") or index}'[:64]   # ids must stay unique
        new.outputs = [out for out in new.outputs if not runs.is_record(out)]
    else:
        body = cell.source.strip('\n')
        longest = max((len(m) for m in re.findall(r'^[ \t]*(`+)', body, re.MULTILINE)), default=0)
        fence = '`' * max(3, longest + 1)      # longer than any code fence in the note
        new = _markdown_cell(f'{fence}{{{NOTE_TAG}}} {fw} {g}\n{body}\n{fence}\n', cell)
    new.metadata[META_KEY] = {'group': g, 'framework': fw}
    return new


def _with_header(cell, header):
    """The first shared cell as cells, with `header` right after its top-level title."""
    text = cell.source
    title = re.search(r'^#\s.*$', text, re.MULTILINE)
    if not title:
        return [_markdown_cell(header), _markdown_cell(text, cell)]
    rest = text[title.end():].strip('\n')
    return ([_markdown_cell(text[:title.end()] + '\n\n' + header, cell)]
            + ([_markdown_cell(rest, cell)] if rest.strip() else []))


def _without_notebook_only(nb):
    nb = copy.copy(nb)
    nb.cells = [c for c in nb.cells if NOTEBOOK_ONLY_TAG not in tags(c)]
    return nb


def merge(notebooks, names, header=''):
    """One notebook from executed notebooks (framework id -> notebook, in book order). names:
    framework id -> the notebook's name in messages; header: markdown to put after the title.
    Notes tagged NOTEBOOK_ONLY_TAG are left out."""
    layouts = {fw: layout(_without_notebook_only(nb), names[fw]) for fw, nb in notebooks.items()}
    check_structure(layouts)
    ref = next(iter(layouts.values()))
    cells = [] if ref.shared or not header else [_markdown_cell(header)]
    for g in range(len(ref.groups)):
        for fw, lay in layouts.items():
            cells += [_framework_cell(cell, fw, g, index) for index, cell in lay.groups[g]]
        if g < len(ref.shared):
            cell = ref.shared[g][1]
            cell = _markdown_cell(page_links(cell.source), cell)
            cells += _with_header(cell, header) if g == 0 and header else [cell]
    page = nbformat.v4.new_notebook()
    page.metadata = nbformat.from_dict({
        'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'},
        'language_info': next(iter(notebooks.values())).metadata.get('language_info', {'name': 'python'})})
    page.cells = cells
    return page
