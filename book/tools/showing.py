"""What the chapter notebooks and the chapter's page show of its reference runs (kept_runs.py)
and of the runs that produced their outputs; every place goes through here.

The training cell: the code cell tagged `train` of a notebook with a reference run (or each of
them, one per named run: chapters.run_name) carries that run's outputs, after a label saying what produced them (budget, epochs, device, duration,
date, commit), in the source notebook (for GitHub and Colab) and on the built page (`show`). A
reference whose code hash differs from its notebook's is labelled as produced by an earlier
version of the code.

The numbers: they stand in the prose itself, each in a marked place that `quote` fills with a
value of run_numbers.quotes (whose docstring lists the keys):

    ... was <span data-reference="gap.e1.train_loss">0.0000</span> after the first epoch ...

    <!-- reference: table -->
    | framework | epochs | ... |
    <!-- end reference: table -->

So the notebook shows real numbers wherever it is opened (GitHub, Colab, Jupyter, the book);
MyST substitution (`{{ ... }}`) would work in the book only and show raw elsewhere. An author
writes an empty span (or the two comment lines) and lets `make reference` or
`python -m book.tools.reference --show-only` fill it (`quote_in_sources`); both also redraw the
comparison figure, book/<chapter>/figures/reference_curves.svg, and its PNG, which the notebooks
link like the other figures (`refresh`, figures.py). The build shows and quotes the page again; a test checks that the
notebooks are up to date.

The run table, under the page's title (`run_table`): per framework, where to run it and which
budget on which device produced the page's training outputs, or which reference run.
"""
import copy
import html
import posixpath
import re

import nbformat

from book.tools import chapters, figures, run_numbers, runs
from book.tools.kept_runs import ReferenceRunError
from d2lmini import progress
from d2lmini.frameworks import FRAMEWORKS
from d2lmini.notebook import CHECKPOINT_NOTICE, EPOCH_LINES, OUTPUT_KEY

TRAIN_TAG, INSTALL_TAG = chapters.TRAIN_TAG, chapters.INSTALL_TAG
LABEL_KEY = 'd2lmini_reference_label'   # in the label output's metadata (not a MIME type in its
                                        # data: MyST-NB warns of those it cannot render)
QUOTE_SPAN = re.compile(r'(<span data-reference="(?P<key>[^"]*)">)(?P<value>.*?)(</span>)')
QUOTE_BLOCK = re.compile(r'(<!-- reference: (?P<key>\S+) -->\n)(?P<value>.*?\n|)'
                         r'(<!-- end reference: (?P=key) -->)', re.S)


class QuoteError(ReferenceRunError):
    """The prose marks a place for a number that the records do not give; says where."""


def rewrite_notebooks(paths, change, write=True):
    """Apply `change(nb, path)` (in place) to each notebook of `paths`; returns those whose
    content changed (with write=False: that would change, writing nothing)."""
    changed = []
    for path in paths:
        nb = nbformat.read(str(path), as_version=4)
        before = nbformat.writes(nb)
        change(nb, path)
        if nbformat.writes(nb) != before:
            if write:
                nbformat.write(nb, str(path))
            changed.append(path)
    return changed


def source_notebooks(chapter, root=chapters.ROOT):
    """The chapter's notebooks that exist, in book order."""
    paths = (chapters.notebook_path(chapter, fw.id, root) for fw in FRAMEWORKS)
    return [path for path in paths if path.exists()]


# --- the training cell ----------------------------------------------------------------------------

def train_cells(nb, name):
    """{run name (None for an unnamed one): cell} of the notebook's code cells tagged `train`
    (chapters.run_name). ReferenceRunError naming the notebook (`name`) if two cells train the
    same run or a name is not one (chapters.RUN_NAME)."""
    cells = {}
    for cell in nb.cells:
        if cell.cell_type != 'code' or TRAIN_TAG not in cell.metadata.get('tags', []):
            continue
        run = chapters.run_name(cell)
        if run is not None and not chapters.RUN_NAME.fullmatch(run):
            raise ReferenceRunError(f'{name}: the training cell tagged {chapters.RUN_TAG_PREFIX}'
                                    f'{run} names its run with other characters than lower case '
                                    'letters, digits and hyphens')
        if run in cells:
            raise ReferenceRunError(
                f'{name}: two code cells tagged {TRAIN_TAG!r} train the run '
                f'{"without a name" if run is None else repr(run)}; a reference run replaces '
                f'one cell\'s outputs, so each training cell needs a run of its own (tag '
                f'{chapters.RUN_TAG_PREFIX}<name> beside {TRAIN_TAG!r})')
        cells[run] = cell
    return cells


def train_cell(nb, name, run=None):
    """The notebook's code cell tagged `train` that trains `run` (None: the unnamed one);
    ReferenceRunError naming the notebook (`name`) if there is none, or as `train_cells`."""
    cells = train_cells(nb, name)
    if run not in cells:
        what = 'the run without a name' if run is None else f'the run {run!r}'
        raise ReferenceRunError(f'{name}: no code cell tagged {TRAIN_TAG!r} trains {what}; the '
                                'training cell, whose outputs a reference run replaces, must be '
                                f'there (training cells here: {len(cells)})')
    return cells[run]


def duration(seconds):
    minutes = round(seconds / 60)
    return f'{minutes} min' if minutes < 60 else f'{minutes // 60} h {minutes % 60:02d} min'


def describe(ref):
    """What produced the reference's outputs, in one line of plain text."""
    rec, meta = ref.record, ref.record['reference']
    device = rec['device']['model'] or rec['device']['name']
    if rec['device']['type'] == 'cpu':
        device += f", {rec['host']['cpu_count']} cores"
    commit = meta.get('git_commit')
    commit = ('an unknown commit' if not commit else f'commit {commit[:12]}'
              + (' with uncommitted changes' if commit.endswith('-dirty') else ''))
    parts = meta.get('parts', 1)
    how = ('in one go' if parts == 1 else
           f'in {parts} parts (resumed from a checkpoint {"once" if parts == 2 else f"{parts - 1} times"})')
    return (f"{rec['budget']['name']} budget, {rec['epochs_run']} epochs on "
            f"{rec['device']['type'].upper()} ({device}), {duration(rec['wall_time_s'])} "
            f"{how}, {meta['started_at'][:10]}, {commit}")


def label_output(ref):
    """The display output put before the reference's outputs (text/html for notebooks and the
    book, text/plain for consoles), marked by LABEL_KEY in its metadata."""
    if ref.current:
        title = 'Outputs of the reference run'
        text = (f'{describe(ref)}. Running the cell trains again and replaces them.')
    else:
        title = 'Outputs of a reference run produced by an earlier version of this code'
        text = (f'{describe(ref)}. The code has changed since, so these outputs may not be what '
                'it produces now.')
    kind = 'current' if ref.current else 'stale'
    return nbformat.v4.new_output('display_data', data={
        'text/html': f'<div class="d2lmini-reference d2lmini-reference-{kind}"><strong>'
                     f'{html.escape(title)}</strong>: {html.escape(text)}</div>',
        'text/plain': f'{title}: {text}'}, metadata={LABEL_KEY: {
            'framework': ref.framework, 'current': ref.current,
            'code_hash': ref.record['reference']['code_hash']}})


def is_label(output):
    return LABEL_KEY in output.get('metadata', {})


def show(nb, ref, name):
    """Replace the outputs of `nb`'s training cell with `ref`'s (`reference_outputs`), after its
    label, and drop the install cell's output (`drop_install_output`); returns `nb`.
    ReferenceRunError (naming `name`) if `nb` has not exactly one training cell."""
    cell = train_cell(nb, name, ref.run)
    kept = train_cell(ref.notebook, f'{ref.name} (reference)', ref.run)
    cell.outputs = [label_output(ref)] + reference_outputs(ref, kept)
    cell.execution_count = kept.execution_count
    return drop_install_output(nb)


def reference_outputs(ref, kept):
    """What a reader is shown of the reference run's training cell `kept`: its outputs without
    d2lmini's checkpoint notices (they name the build machine's folders, as its run record's
    `resumed_from` does: that keeps the checkpoint's name only), and its epoch lines
    drawn again from the record, as an uninterrupted run prints them: whether the run was
    resumed is said once, in the label (`describe`). Outputs are told apart by d2lmini's marks
    (d2lmini.notebook), not by their text."""
    outputs = []
    for output in kept.outputs:
        kind = output.get('metadata', {}).get(OUTPUT_KEY)
        if is_label(output) or kind == CHECKPOINT_NOTICE:
            continue
        if kind == EPOCH_LINES:
            output = copy.deepcopy(output)
            output['data']['text/plain'] = epoch_lines(ref.record)
        resumed = output.get('data', {}).get(runs.MIME, {}).get('resumed_from')
        if resumed:     # the checkpoint by its name, not by the build machine's path to it
            output = copy.deepcopy(output)
            checkpoint = output['data'][runs.MIME]['resumed_from']['checkpoint']
            output['data'][runs.MIME]['resumed_from']['checkpoint'] = posixpath.basename(checkpoint)
        outputs.append(output)
    return outputs


def epoch_lines(record):
    """A run's epoch lines, from its record, as d2lmini prints them."""
    return '\n'.join(progress.epoch_line(row['epoch'], record['epochs_planned'], row['train_loss'],
                                         row['val_loss'], row['val_acc'], row['examples_per_sec'],
                                         record['device']['name'])
                     for row in record['history'])


def drop_install_output(nb):
    """Clear the output of the install cell (tagged INSTALL_TAG): what it printed is true of the
    machine that ran it ("installed already"), not of a reader's. Returns `nb`."""
    for cell in nb.cells:
        if cell.cell_type == 'code' and INSTALL_TAG in cell.metadata.get('tags', []):
            cell.outputs, cell.execution_count = [], None
    return nb


def show_in_sources(chapter, refs, root=chapters.ROOT, write=True):
    """Put the outputs of each reference run of `refs` (framework id -> Reference, or an
    iterable of References, of any runs) into its source notebook's training cell for its run;
    returns the notebooks that changed (with write=False: that would change, writing nothing)."""
    by_path = {}
    for ref in (refs.values() if isinstance(refs, dict) else refs):
        by_path.setdefault(chapters.notebook_path(chapter, ref.framework, root), []).append(ref)

    def show_all(nb, path):
        for ref in by_path[path]:
            show(nb, ref, path.name)
    return rewrite_notebooks(by_path, show_all, write)


# --- the numbers and the figure -------------------------------------------------------------------

def quote(text, values, where='the prose'):
    """`text` with every marked place (see the module docstring) holding its value from `values`
    (key -> string, as run_numbers.quotes gives). Raises QuoteError for a key not in `values`."""
    def value(match, block):
        key = match.group('key')
        if key not in values:
            raise QuoteError(f'{where}: the prose quotes "{key}", which the reference runs do not '
                             f'give; use one of: {", ".join(sorted(values))}')
        # a block stands between blank lines, so that every Markdown reader ends the comment
        # (an HTML block) before it and the table before the closing comment
        text = '\n' + values[key].strip('\n') + '\n\n' if block else values[key]
        return match.group(1) + text + match.group(4)
    text = QUOTE_BLOCK.sub(lambda m: value(m, True), text)
    return QUOTE_SPAN.sub(lambda m: value(m, False), text)


def quote_cells(nb, values, where):
    """Quote every markdown cell of `nb` in place (where: the notebook, for errors)."""
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == 'markdown':
            cell.source = quote(cell.source, values, f'{where}, cell {index}')


def quote_in_sources(chapter, refs, root=chapters.ROOT, write=True):
    """Quote the numbers of the reference runs `refs` (all the chapter's: framework id ->
    Reference) in the prose of the chapter's notebooks; returns the notebooks that changed (with
    write=False: that would change, writing nothing). QuoteError for a key the runs do not give."""
    values = run_numbers.chapter_quotes(chapter, refs, root)
    return rewrite_notebooks(source_notebooks(chapter, root), lambda nb, path: quote_cells(
        nb, values, path.relative_to(root).as_posix()), write)


def refresh(chapter, refs, root=chapters.ROOT):
    """Bring the chapter notebooks up to date with its reference runs `refs` (all of them):
    redraw the figure and its PNG for the notebooks (figures.py), and quote the runs' numbers
    in the prose. Returns the notebooks that changed."""
    before = {path: path.read_bytes() for path in source_notebooks(chapter, root)}
    if refs:
        svg = run_numbers.draw(refs, run_numbers.figure_path(chapter, root),
                               run_numbers.Facts.of(chapter, root))
        png = svg.with_suffix('.png')
        if not png.exists() or figures.png_source_hash(png) != figures.source_hash(svg):
            figures.render(svg)
    quote_in_sources(chapter, refs, root)
    return [path for path, data in before.items() if path.read_bytes() != data]


# --- the run table --------------------------------------------------------------------------------

def _escape(text):
    """Markdown-escape text that goes into a table cell."""
    return re.sub(r'([\\`*_\[\]<>|{}$])', r'\\\1', str(text))


def _outputs(recs, ref=None):
    if isinstance(ref, list):       # named runs, one per training cell
        stale = [r.run for r in ref if not r.current]
        text = (f'reference runs ({", ".join(_escape(r.run) for r in ref)}): '
                f'{_escape(describe(ref[0]))}')
        if stale:
            text += (f' (**{", ".join(_escape(run) for run in stale)} produced by an earlier '
                     'version of this code**)')
        return text
    if ref:
        text = f'reference run: {_escape(describe(ref))}'
        if not ref.current:
            text += ' (**produced by an earlier version of this code**)'
        return text
    if not recs:
        return 'no training in this notebook (no budget applies)'
    described = []
    for rec in recs:
        text = (f"**{_escape(rec['budget']['name'])}** budget on **{_escape(rec['device']['name'])}** "
                f"({_escape(rec['budget']['reason'])})")
        if rec['status'] != 'finished':
            text += f", {_escape(rec['status'])} after {rec['epochs_run']} of {rec['epochs_requested']} epochs"
        if text not in described:
            described.append(text)
    return '; '.join(described)


def run_table(rows):
    """The run-it-yourself table and, after smoke runs or under reference runs of older code,
    a warning (MyST Markdown).

    rows: one (Framework, Colab address, download path relative to the page, run records of the
    executed notebook (runs.records), the Reference shown in its training cell, or a list of
    those of its named runs, or None) each.
    """
    lines = []
    for fw, colab_url, download, recs, ref in rows:
        links = f'[Open in Colab]({colab_url}) · {{download}}`Download notebook <{download}>`'
        if fw.colab_note:
            links += f' ({{ref}}`{fw.colab_note} <run-in-colab>`)'
        lines.append(f'* - {fw.label}\n  - {links}\n  - {_outputs(recs, ref)}')
    text = ('```{list-table}\n:header-rows: 1\n:widths: 14 46 40\n:class: framework-run-table\n\n'
            '* - Framework\n  - Run it yourself\n  - Training outputs on this page come from\n'
            + '\n'.join(lines) + '\n```\n')
    smoke = {(r['budget']['max_epochs'], r['budget']['max_train_batches'], r['budget']['max_val_batches'])
             for *_, recs, _ in rows for r in recs if r['budget']['name'] == 'smoke'}
    if smoke:
        caps = (' (at most {} epochs of {} training and {} validation batches)'.format(*smoke.pop())
                if len(smoke) == 1 else '')
        text += ('\n```{admonition} Smoke-test outputs\n:class: warning framework-smoke-warning\n'
                 f'Outputs marked **smoke** above come from a quick check that the code runs{caps}: '
                 'their losses, accuracies and curves say nothing about what the model can learn. '
                 'Run the notebook with `D2LMINI_BUDGET=full`, or on a GPU, for real results.\n```\n')
    stale = [fw.label for fw, *_, ref in rows if ref and not isinstance(ref, list)
             and not ref.current]
    stale += [fw.label for fw, *_, ref in rows if isinstance(ref, list)
              and not all(r.current for r in ref)]
    if stale:
        text += ('\n```{admonition} Outputs of an earlier version of the code\n'
                 ':class: warning framework-stale-warning\n'
                 f'The training outputs shown for {", ".join(stale)} come from a reference run of '
                 'code that has changed since: they may differ from what the code on this page '
                 'produces. `make reference` runs it again.\n```\n')
    return text
