"""The figure of a cost report's arithmetic intensity: each layer's multiply-adds per byte
against its share of the model's work, with the balance points of chips marked, so that one
sees which layers a chip runs at its arithmetic peak and which wait on memory.

Framework-free: it reads `d2lmini.costs.Report`s, which every adapter's `cost_report` returns.
"""
from d2lmini.costs import Chip  # noqa: F401 (the chips it marks)

MARKERS = ('o', 's', '^', 'D', 'v')
COLORS = ('#0072b2', '#d55e00', '#009e73', '#cc79a7', '#e69f00')   # Okabe and Ito's palette


class Plot:
    """A bare matplotlib Figure (`.figure`) that a notebook shows as a PNG when it is a cell's
    value: without pyplot, which d2lmini never imports (its global figures would show twice),
    IPython knows no way to display a Figure."""

    def __init__(self, figure):
        self.figure = figure

    def savefig(self, *args, **kwargs):
        self.figure.savefig(*args, **kwargs)

    def _repr_png_(self):
        import io
        buffer = io.BytesIO()
        self.figure.savefig(buffer, format='png')
        return buffer.getvalue()


def plot_intensity(reports, chips=(), figsize=(6.4, 3.8)):
    """A Plot (a matplotlib Figure that a notebook shows as the cell's value) with a point
    per multiply-add layer (convolution or dense) of each report: x its arithmetic intensity
    (MACs per byte moved, log scale), y its share of the report's multiply-adds (%). A
    vertical line marks each chip's balance point (Chip.balance).

    reports: {label: Report}, drawn in order, each in its colour and marker. chips: Chips.
    Raises ValueError if a report has no multiply-adds.
    """
    from matplotlib.figure import Figure
    fig = Figure(figsize=figsize, dpi=100)
    ax = fig.add_subplot()
    for (label, report), marker, color in zip(reports.items(), MARKERS, COLORS):
        if not report.total.macs:
            raise ValueError(f'{label}: the report has no multiply-adds to share out')
        rows = [row for row in report.rows if row.cost.macs]
        ax.scatter([row.cost.intensity for row in rows],
                   [100 * row.cost.macs / report.total.macs for row in rows],
                   marker=marker, s=22, alpha=0.75, color=color, label=label)
    for chip, style in zip(chips, ('--', ':', '-.')):
        ax.axvline(chip.balance, color='#555555', linestyle=style, linewidth=1,
                   label=f'{chip.name}: {chip.balance:.1f} MACs/B')
    ax.set_xscale('log')
    ax.set_xlabel('arithmetic intensity (multiply-adds per byte moved)')
    ax.set_ylabel('share of the multiply-adds (%)')
    ax.grid(alpha=0.3, which='both')
    ax.legend(loc='upper left', fontsize='small')
    fig.tight_layout()
    return Plot(fig)
