"""The runs a chapter keeps, drawn beside a reader's own: `d2l.plot_beside_kept(trainer,
'googlenet')` (each adapter's, `beside_kept(framework)`) after a training cell shows the reader's curves next to the chapter's reference
run instead of in place of it (re-running a cell replaces the outputs it showed).

A chapter keeps its reference runs as run records (d2lmini/record.py) in
`book/<chapter>/reference/<framework>.json` (book/tools/reference.py writes them). They are
found as the chapter's notebooks are (d2lmini/chapter_code.py): under `D2LMINI_BOOK`, beside
the running notebook, or else in the book's release on GitHub.

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


def kept_run(chapter, framework, timeout=30):
    """The record of the reference run `chapter` keeps for `framework` (an id of
    d2lmini.frameworks), as a dict. Raises ChapterCodeError if there is none on this machine
    and none can be downloaded, or if the file is not a run record."""
    get_framework(framework)
    name = f'reference/{framework}.json'
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
            f'The chapter {chapter!r} keeps no {framework} reference run that could be read here '
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


def plot_runs(runs, fields=('train_loss', 'val_acc'), highlight=None, figsize=(8, 3.2)):
    """A Plot (shown as a PNG when it is a cell's value): one panel per field of `FIELDS`, each
    run's value after every epoch. `runs`: {label: record or Trainer}, drawn in order; the
    run labelled `highlight` (the reader's) is drawn last, thick and black, over the others.
    A value that is not finite (stored as None) is left out. Raises ValueError for an unknown
    field or a run that is not a record."""
    from matplotlib.figure import Figure
    unknown = [field for field in fields if field not in FIELDS]
    if unknown:
        raise ValueError(f'unknown field(s) {unknown}: choose from {", ".join(FIELDS)}')
    records = {label: record_of(run) for label, run in runs.items()}
    fig = Figure(figsize=figsize, dpi=100)
    axes = fig.subplots(1, len(fields), squeeze=False)[0]
    order = [label for label in records if label != highlight] + \
            ([highlight] if highlight in records else [])
    for ax, field in zip(axes, fields):
        for index, label in enumerate(order):
            points = [(row['epoch'], row[field]) for row in records[label]['history']
                      if isinstance(row.get(field), (int, float)) and math.isfinite(row[field])]
            style = (dict(color='black', linewidth=2.4, marker='o', zorder=3)
                     if label == highlight else
                     dict(color=COLORS[index % len(COLORS)], linewidth=1.4, marker='.',
                          alpha=0.85))
            ax.plot([e for e, _ in points], [v for _, v in points], label=label, **style)
        ax.set_xlabel('epoch')
        ax.set_ylabel(FIELDS[field])
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize='small')
    fig.tight_layout()
    return Plot(fig)


def plot_beside_kept(run, chapter, framework, fields=('train_loss', 'val_acc')):
    """`run` (a Trainer after its fit, or its record) drawn over the reference run `chapter`
    keeps for `framework`: what a training cell's own plot cannot show once the cell has run
    again. A Plot; raises ChapterCodeError as `kept_run` does."""
    kept = kept_run(chapter, framework)
    return plot_runs({f'kept: {chapter} ({describe_run(kept)})': kept,
                      f'your run ({describe_run(record_of(run))})': run},
                     fields, highlight=f'your run ({describe_run(record_of(run))})')


def beside_kept(framework):
    """`plot_beside_kept` for one framework: what each adapter exposes as
    `d2l.plot_beside_kept(run, chapter)`."""
    get_framework(framework)

    def plot_beside_kept_(run, chapter, fields=('train_loss', 'val_acc')):
        return plot_beside_kept(run, chapter, framework, fields)
    plot_beside_kept_.__name__ = 'plot_beside_kept'
    plot_beside_kept_.__doc__ = (f'`run` (a Trainer after its fit, or its record) drawn over '
                                 f'the {get_framework(framework).label} reference run that '
                                 f'`chapter` keeps (see d2lmini.kept_runs.plot_beside_kept).')
    return plot_beside_kept_
