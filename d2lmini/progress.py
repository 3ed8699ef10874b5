"""Training progress: one live figure in Jupyter/Colab, one printed line per epoch anywhere."""
import io


def in_notebook():
    """True inside a Jupyter or Colab kernel, False in a terminal or a plain script."""
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and hasattr(shell, 'kernel')


class ProgressBoard:
    """Curves drawn against the epoch, redrawn in place in one notebook output.

    The figure is a bare `matplotlib.figure.Figure`, not a pyplot one, so the inline backend
    does not show a second copy when the cell ends; in a terminal nothing is drawn at all.
    """

    def __init__(self, xlabel='epoch', ylim=None, figsize=(5, 3.2), live=None):
        self.xlabel, self.ylim, self.figsize = xlabel, ylim, figsize
        self.live = in_notebook() if live is None else live
        self.curves = {}        # label -> ([x], [y])
        self._handle = None

    def draw(self, x, y, label):
        xs, ys = self.curves.setdefault(label, ([], []))
        xs.append(float(x))
        ys.append(float(y))

    def render_png(self):
        from matplotlib.figure import Figure
        fig = Figure(figsize=self.figsize, dpi=100)
        ax = fig.add_subplot()
        for (label, (xs, ys)), style in zip(self.curves.items(), ('-', '--', '-.', ':')):
            ax.plot(xs, ys, style, label=label, marker='o' if len(xs) < 3 else None)
        ax.set_xlabel(self.xlabel)
        if self.ylim:
            ax.set_ylim(*self.ylim)
        ax.grid(alpha=0.3)
        ax.legend(loc='best')
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format='png')
        return buffer.getvalue()

    def show(self):
        """Redraw the figure in its output area (creating it on the first call)."""
        if not self.live or not self.curves:
            return
        from IPython.display import Image, display
        image = Image(data=self.render_png(), format='png')
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)


def epoch_line(epoch, max_epochs, train_loss, val_loss, val_acc, examples_per_sec, device):
    return (f'epoch {epoch}/{max_epochs}: train loss {train_loss:.4f}, val loss {val_loss:.4f}, '
            f'val acc {val_acc:.3f}, {examples_per_sec:.1f} examples/s on {device}')
