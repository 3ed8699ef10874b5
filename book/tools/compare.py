"""A chapter's reference runs side by side: the comparison figure and the numbers its prose quotes.

The figure is a chapter figure, book/<chapter>/figures/reference_curves.svg, embedded in the
notebooks like the others (so Colab shows it too). The numbers stand in the prose itself, each in
a marked place that `quote` fills from the records:

    ... was <span data-reference="gap.e1.train_loss">0.0000</span> after the first epoch ...

    <!-- reference: table -->
    | framework | epochs | ... |
    <!-- end reference: table -->

So the notebook shows real numbers wherever it is opened (GitHub, Colab, Jupyter, the book);
MyST substitution (`{{ ... }}`) would work in the book only and show raw elsewhere. An author
writes an empty span (or the two comment lines) and lets `make reference` or
`python -m book.tools.reference --show-only` fill it; both also redraw the figure (`refresh`).
The build quotes the page again, and a test checks that the notebooks are up to date. Keys, all
strings (`quotes`):

    table                  the numbers below as a Markdown table, one row per framework
    count                  how many frameworks have a reference run
    <framework>.<field>    label (the framework's name); val_acc, val_loss, train_loss (last
                           epoch); epochs; minutes (wall time); examples_per_s (mean training
                           throughput); plateau_epochs (see `plateau_epochs`); all but label
                           are MISSING for a framework without a reference run.
    val_acc_range          lowest and highest final validation accuracy, '0.87–0.90'
    plateau_range          the same for plateau_epochs, '2–3' (or '2')
    minutes_range          the same for the wall time in minutes, '55–114'
    gap.e<N>.<field>       largest minus smallest train_loss / val_acc after epoch N, for N in
                           GAP_EPOCHS (4 decimals, or 'below 0.0001')
    gap.max.<field>        the largest such gap over all epochs, and
    gap.max.<field>_epoch  the epoch after which it occurs

`python -m book.tools.compare googlenet` prints the same numbers as a table.
"""
import argparse
import math
import pathlib
import re

import nbformat

from book.tools import attachments, chapters, reference
from d2lmini import frameworks

LN10 = math.log(10)     # the cross-entropy of a uniform guess over 10 classes
NEAR_LN10 = 0.05        # a training loss closer than this to ln 10 is still at chance
GAP_EPOCHS = (1, 5, 10)
MISSING = 'n/a'
FIGURE = 'reference_curves.svg'
QUOTE_SPAN = re.compile(r'(<span data-reference="(?P<key>[^"]*)">)(?P<value>.*?)(</span>)')
QUOTE_BLOCK = re.compile(r'(<!-- reference: (?P<key>\S+) -->\n)(?P<value>.*?\n|)'
                         r'(<!-- end reference: (?P=key) -->)', re.S)
COLORS = {'pytorch': '#ee4c2c', 'tensorflow': '#ff8f00', 'jax': '#5e97f6', 'mxnet': '#2e7d32'}


def plateau_epochs(history):
    """How many epochs from the first had a mean training loss within NEAR_LN10 of ln 10."""
    count = 0
    for row in history:
        if row['train_loss'] is None or abs(row['train_loss'] - LN10) >= NEAR_LN10:
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


def draw(refs, path):
    """The figure: training loss (left) and validation accuracy (right) per epoch, one line per
    framework, ln 10 marked. Written as SVG with no date or random ids, so a rebuild from the
    same records writes the same file."""
    import matplotlib
    matplotlib.use('Agg')
    from matplotlib import pyplot as plt
    with matplotlib.rc_context({'svg.hashsalt': 'd2lmini', 'svg.fonttype': 'none'}):
        fig, (loss_ax, acc_ax) = plt.subplots(1, 2, figsize=(9, 3.4), layout='constrained')
        for fw, ref in refs.items():
            epochs = curve(ref, 'epoch')
            style = dict(color=COLORS.get(fw), marker='o', markersize=3, linewidth=1.5,
                         label=frameworks.get(fw).label)
            loss_ax.plot(epochs, curve(ref, 'train_loss'), **style)
            acc_ax.plot(epochs, curve(ref, 'val_acc'), **style)
        loss_ax.axhline(LN10, color='grey', linestyle=':', linewidth=1)
        last = max((len(ref.record['history']) for ref in refs.values()), default=1)
        loss_ax.annotate('ln 10 (chance)', (last, LN10), xytext=(0, -11), ha='right',
                         textcoords='offset points', color='grey', fontsize=8)
        loss_ax.set(xlabel='epoch', ylabel='training loss (mean over the epoch)')
        acc_ax.set(xlabel='epoch', ylabel='validation accuracy')
        for ax in (loss_ax, acc_ax):
            ax.grid(alpha=0.3)
            ax.xaxis.get_major_locator().set_params(integer=True)
        acc_ax.legend(loc='lower right', fontsize=8)
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, metadata={'Date': None})
        plt.close(fig)
    return path


def figure_path(chapter, root=chapters.ROOT):
    return pathlib.Path(root) / 'book' / chapter / 'figures' / FIGURE


class QuoteError(reference.ReferenceRunError):
    """The prose marks a place for a number that the records do not give; says where."""


def quote(text, values, where='the prose'):
    """`text` with every marked place (see the module docstring) holding its value from `values`
    (key -> string, as `quotes` gives). Raises QuoteError for a key not in `values`."""
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


def quote_in_sources(chapter, root=chapters.ROOT, write=True):
    """Quote the reference runs' numbers in the prose of the chapter's notebooks; returns the
    notebooks that changed (with write=False: that would change, writing nothing)."""
    values = quotes(reference.load_all(chapter, root))
    paths = [path for path in (chapters.notebook_path(chapter, fw.id, root)
                               for fw in frameworks.FRAMEWORKS) if path.exists()]
    return reference.rewrite_notebooks(
        paths, lambda nb, path: quote_cells(nb, values, path.relative_to(root).as_posix()), write)


def refresh(chapter, root=chapters.ROOT):
    """Bring the chapter notebooks up to date with the reference runs: redraw the figure, embed it
    (attachment:reference_curves.svg) and quote the runs' numbers in the prose. Returns the
    notebooks that changed."""
    refs = reference.load_all(chapter, root)
    paths = (chapters.notebook_path(chapter, fw.id, root) for fw in frameworks.FRAMEWORKS)
    before = {path: path.read_bytes() for path in paths if path.exists()}
    if refs:
        draw(refs, figure_path(chapter, root))
        for path in before:
            attachments.embed(path)
    quote_in_sources(chapter, root)
    return [path for path, data in before.items() if path.read_bytes() != data]


def _number(value, digits):
    return MISSING if value is None else f'{value:.{digits}f}'


def _gap(value):
    """A gap to 4 decimals; one too small to show there is 'below 0.0001', not a false zero."""
    return 'below 0.0001' if value is not None and 0 < value < 0.00005 else _number(value, 4)


def _range(values, digits):
    values = [v for v in values if v is not None]
    if not values:
        return MISSING
    low, high = _number(min(values), digits), _number(max(values), digits)
    return low if low == high else f'{low}–{high}'


def framework_numbers(ref):
    last, history = ref.record['history'][-1], ref.record['history']
    speeds = [row['examples_per_sec'] for row in history if row.get('examples_per_sec')]
    return dict(val_acc=_number(last['val_acc'], 3), val_loss=_number(last['val_loss'], 3),
                train_loss=_number(last['train_loss'], 3), epochs=str(len(history)),
                minutes=str(round(ref.record['wall_time_s'] / 60)),
                examples_per_s=_number(sum(speeds) / len(speeds) if speeds else None, 0),
                plateau_epochs=str(plateau_epochs(history)))


def table(numbers):
    """The per-framework numbers as a Markdown table (numbers: framework id -> fields), which
    Jupyter, GitHub, Colab and MyST all render."""
    # short titles, so that the table fits the book's column; the prose around it says more
    columns = [('epochs', 'epochs'), ('train_loss', 'train loss'), ('val_loss', 'val loss'),
               ('val_acc', 'val acc'), ('minutes', 'minutes'), ('examples_per_s', 'examples/s'),
               ('plateau_epochs', 'epochs near ln 10')]
    row = lambda cells: '| ' + ' | '.join(cells) + ' |\n'
    return (row(['framework'] + [title for _, title in columns])
            + row([':--'] + ['--:'] * len(columns))
            + ''.join(row([fields['label']] + [fields[key] for key, _ in columns])
                      for fields in numbers.values()))


def quotes(refs):
    """What the prose can quote (see the module docstring): key -> string. refs: framework id ->
    reference.Reference."""
    numbers = {}
    for fw in frameworks.FRAMEWORKS:
        numbers[fw.id] = dict(framework_numbers(refs[fw.id]) if fw.id in refs else
                              dict.fromkeys(['val_acc', 'val_loss', 'train_loss', 'epochs',
                                             'minutes', 'examples_per_s', 'plateau_epochs'],
                                            MISSING), label=fw.label)
    values = dict(
        table=table(numbers), count=str(len(refs)),
        val_acc_range=_range([ref.record['history'][-1]['val_acc'] for ref in refs.values()], 3),
        plateau_range=_range([plateau_epochs(ref.record['history']) for ref in refs.values()], 0),
        minutes_range=_range([ref.record['wall_time_s'] / 60 for ref in refs.values()], 0))
    for fw, fields in numbers.items():
        values.update({f'{fw}.{field}': value for field, value in fields.items()})
    for field in ('train_loss', 'val_acc'):
        for epoch in GAP_EPOCHS:
            values[f'gap.e{epoch}.{field}'] = _gap(gap(refs, epoch, field))
        largest, epoch = largest_gap(refs, field)
        values[f'gap.max.{field}'] = _gap(largest)
        values[f'gap.max.{field}_epoch'] = MISSING if epoch is None else str(epoch)
    return values


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('chapter', choices=chapters.chapters())
    parser.add_argument('--refresh', action='store_true',
                        help='also redraw the figure, embed it and quote the numbers in the '
                             'notebooks')
    args = parser.parse_args(argv)
    refs = reference.load_all(args.chapter)
    if args.refresh:
        for path in refresh(args.chapter):
            print(f'updated {path.relative_to(chapters.ROOT)}')
    values = quotes(refs)
    print(f'{"framework":<12}{"current":>8}{"epochs":>7}{"val acc":>9}{"val loss":>9}'
          f'{"train loss":>11}{"minutes":>8}{"examples/s":>11}{"plateau":>8}')
    for fw, ref in refs.items():
        n = lambda field: values[f'{fw}.{field}']
        print(f'{fw:<12}{str(ref.current):>8}{n("epochs"):>7}{n("val_acc"):>9}{n("val_loss"):>9}'
              f'{n("train_loss"):>11}{n("minutes"):>8}{n("examples_per_s"):>11}'
              f'{n("plateau_epochs"):>8}')
    for epoch in GAP_EPOCHS:
        print(f'largest gap after epoch {epoch}: train loss {values[f"gap.e{epoch}.train_loss"]}, '
              f'val acc {values[f"gap.e{epoch}.val_acc"]}')
    for field in ('train_loss', 'val_acc'):
        print(f'largest gap of {field} over all epochs: {values[f"gap.max.{field}"]}, after epoch '
              f'{values[f"gap.max.{field}_epoch"]}')


if __name__ == '__main__':
    main()
