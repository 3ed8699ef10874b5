"""Merge a chapter's four executed framework notebooks into the one notebook the book renders.

The four notebooks of a chapter share their prose: every markdown cell without the tag
`framework-note` must be identical in all four, in the same order. Between two consecutive
shared cells each notebook has a run of framework-specific cells (code cells and markdown
cells tagged `framework-note`). The merged notebook holds every shared cell once and, after
it, the runs of all four frameworks, each cell tagged with its group and framework:

* code cells get `metadata.framework_tabs = {"group": g, "framework": fw}`;
* notes are wrapped in a `{container}` directive with the classes
  `framework-note framework-group-<g> framework-<fw>` (MyST-NB gives markdown cells no
  node of their own, so the marker has to live in the markdown).

The Sphinx extension `book/_ext/framework_tabs.py` turns each group into one tab set.
Relative paths in markdown (figures, links) are rebased from the chapter's folder to the
folder of the merged page.
"""
import dataclasses
import pathlib
import posixpath
import re

import nbformat

FRAMEWORKS = (('pytorch', 'PyTorch'), ('tensorflow', 'TensorFlow'), ('jax', 'JAX'), ('mxnet', 'MXNet'))
LABELS = dict(FRAMEWORKS)
NOTE_TAG = 'framework-note'
META_KEY = 'framework_tabs'
NOTE_CLASS = 'framework-note'


class MergeError(Exception):
    """The notebooks of a chapter do not fit together; the message names the cells."""


# --- splitting one notebook into shared cells and framework runs -------------------------------

@dataclasses.dataclass
class Layout:
    """A notebook cut at its shared markdown cells.

    `shared[i]` is (cell index, cell); `runs[i]` are the framework cells before `shared[i]`,
    and `runs[-1]` those after the last shared cell, so len(runs) == len(shared) + 1.
    """
    name: str
    shared: list
    runs: list


def tags(cell):
    return cell.get('metadata', {}).get('tags', []) or []


def is_shared(cell):
    return cell.cell_type == 'markdown' and NOTE_TAG not in tags(cell)


def source_text(cell):
    source = cell.get('source', '')
    return ''.join(source) if isinstance(source, list) else source


def first_line(cell, width=70):
    for line in source_text(cell).splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= width else line[:width - 1] + '…'
    return '(empty)'


def layout(nb, name):
    shared, runs = [], [[]]
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == 'raw':
            raise MergeError(f'{name} cell {index}: raw cells are not supported in the book '
                             f'(make it a markdown or code cell): {first_line(cell)!r}')
        if is_shared(cell):
            shared.append((index, cell))
            runs.append([])
        else:
            runs[-1].append((index, cell))
    return Layout(name, shared, runs)


# --- checking that the four notebooks fit together ---------------------------------------------

def normalized_lines(text):
    """Lines of a markdown cell, ignoring trailing spaces and blank lines at either end."""
    return [line.rstrip() for line in text.strip('\n').splitlines()]


def _clip(text, width=100):
    return text if len(text) <= width else text[:width - 1] + '…'


def _compare_shared(ref, other):
    """The first difference between two notebooks' shared cells, as a message, or None."""
    for k in range(max(len(ref.shared), len(other.shared))):
        if k >= len(other.shared) or k >= len(ref.shared):
            longer, shorter = (ref, other) if k >= len(other.shared) else (other, ref)
            index, cell = longer.shared[k]
            return (f'{longer.name} has {len(longer.shared)} shared markdown cells but '
                    f'{shorter.name} has only {len(shorter.shared)}; the first without a '
                    f'counterpart is {longer.name} cell {index}: {first_line(cell)!r}')
        (i_ref, c_ref), (i_other, c_other) = ref.shared[k], other.shared[k]
        a, b = normalized_lines(source_text(c_ref)), normalized_lines(source_text(c_other))
        if a != b:
            line = next((n for n, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
            show = lambda lines: repr(_clip(lines[line])) if line < len(lines) else '(no such line)'
            return (f'shared markdown cell #{k + 1} differs at its line {line + 1}:\n'
                    f'    {ref.name} cell {i_ref}: {show(a)}\n'
                    f'    {other.name} cell {i_other}: {show(b)}')
    return None


def _describe_run(run):
    codes = [i for i, c in run if c.cell_type == 'code']
    notes = [i for i, c in run if c.cell_type == 'markdown']
    parts = []
    if codes:
        parts.append(f'{len(codes)} code cell{"s" * (len(codes) > 1)} (cell {", ".join(map(str, codes))})')
    if notes:
        parts.append(f'{len(notes)} note{"s" * (len(notes) > 1)} (cell {", ".join(map(str, notes))})')
    return ' and '.join(parts) or 'nothing'


def _position(lay, g):
    """Where group g sits in a notebook, in words."""
    before = f'after cell {lay.shared[g - 1][0]}' if g > 0 else 'at the start'
    after = f'before cell {lay.shared[g][0]}' if g < len(lay.shared) else 'at the end'
    return f'{before}, {after}'


def check_structure(layouts):
    """Raise MergeError unless the layouts (framework -> Layout) fit together."""
    fws = list(layouts)
    ref = layouts[fws[0]]
    problems = [p for p in (_compare_shared(ref, layouts[fw]) for fw in fws[1:]) if p]
    if problems:
        raise MergeError('The shared prose differs between the framework notebooks '
                         '(shared markdown cells must be identical and in the same order; tag '
                         f"framework-specific remarks '{NOTE_TAG}'):\n  " + '\n  '.join(problems))
    for g in range(len(ref.runs)):
        with_code = [fw for fw in fws if any(c.cell_type == 'code' for _, c in layouts[fw].runs[g])]
        empty = [fw for fw in fws if not layouts[fw].runs[g]]
        if with_code and empty:
            where = (f'after the shared cell {first_line(ref.shared[g - 1][1])!r}' if g > 0
                     else 'before the first shared cell')
            lines = [f'  {layouts[fw].name} {_position(layouts[fw], g)}: {_describe_run(layouts[fw].runs[g])}'
                     for fw in fws]
            problems.append(f'group {g} ({where}): {", ".join(layouts[fw].name for fw in empty)} '
                            f'{"has" if len(empty) == 1 else "have"} no cells where '
                            f'{", ".join(layouts[fw].name for fw in with_code)} '
                            f'{"has" if len(with_code) == 1 else "have"} code:\n' + '\n'.join(lines))
    if problems:
        raise MergeError('The cell structure differs between the framework notebooks (every '
                         'framework needs code where any has code):\n' + '\n'.join(problems))


# --- rebasing relative paths in markdown --------------------------------------------------------

_SCHEME = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*:')
_FENCE = re.compile(r'^(\s*)(`{3,}|~{3,}|:{3,})(.*)$')
_DIRECTIVE_PATH = re.compile(r'^(\s*(?:`{3,}|:{3,})\{(?:figure|image|include|literalinclude)\}\s+)(\S+)(.*)$')
_CODE_SPAN = re.compile(r'(`+)(.+?)\1')
_INLINE_LINK = re.compile(r'(!?\[(?:[^\[\]\\]|\\.)*\]\(\s*<?)([^\s)>]+)')
_REF_DEFINITION = re.compile(r'^(\s{0,3}\[[^\]]+\]:\s*<?)([^\s>]+)')
_HTML_ATTR = re.compile(r'''(\b(?:src|href)\s*=\s*["'])([^"']+)''')
_DOWNLOAD_ROLE_END = re.compile(r'\{download\}$')


def rebase_path(target, from_dir, to_dir):
    """A relative path written in from_dir, rewritten to mean the same file from to_dir."""
    if not target or target.startswith(('#', '/', '{')) or _SCHEME.match(target):
        return target
    path, suffix = re.match(r'^([^#?]*)(.*)$', target).group(1, 2)   # suffix: ?query#fragment
    if not path:
        return target
    return posixpath.relpath(posixpath.normpath(posixpath.join(from_dir, path)), to_dir) + suffix


def _rebase_inline(text, rebase):
    """Rebase links, images and HTML attributes on one line, leaving code spans alone."""
    out, pos = [], 0
    for span in _CODE_SPAN.finditer(text):
        plain = text[pos:span.start()]
        out.append(_rebase_plain(plain, rebase, line_start=pos == 0))
        code = span.group(0)
        if _DOWNLOAD_ROLE_END.search(plain):   # {download}`text <path>` or {download}`path`
            inner = span.group(2)
            m = re.match(r'^(.*<)([^>]+)(>\s*)$', inner)
            inner = m.group(1) + rebase(m.group(2)) + m.group(3) if m else rebase(inner.strip())
            code = span.group(1) + inner + span.group(1)
        out.append(code)
        pos = span.end()
    out.append(_rebase_plain(text[pos:], rebase, line_start=pos == 0))
    return ''.join(out)


def _rebase_plain(text, rebase, line_start):
    sub = lambda m: m.group(1) + rebase(m.group(2))
    text = _INLINE_LINK.sub(sub, text)
    if line_start:
        text = _REF_DEFINITION.sub(sub, text)
    return _HTML_ATTR.sub(sub, text)


def rebase_markdown(markdown, from_dir, to_dir):
    """Rewrite the relative paths of a markdown cell (links, images, figure and image
    directives, HTML src/href, the download role), skipping code blocks and code spans."""
    if posixpath.normpath(from_dir) == posixpath.normpath(to_dir):
        return markdown
    rebase = lambda target: rebase_path(target, from_dir, to_dir)
    out, fences = [], []   # fences: the open fences, innermost last, as (fence, is_code)
    for line in markdown.splitlines(keepends=True):
        fence = _FENCE.match(line)
        if fence and fences:
            mark, is_code = fences[-1]
            if (fence.group(2)[0] == mark[0] and len(fence.group(2)) >= len(mark)
                    and not fence.group(3).strip()):
                fences.pop()
                out.append(line)
                continue
        if fences and fences[-1][1]:
            out.append(line)            # inside a code block: verbatim
            continue
        if fence:
            is_code = not fence.group(3).lstrip().startswith('{')
            fences.append((fence.group(2), is_code))
            directive = _DIRECTIVE_PATH.match(line.rstrip('\n'))
            if directive:
                newline = '\n' if line.endswith('\n') else ''
                line = directive.group(1) + rebase(directive.group(2)) + directive.group(3) + newline
            out.append(line)
            continue
        out.append(_rebase_inline(line, rebase))
    return ''.join(out)


# --- the run-it-yourself block -----------------------------------------------------------------

TRAINING_LINE = re.compile(r"^Training on (?P<device>.+?) with budget '(?P<budget>\w+)' "
                           r"\((?P<reason>.*?)\)(?::\s*(?P<detail>.*))?$", re.MULTILINE)


def training_runs(nb):
    """Every 'Training on ...' line printed by the notebook's code cells, parsed, in order."""
    runs = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != 'code':
            continue
        text = ''.join(source_text({'source': out.get('text', '')})
                       for out in cell.get('outputs', [])
                       if out.get('output_type') == 'stream' and out.get('name') == 'stdout')
        for m in TRAINING_LINE.finditer(text):
            detail = (m.group('detail') or '').strip()
            detail = re.split(r'\.?\s+Set D2LMINI_BUDGET=', detail)[0].rstrip('.')
            runs.append(dict(cell=index, device=m.group('device'), budget=m.group('budget'),
                             reason=m.group('reason'), detail=detail))
    return runs


def _escape(text):
    """Markdown-escape text that goes into a table cell."""
    return re.sub(r'([\\`*_\[\]<>|{}$])', r'\\\1', text)


def run_info_markdown(entries):
    """The markdown of the block near the top of a chapter page.

    entries: one dict per framework with keys fw, label, colab_url, download (path relative
    to the merged page) and runs (from training_runs).
    """
    rows, smoke_details = [], []
    for e in entries:
        links = (f'[Open in Colab]({e["colab_url"]}) · '
                 f'{{download}}`Download notebook <{e["download"]}>`')
        if e['fw'] == 'mxnet':
            links += ' ({ref}`needs an older Python <run-in-colab>`)'
        if not e['runs']:
            outputs = 'no training in this notebook (no budget applies)'
        else:
            seen, parts = set(), []
            for run in e['runs']:
                key = (run['budget'], run['device'], run['reason'])
                if key not in seen:
                    seen.add(key)
                    parts.append(f"**{_escape(run['budget'])}** budget on **{_escape(run['device'])}** "
                                 f"({_escape(run['reason'])})")
                if run['budget'] == 'smoke' and run['detail']:
                    smoke_details.append(run['detail'])
            outputs = '; '.join(parts)
        rows.append(f'* - {e["label"]}\n  - {links}\n  - {outputs}')
    text = ('```{list-table}\n:header-rows: 1\n:widths: 14 46 40\n:class: framework-run-table\n\n'
            '* - Framework\n  - Run it yourself\n  - Outputs on this page produced with\n'
            + '\n'.join(rows) + '\n```\n')
    if any(run['budget'] == 'smoke' for e in entries for run in e['runs']):
        caps = f' ({_escape(smoke_details[0])})' if len(set(smoke_details)) == 1 else ''
        text += ('\n```{admonition} Smoke-test outputs\n:class: warning framework-smoke-warning\n'
                 f'Outputs marked **smoke** above come from a quick check that the code runs{caps}: '
                 'their losses, accuracies and curves say nothing about what the model can learn. '
                 'Run the notebook with `D2LMINI_BUDGET=full`, or on a GPU, for real results.\n```\n')
    return text


# --- library log noise ----------------------------------------------------------------------------

# What C++ libraries (TensorFlow, XLA via absl/glog) write to the kernel's stderr, such as
# "I0000 00:00:1795881433.93 15209 port.cc:153] oneDNN custom operations are on. ...".
_NATIVE_LOG = re.compile(r'^[IWEF]\d{4} [\d:.]+\s+\d+ [\w.\-]+:\d+\] ')
_NATIVE_LOG_BANNER = 'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR'
_PYTHON_MESSAGE = re.compile(r'^(\S.*\.py:\d+: \w*(Warning|Error)|Traceback |\w*(Warning|Error): )')


def strip_native_logs(cell):
    """Drop C++ library log lines from a code cell's stderr outputs (a line that follows one,
    without a log prefix of its own, belongs to it). Returns how many lines were dropped."""
    dropped, outputs = 0, []
    for out in cell.get('outputs', []):
        if out.get('output_type') == 'stream' and out.get('name') == 'stderr':
            kept, in_log = [], False
            for line in source_text({'source': out.get('text', '')}).splitlines(keepends=True):
                if _NATIVE_LOG.match(line) or line.strip() == _NATIVE_LOG_BANNER:
                    in_log = True
                elif not (in_log and line.strip() and not _PYTHON_MESSAGE.match(line)):
                    in_log = False
                    kept.append(line)
                    continue
                dropped += 1
            if not ''.join(kept).strip():
                continue
            out = nbformat.from_dict(dict(out, text=''.join(kept)))
        outputs.append(out)
    if 'outputs' in cell:
        cell['outputs'] = outputs
    return dropped


# --- merging ------------------------------------------------------------------------------------

def _fence_for(text, char='`'):
    longest = max((len(m.group(1)) for m in re.finditer(rf'^[ \t]*({re.escape(char)}+)', text, re.MULTILINE)),
                  default=0)
    return char * max(3, longest + 1)


def _markdown_cell(text, template=None):
    cell = nbformat.v4.new_markdown_cell(text)
    if template is not None:
        if template.get('attachments'):
            cell['attachments'] = template['attachments']
        cell.metadata.update({k: v for k, v in template.metadata.items() if k != 'tags'})
        if tags(template):
            cell.metadata['tags'] = list(tags(template))
    return cell


def _split_title(text):
    """(text up to and including the first top-level heading, the rest), or ('', text)."""
    lines = text.splitlines(keepends=True)
    for n, line in enumerate(lines):
        if re.match(r'^#\s', line):
            return ''.join(lines[:n + 1]), ''.join(lines[n + 1:])
    return '', text


def merge(notebooks, names=None, chapter_dir='.', page_dir='.', header_markdown=None):
    """Merge executed notebooks (framework -> NotebookNode, in tab order) into one.

    names: framework -> the notebook's name for messages. chapter_dir/page_dir: the folders
    of the source notebooks and of the merged page (for rebasing relative paths), relative
    to a common root, in POSIX form. header_markdown: inserted after the page's title.
    """
    names = names or {fw: f'{fw} notebook' for fw in notebooks}
    for fw in notebooks:
        if fw not in LABELS:
            raise MergeError(f'{names[fw]}: unknown framework {fw!r} (known: {", ".join(LABELS)})')
    layouts = {fw: layout(nb, names[fw]) for fw, nb in notebooks.items()}
    check_structure(layouts)
    rebase = lambda text: rebase_markdown(text, chapter_dir, page_dir)

    ref_fw = next(iter(notebooks))
    ref = layouts[ref_fw]
    cells, dropped = [], 0
    for g, _ in enumerate(ref.runs):
        for fw, lay in layouts.items():
            for index, cell in lay.runs[g]:
                if cell.cell_type == 'code':
                    new = nbformat.from_dict(cell)
                    new['id'] = f'{fw}-{cell.get("id") or index}'[:64]   # ids must stay unique
                    dropped += strip_native_logs(new)
                    new.metadata[META_KEY] = {'group': g, 'framework': fw}
                    new.metadata.setdefault('tags', [])
                    cells.append(new)
                else:
                    body = rebase(source_text(cell)).strip('\n')
                    fence = _fence_for(body)
                    text = (f'{fence}{{container}} {NOTE_CLASS} framework-group-{g} framework-{fw}\n'
                            f'{body}\n{fence}\n')
                    cells.append(_markdown_cell(text, cell))
        if g < len(ref.shared):
            index, cell = ref.shared[g]
            text = rebase(source_text(cell))
            if g == 0 and header_markdown:
                title, rest = _split_title(text)
                cells.append(_markdown_cell(title.rstrip('\n') + '\n\n' + header_markdown, cell) if title
                             else _markdown_cell(header_markdown))
                if rest.strip():
                    cells.append(_markdown_cell(rest.strip('\n'), cell))
            else:
                cells.append(_markdown_cell(text, cell))
    if header_markdown and not ref.shared:
        cells.insert(0, _markdown_cell(header_markdown))

    merged = nbformat.v4.new_notebook()
    merged.metadata = nbformat.from_dict({
        'kernelspec': {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'},
        'language_info': notebooks[ref_fw].metadata.get('language_info', {'name': 'python'}),
        META_KEY: {'frameworks': [[fw, LABELS[fw]] for fw in notebooks],
                   'native_log_lines_dropped': dropped},
    })
    merged.cells = cells
    return merged


def merge_chapter(chapter, executed, sources, page, root, colab_url):
    """Merge one chapter's executed notebooks into the page `page`, from files.

    executed, sources: framework -> path of the executed / source notebook, in tab order.
    root: the folder relative paths are measured from (the book's root). colab_url: a
    function from a source path (relative to root, POSIX) to its Open-in-Colab address.
    Returns the merged notebook.
    """
    root, page = pathlib.Path(root), pathlib.Path(page)
    rel = lambda p: pathlib.Path(p).resolve().relative_to(root.resolve()).as_posix()
    chapter_dir = posixpath.dirname(rel(next(iter(sources.values()))))
    page_dir = posixpath.dirname(rel(page))
    notebooks = {fw: nbformat.read(str(path), as_version=4) for fw, path in executed.items()}
    names = {fw: rel(sources[fw]) for fw in sources}
    entries = [dict(fw=fw, label=LABELS[fw], colab_url=colab_url(rel(sources[fw])),
                    download=posixpath.relpath(rel(sources[fw]), page_dir),
                    runs=training_runs(notebooks[fw]))
               for fw in notebooks]
    merged = merge(notebooks, names=names, chapter_dir=chapter_dir, page_dir=page_dir,
                   header_markdown=run_info_markdown(entries))
    page.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(merged, str(page))
    return merged
