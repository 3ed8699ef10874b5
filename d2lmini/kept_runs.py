"""The runs a chapter keeps, drawn beside a reader's own: `d2l.plot_beside_kept(trainer,
'googlenet')` (each adapter's, `bound(framework)`) after a training cell shows the reader's
curves next to the chapter's reference run instead of in place of it (re-running a cell
replaces the outputs it showed); `d2l.plot_kept({...})` draws several kept runs, e.g. the
worked exercises' variants against the chapter's baseline.

A chapter keeps its reference runs as run records (d2lmini/record.py) in
`book/<chapter>/reference/<framework>.json`, and a notebook that trains several named runs
(the worked exercises) one per run, `<framework>.<run>.json` (book/tools/reference.py writes
them). They are found as the chapter's notebooks are (d2lmini/chapter_code.py): under
`D2LMINI_BOOK`, beside the running notebook, or else in the book's release on GitHub.

Framework-free: records are plain data, and the figure is matplotlib's.
"""
import json
import math
import urllib.error
import urllib.request

from d2lmini import chapter_code
from d2lmini.frameworks import get as get_framework
from d2lmini.intensity_plot import COLORS, Plot

FIELDS = {'train_loss': 'training loss (nats)', 'val_loss': 'validation loss (nats)',
          'val_acc': 'validation accuracy'}


def kept_run(chapter, framework, run=None, timeout=30):
    """The record of the reference run `chapter` keeps for `framework` (an id of
    d2lmini.frameworks), as a dict: its one run, or the run named `run` (a training cell tagged
    `run-<name>`). Raises ChapterCodeError if there is none on this machine and none can be
    downloaded, or if the file is not a run record."""
    get_framework(framework)
    name = f'reference/{framework}.json' if run is None else f'reference/{framework}.{run}.json'
    path = chapter_code.local_file(chapter, name)
    try:
        if path is not None:
            text, origin = path.read_text(encoding='utf-8'), str(path)
        else:
            origin = f'{chapter_code.RELEASE_URL}/{chapter}/{name}'
            with urllib.request.urlopen(origin, timeout=timeout) as response:
                text = response.read().decode('utf-8')
        record = json.loads(text)
    except (OSError, ValueError, urllib.error.URLError) as error:
        raise chapter_code.ChapterCodeError(
            f'The chapter {chapter!r} keeps no {framework} reference run'
            f'{"" if run is None else f" named {run!r}"} that could be read here '
            f'({error}): looked for {name} under ../{chapter}/ and ./book/{chapter}/, then in '
            f'the release. Run this notebook from its folder in a checkout of the book, or set '
            f'D2LMINI_BOOK to the checkout\'s book/ folder.') from error
    if not isinstance(record, dict) or not isinstance(record.get('history'), list):
        raise chapter_code.ChapterCodeError(f'{origin} is not a run record (it has no history)')
    return record


def record_of(run):
    """A run record from a record (a dict) or from a Trainer after its fit."""
    record = run if isinstance(run, dict) else getattr(run, 'record', None)
    if not isinstance(record, dict) or 'history' not in record:
        raise ValueError(f'{run!r} is neither a run record nor a Trainer that has run a fit: pass '
                         f'trainer (after trainer.fit) or trainer.record.')
    return record


def describe_run(record):
    """'10 epochs, budget full, cpu' (what a legend says of a kept run)."""
    epochs = len(record['history'])
    budget = (record.get('budget') or {}).get('name', '?')
    device = (record.get('device') or {}).get('name', '?')
    return f'{epochs} epoch{"s" if epochs != 1 else ""}, budget {budget}, {device}'


def plot_runs(runs, fields=('train_loss', 'val_acc'), highlight=None, epochs=None,
              figsize=(8, 3.2), note=None):
    """A Plot (shown as a PNG when it is a cell's value): one panel per field of `FIELDS`, each
    run's value after every epoch (the first `epochs` only, if given: a longer run cut to the
    budget of the others). `runs`: {label: record or Trainer}, drawn in order. `highlight`: the
    label of the reader's run, drawn last, thick and black, over the others; or a set of labels,
    drawn last and thick in their colours. A value that is not finite (stored as None) is left
    out. `note`: a line of text under the panels. Raises ValueError for an unknown field or a
    run that is not a record."""
    from matplotlib.figure import Figure
    unknown = [field for field in fields if field not in FIELDS]
    if unknown:
        raise ValueError(f'unknown field(s) {unknown}: choose from {", ".join(FIELDS)}')
    records = {label: record_of(run) for label, run in runs.items()}
    one = isinstance(highlight, str)
    highlighted = {highlight} if one else set(highlight or ())
    colours = {label: COLORS[index % len(COLORS)] for index, label in
               enumerate(label for label in records if not (one and label == highlight))}
    order = [label for label in records if label not in highlighted] + \
            [label for label in records if label in highlighted]
    fig = Figure(figsize=figsize, dpi=100)
    axes = fig.subplots(1, len(fields), squeeze=False)[0]
    for ax, field in zip(axes, fields):
        for label in order:
            points = [(row['epoch'], row[field]) for row in records[label]['history']
                      if isinstance(row.get(field), (int, float)) and math.isfinite(row[field])
                      and (epochs is None or row['epoch'] <= epochs)]
            style = (dict(color='black' if one else colours[label], linewidth=2.4, marker='o',
                          zorder=3) if label in highlighted else
                     dict(color=colours[label], linewidth=1.4, marker='.', alpha=0.85))
            ax.plot([e for e, _ in points], [v for _, v in points], label=label, **style)
        ax.set_xlabel('epoch')
        ax.set_ylabel(FIELDS[field])
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
    if records:
        axes[0].legend(fontsize='small')
    if note:
        fig.text(0.01, 0.01, note, fontsize='small', color='dimgrey', va='bottom')
    fig.tight_layout(rect=(0, 0.07 if note else 0, 1, 1))
    return Plot(fig)


def plot_kept(framework, runs, fields=('train_loss', 'val_acc'), epochs=None, fresh=None):
    """The runs `runs` ({label: (chapter, run name or None)}) of `framework` in one figure
    (`plot_runs`), cut to the first `epochs` epochs. A run trained in this notebook (`fresh`:
    {run name: a Trainer after its fit, or its record}) is drawn in place of the kept run of
    that name, thick and labelled '<label> (trained here)': running a training cell again adds
    the reader's run next to the kept ones instead of erasing them. A kept run that cannot be
    read (not made yet, or offline) is left out and named under the figure, so the figure
    shows what there is. Returns a Plot."""
    drawn, trained_here, missing = {}, set(), []
    fresh = fresh or {}
    for label, (chapter, name) in runs.items():
        if name is not None and name in fresh:
            label = f'{label} (trained here)'
            drawn[label] = fresh[name]
            trained_here.add(label)
            continue
        try:
            drawn[label] = kept_run(chapter, framework, name)
        except chapter_code.ChapterCodeError:
            missing.append(label)
    note = f'not kept yet (no reference run to read): {", ".join(missing)}' if missing else None
    return plot_runs(drawn, fields, highlight=trained_here, epochs=epochs, note=note)


def plot_beside_kept(run, chapter, framework, fields=('train_loss', 'val_acc'), kept=None):
    """`run` (a Trainer after its fit, or its record) drawn over the reference run `chapter`
    keeps for `framework` (its one run, or the run named `kept`): what a training cell's own
    plot cannot show once the cell has run again. A Plot; raises ChapterCodeError as `kept_run`
    does."""
    record = kept_run(chapter, framework, kept)
    which = chapter if kept is None else f'{chapter}/{kept}'
    return plot_runs({f'kept: {which} ({describe_run(record)})': record,
                      f'your run ({describe_run(record_of(run))})': run},
                     fields, highlight=f'your run ({describe_run(record_of(run))})')


def bound(framework):
    """(kept_run, plot_kept, plot_beside_kept) for one framework: what each adapter exposes as
    `d2l.kept_run(chapter, run=None)`, `d2l.plot_kept(runs, ...)` and
    `d2l.plot_beside_kept(trainer, chapter, ...)`."""
    label = get_framework(framework).label

    def kept_run_(chapter, run=None):
        return kept_run(chapter, framework, run)

    def plot_kept_(runs, fields=('train_loss', 'val_acc'), epochs=None, fresh=None):
        return plot_kept(framework, runs, fields, epochs, fresh)

    def plot_beside_kept_(run, chapter, fields=('train_loss', 'val_acc'), kept=None):
        return plot_beside_kept(run, chapter, framework, fields, kept)

    for function, name, doc in (
            (kept_run_, 'kept_run', f'The record of the {label} reference run `chapter` keeps '
                                    f'(the one named `run`, if given); see d2lmini.kept_runs.kept_run.'),
            (plot_kept_, 'plot_kept', f'{label} kept runs ({{label: (chapter, run name or None)}}) '
                                      f'in one figure; see d2lmini.kept_runs.plot_kept.'),
            (plot_beside_kept_, 'plot_beside_kept',
             f'`run` (a Trainer after its fit, or its record) drawn over the {label} reference run '
             f'that `chapter` keeps (see d2lmini.kept_runs.plot_beside_kept).')):
        function.__name__, function.__doc__ = name, doc
    return kept_run_, plot_kept_, plot_beside_kept_
