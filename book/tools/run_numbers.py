"""A chapter's reference runs side by side: the numbers its prose quotes and the comparison
figure, computed from the kept records (kept_runs.py); showing.py puts them in the notebooks.

What the numbers measure against comes from the chapter (`Facts`, the `reference` section of
its chapter.yml), e.g. for GoogLeNet on Fashion-MNIST:

    reference:
      classes: 10          # a uniform guess over 10 classes has the loss ln 10: chance
      near_chance: 0.05    # a training loss closer than this to ln 10 is still at chance
      gap_epochs: [1, 5, 10]

A chapter without the section gets no number measured against chance (no plateau, no chance
line in the figure) and no gap after a given epoch; the rest is the same.

Keys of `quotes`, all strings:

    table                  the numbers below as a Markdown table, one row per framework
    count                  how many frameworks have a reference run
    <framework>.<field>    label (the framework's name); val_acc, val_loss, train_loss (last
                           epoch); epochs; minutes (wall time); examples_per_s (mean training
                           throughput); plateau_epochs (see `plateau_epochs`; with `classes`
                           only); all but label are MISSING for a framework without a run.
    val_acc_range          lowest and highest final validation accuracy, '0.87–0.90'
    plateau_range          the same for plateau_epochs, '2–3' (or '2'; with `classes` only)
    minutes_range          the same for the wall time in minutes, '55–114'
    gap.e<N>.<field>       largest minus smallest train_loss / val_acc after epoch N, for N in
                           `gap_epochs` (4 decimals, or 'below 0.0001')
    gap.max.<field>        the largest such gap over all epochs, and
    gap.max.<field>_epoch  the epoch after which it occurs

A chapter whose notebooks train named runs (training cells tagged `run-<name>`, the worked
exercises) quotes them too (`named_quotes`), each read over the same budget of epochs, against
the first epochs of another chapter's reference runs as a baseline:

    reference:
      baseline: googlenet  # the chapter whose reference runs are the baseline, as run 'baseline'
      budget_epochs: 2     # the epochs each named run trains; the baseline is cut to them

    run.<run>.<framework>.<field>  train_loss_e1 (the first epoch's), train_loss, val_loss,
                           val_acc (the last epoch's), left_chance (the first epoch whose training
                           loss is near_chance or more below ln classes, over the whole record:
                           the baseline's full run; '>N' if none), seconds_per_epoch (mean
                           time of an epoch, validation included), minutes (of those epochs)
    run.<run>.<field>_range    lowest and highest over the frameworks
    delta.<run>.<other>.<field>_range   per framework, <run> minus <other> (signed), lowest and
                           highest, for train_loss_e1, train_loss, val_loss, val_acc
    ratio.<run>.<other>.seconds_per_epoch_range   the same for <run> over <other>, from the
                           frameworks whose two runs ran on the same kind of machine (CPU model,
                           core count, platform): times from different machines do not compare
    runs.table             all of them as a Markdown table, a row per run and framework

Every run that a training cell names gets its keys, with MISSING where it has no record yet.

`python -m book.tools.compare <chapter>` prints them as a table.
"""
import dataclasses
import math
import pathlib

import nbformat

from book.tools import chapters, kept_runs
from d2lmini import frameworks

MISSING = 'n/a'
FIGURE = 'reference_curves.svg'


@dataclasses.dataclass(frozen=True)
class Facts:
    """What the chapter's runs are read against (chapter.yml, section `reference`)."""
    classes: int = None             # a uniform guess over them has the loss ln classes: chance
    near_chance: float = None       # a training loss closer than this to chance is still at it
    gap_epochs: tuple = ()          # the epochs after which the gaps between the runs are quoted
    baseline: str = None            # the chapter whose reference runs are the named runs' baseline
    budget_epochs: int = None       # the epochs each named run trains (the baseline is cut to them)

    @classmethod
    def of(cls, chapter, root=chapters.ROOT):
        """The chapter's facts (none without a `reference` section); ChapterError naming a key
        that is unknown or missing."""
        section = chapters.facts(chapter, root).get('reference') or {}
        where = f'book/{chapter}/chapter.yml, section reference'
        unknown = set(section) - {field.name for field in dataclasses.fields(cls)}
        if unknown:
            raise chapters.ChapterError(f'{where}: unknown keys {", ".join(sorted(unknown))}')
        if ('classes' in section) != ('near_chance' in section):
            raise chapters.ChapterError(f'{where}: classes and near_chance go together')
        return cls(**dict(section, gap_epochs=tuple(section.get('gap_epochs', ()))))

    @property
    def chance_loss(self):
        """The cross-entropy of a uniform guess, ln classes; None without classes."""
        return None if self.classes is None else math.log(self.classes)


def plateau_epochs(history, facts):
    """How many epochs from the first had a mean training loss within facts.near_chance of
    the chance loss (facts.classes must be given)."""
    count = 0
    for row in history:
        if row['train_loss'] is None or abs(row['train_loss'] - facts.chance_loss) >= facts.near_chance:
            break
        count += 1
    return count


def curve(ref, field):
    return [row[field] for row in ref.record['history']]


def gap(refs, epoch, field):
    """Largest minus smallest value of `field` after `epoch` over the runs that reached it,
    or None with fewer than two."""
    values = [ref.record['history'][epoch - 1][field] for ref in refs.values()
              if len(ref.record['history']) >= epoch]
    values = [v for v in values if v is not None]
    return max(values) - min(values) if len(values) >= 2 else None


def largest_gap(refs, field):
    """(gap, epoch): the largest `gap` of `field` over the epochs that at least two runs reached,
    and the first epoch where it occurs; (None, None) with fewer than two runs."""
    epochs = range(1, max((len(ref.record['history']) for ref in refs.values()), default=0) + 1)
    gaps = [(value, epoch) for epoch in epochs
            if (value := gap(refs, epoch, field)) is not None]
    return max(gaps, key=lambda pair: (pair[0], -pair[1])) if gaps else (None, None)


def figure_path(chapter, root=chapters.ROOT):
    return pathlib.Path(root) / 'book' / chapter / 'figures' / FIGURE


def draw(refs, path, facts):
    """The figure: training loss (left) and validation accuracy (right) per epoch, one line per
    framework in its colour and marker, the chance loss marked (given facts.classes). Written as SVG with
    no date or random ids, so a rebuild from the same records writes the same file."""
    import matplotlib       # here, not above: slow to import, and needs its backend set first
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    # Text of 13 pt in a figure 9 inches wide: about 13 px where the page shows it 700 px wide.
    with matplotlib.rc_context({'svg.hashsalt': 'd2lmini', 'svg.fonttype': 'none',
                                'font.size': 13, 'legend.fontsize': 12}):
        fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.8), layout='constrained')
        for fw, ref in refs.items():
            epochs = curve(ref, 'epoch')
            framework = frameworks.get(fw)
            style = dict(color=framework.color, marker=framework.marker, markersize=5,
                         linewidth=1.5, label=framework.label)
            loss_ax.plot(epochs, curve(ref, 'train_loss'), **style)
            acc_ax.plot(epochs, curve(ref, 'val_acc'), **style)
        if facts.classes is not None:
            loss_ax.axhline(facts.chance_loss, color='grey', linestyle=':', linewidth=1)
            last = max((len(ref.record['history']) for ref in refs.values()), default=1)
            loss_ax.annotate(f'ln {facts.classes} (chance)', (last, facts.chance_loss),
                             xytext=(0, -11), ha='right', textcoords='offset points',
                             color='grey', fontsize=12)
        loss_ax.set(xlabel='epoch', ylabel='training loss (mean over the epoch)')
        acc_ax.set(xlabel='epoch', ylabel='validation accuracy')
        for ax in (loss_ax, acc_ax):
            ax.grid(alpha=0.3)
            ax.xaxis.get_major_locator().set_params(integer=True)
        acc_ax.legend(loc='lower right')
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, metadata={'Date': None})
        plt.close(fig)
    return path


def _number(value, digits):
    return MISSING if value is None else f'{value:.{digits}f}'


def _gap(value):
    """A gap to 4 decimals; one too small to show there is 'below 0.0001', not a false zero."""
    return 'below 0.0001' if value is not None and 0 < value < 0.00005 else _number(value, 4)


def _signed(value, digits):
    return f'{"+" if value >= 0 else "−"}{abs(value):.{digits}f}'


def _range(values, digits, signed=False):
    """'low–high' of the values that are not None (one value if they round alike); signed:
    each with its sign, '−0.012 to +0.004'."""
    values = [v for v in values if v is not None]
    if not values:
        return MISSING
    text = _signed if signed else _number
    low, high = text(min(values), digits), text(max(values), digits)
    return low if low == high else f'{low} to {high}' if signed else f'{low}–{high}'


def columns(facts):
    """(field, title) of the per-framework numbers, in the table's order; short titles, so that
    the table fits the book's column (the prose around it says more)."""
    chance = [('plateau_epochs', f'epochs near ln {facts.classes}')] if facts.classes else []
    return [('epochs', 'epochs'), ('train_loss', 'train loss'), ('val_loss', 'val loss'),
            ('val_acc', 'val acc'), ('minutes', 'minutes'), ('examples_per_s', 'examples/s')] + chance


def framework_numbers(ref, facts):
    last, history = ref.record['history'][-1], ref.record['history']
    speeds = [row['examples_per_sec'] for row in history if row.get('examples_per_sec')]
    numbers = dict(val_acc=_number(last['val_acc'], 3), val_loss=_number(last['val_loss'], 3),
                   train_loss=_number(last['train_loss'], 3), epochs=str(len(history)),
                   minutes=str(round(ref.record['wall_time_s'] / 60)),
                   examples_per_s=_number(sum(speeds) / len(speeds) if speeds else None, 0))
    if facts.classes:
        numbers['plateau_epochs'] = str(plateau_epochs(history, facts))
    return numbers


def table(numbers, facts):
    """The per-framework numbers as a Markdown table (numbers: framework id -> fields), which
    Jupyter, GitHub, Colab and MyST all render."""
    row = lambda cells: '| ' + ' | '.join(cells) + ' |\n'
    return (row(['framework'] + [title for _, title in columns(facts)])
            + row([':--'] + ['--:'] * len(columns(facts)))
            + ''.join(row([fields['label']] + [fields[key] for key, _ in columns(facts)])
                      for fields in numbers.values()))


def quotes(refs, facts):
    """What the prose can quote (see the module docstring): key -> string. refs: framework id ->
    kept_runs.Reference; facts: the chapter's Facts."""
    numbers = {}
    for fw in frameworks.FRAMEWORKS:
        numbers[fw.id] = dict(framework_numbers(refs[fw.id], facts) if fw.id in refs else
                              dict.fromkeys([key for key, _ in columns(facts)], MISSING),
                              label=fw.label)
    values = dict(
        table=table(numbers, facts), count=str(len(refs)),
        val_acc_range=_range([ref.record['history'][-1]['val_acc'] for ref in refs.values()], 3))
    if facts.classes:
        values['plateau_range'] = _range([plateau_epochs(ref.record['history'], facts)
                                          for ref in refs.values()], 0)
    values['minutes_range'] = _range([ref.record['wall_time_s'] / 60 for ref in refs.values()], 0)
    for fw, fields in numbers.items():
        values.update({f'{fw}.{field}': value for field, value in fields.items()})
    for field in ('train_loss', 'val_acc'):
        for epoch in facts.gap_epochs:
            values[f'gap.e{epoch}.{field}'] = _gap(gap(refs, epoch, field))
        largest, epoch = largest_gap(refs, field)
        values[f'gap.max.{field}'] = _gap(largest)
        values[f'gap.max.{field}_epoch'] = MISSING if epoch is None else str(epoch)
    return values


# --- named runs (the worked exercises) ------------------------------------------------------------

BASELINE = 'baseline'
NAMED_COLUMNS = [('train_loss_e1', 'train loss, epoch 1'), ('train_loss', 'train loss, last'),
                 ('val_loss', 'val loss'), ('val_acc', 'val acc'),
                 ('left_chance', 'left ln 10 in epoch'), ('seconds_per_epoch', 's per epoch')]
NAMED_FIELDS = [key for key, _ in NAMED_COLUMNS] + ['minutes']
DELTA_FIELDS = ('train_loss_e1', 'train_loss', 'val_loss', 'val_acc')


def left_chance(history, facts):
    """The first epoch whose mean training loss is facts.near_chance or more below the chance
    loss, or None."""
    return next((row['epoch'] for row in history if row['train_loss'] is not None
                 and row['train_loss'] <= facts.chance_loss - facts.near_chance), None)


def named_values(record, facts, epochs=None):
    """{field: number or None} of NAMED_FIELDS for a run record, over its first `epochs` epochs
    (all if None); left_chance over the whole record; and `machine`, what its times depend on."""
    history = record['history'][:epochs] if epochs else record['history']
    last, seconds = history[-1], [row.get('seconds') for row in history]
    seconds = [s for s in seconds if s is not None]
    left = left_chance(record['history'], facts) if facts.classes else None
    host = record.get('host') or {}
    return dict(machine=(host.get('cpu_model'), host.get('cpu_count'), host.get('platform')),
                train_loss_e1=history[0]['train_loss'], train_loss=last['train_loss'],
                val_loss=last['val_loss'], val_acc=last['val_acc'],
                left_chance=left if left is not None else -len(record['history']),
                seconds_per_epoch=sum(seconds) / len(seconds) if seconds else None,
                minutes=sum(seconds) / 60 if seconds else None)


def _named_text(field, value):
    if value is None:
        return MISSING
    if field == 'left_chance':
        return str(value) if value > 0 else f'>{-value}'
    return _number(value, 0 if field in ('seconds_per_epoch', 'minutes') else 3)


def run_names(chapter, root=chapters.ROOT):
    """The names of the runs the chapter's notebooks that exist train (their training cells'
    `run-<name>` tags), in the order of the first notebook."""
    names = []
    paths = (chapters.notebook_path(chapter, fw.id, root) for fw in frameworks.FRAMEWORKS)
    for path in (path for path in paths if path.exists()):
        for cell in nbformat.read(str(path), as_version=4).cells:
            if cell.cell_type == 'code' and chapters.TRAIN_TAG in cell.metadata.get('tags', []):
                name = chapters.run_name(cell)
                if name is not None and name not in names:
                    names.append(name)
    return names


def named_quotes(names, named, facts, baseline=None):
    """The keys of the module docstring for the runs `names` (run -> {framework id ->
    kept_runs.Reference} in `named`, which may lack some) plus BASELINE, read from `baseline`
    (framework id -> Reference of facts.baseline's chapter) cut to facts.budget_epochs."""
    epochs = facts.budget_epochs
    runs = {BASELINE: {fw: named_values(ref.record, facts, epochs)
                       for fw, ref in (baseline or {}).items()}}
    runs.update({name: {fw: named_values(ref.record, facts, epochs)
                        for fw, ref in named.get(name, {}).items()} for name in names})
    values = {}
    for name, by_fw in runs.items():
        for fw in frameworks.IDS:
            for field in NAMED_FIELDS:
                values[f'run.{name}.{fw}.{field}'] = _named_text(field, by_fw.get(fw, {}).get(field))
        for field in NAMED_FIELDS:
            found = [v[field] for v in by_fw.values() if v[field] is not None]
            if field == 'left_chance':
                texts = sorted({_named_text(field, v) for v in found}, key=lambda t: (t[0] == '>', t))
                values[f'run.{name}.{field}_range'] = (MISSING if not texts else texts[0] if
                                                       len(texts) == 1 else f'{texts[0]}–{texts[-1]}')
            else:
                values[f'run.{name}.{field}_range'] = _range(
                    found, 0 if field in ('seconds_per_epoch', 'minutes') else 3)
    for name, by_fw in runs.items():
        for other, other_fw in runs.items():
            if other == name:
                continue
            both = [fw for fw in by_fw if fw in other_fw]
            for field in DELTA_FIELDS:
                values[f'delta.{name}.{other}.{field}_range'] = _range(
                    [by_fw[fw][field] - other_fw[fw][field] for fw in both
                     if by_fw[fw][field] is not None and other_fw[fw][field] is not None], 3,
                    signed=True)
            values[f'ratio.{name}.{other}.seconds_per_epoch_range'] = _range(
                [by_fw[fw]['seconds_per_epoch'] / other_fw[fw]['seconds_per_epoch'] for fw in both
                 if by_fw[fw]['seconds_per_epoch'] and other_fw[fw]['seconds_per_epoch']
                 and by_fw[fw]['machine'] == other_fw[fw]['machine']], 2)
    row = lambda cells: '| ' + ' | '.join(cells) + ' |\n'
    table = (row(['run', 'framework'] + [title for _, title in NAMED_COLUMNS])
             + row([':--', ':--'] + ['--:'] * len(NAMED_COLUMNS)))
    for name, by_fw in runs.items():
        for fw in frameworks.FRAMEWORKS:
            if fw.id in by_fw:
                table += row([name, fw.label] + [values[f'run.{name}.{fw.id}.{key}']
                                                 for key, _ in NAMED_COLUMNS])
    values['runs.table'] = table
    return values


def chapter_quotes(chapter, refs, root=chapters.ROOT):
    """Everything the chapter's prose can quote: `quotes` of its reference runs `refs`
    (framework id -> Reference) and, if its notebooks train named runs, `named_quotes` of
    those kept (with its facts' baseline chapter's runs). ReferenceRunError if a kept run
    cannot be read."""
    facts = Facts.of(chapter, root)
    values = quotes(refs, facts)
    names = run_names(chapter, root)
    if names:
        baseline = kept_runs.load_all(facts.baseline, root) if facts.baseline else {}
        values.update(named_quotes(names, kept_runs.load_named(chapter, root), facts, baseline))
    return values
