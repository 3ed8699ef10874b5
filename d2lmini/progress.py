"""Training progress: a live figure in Jupyter/Colab, a progress bar during each epoch and one
line per epoch anywhere. Both are `Trainer` callbacks."""
import io
import sys

from d2lmini.callback import Callback
from d2lmini.notebook import EPOCH_LINES, OUTPUT_KEY, in_notebook


class ProgressBoard(Callback):
    """Curves drawn against the epoch, redrawn in place in one notebook output.

    The figure is a bare `matplotlib.figure.Figure`, not a pyplot one, so the inline backend
    does not show a second copy when the cell ends; in a terminal nothing is drawn at all. As
    a callback it plots the training loss at each sync point and the validation loss and
    accuracy after each epoch.
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
        if self.curves:
            ax.legend(loc='best')
        fig.tight_layout()
        buffer = io.BytesIO()
        fig.savefig(buffer, format='png')
        return buffer.getvalue()

    def show(self, empty=False):
        """Redraw the figure in its output area (creating it on the first call); `empty`: even
        with no curves yet, so that the figure's output comes first."""
        if not self.live or not (self.curves or empty):
            return
        from IPython.display import Image, display
        image = Image(data=self.render_png(), format='png')
        if self._handle is None:
            self._handle = display(image, display_id=True)
        else:
            self._handle.update(image)

    # --- as a Trainer callback --------------------------------------------------------------
    def on_fit_start(self, trainer):
        # After a resume: redraw what the checkpoint holds, as the first run drew it.
        per_sync = trainer.steps_per_sync
        done = trainer.losses
        for start in range(0, len(done), per_sync):
            chunk = done[start:start + per_sync]
            self.draw((start + len(chunk)) / trainer.train_batches_per_epoch, sum(chunk) / len(chunk),
                      'train loss')
        for row in trainer.history:
            self._draw_epoch(row)
        self.show(empty=True)

    def on_losses(self, trainer, losses):
        self.draw(trainer.epoch + trainer.step / trainer.train_batches_per_epoch, losses.mean(),
                  'train loss')
        self.show()

    def on_epoch_end(self, trainer):
        self._draw_epoch(trainer.history[-1])
        self.show()

    def _draw_epoch(self, row):
        self.draw(row['epoch'], row['val_loss'], 'val loss')
        self.draw(row['epoch'], row['val_acc'], 'val acc')


def epoch_line(epoch, max_epochs, train_loss, val_loss, val_acc, examples_per_sec, device):
    speed = 'n/a' if examples_per_sec is None else f'{examples_per_sec:.1f}'
    return (f'epoch {epoch}/{max_epochs}: train loss {train_loss:.4f}, val loss {val_loss:.4f}, '
            f'val acc {val_acc:.3f}, {speed} examples/s on {device}')


class _LiveText:
    """Where tqdm draws in a notebook: one display output holding the epoch lines so far and,
    below them, the bar, replaced in place on every write. No widget is created (a saved
    notebook would keep it as a broken reference), and when the bar closes only the epoch
    lines are left."""

    def __init__(self):
        self.lines, self.bar = [], ''
        self._handle = None

    def write(self, text):
        self.bar = text.strip('\r\n').strip()
        self._show()

    def flush(self):
        pass

    def add_line(self, line):
        self.lines.append(line)
        self.bar = ''
        self._show()

    def _show(self):
        text = '\n'.join(self.lines + [self.bar] if self.bar else self.lines)
        if not text:
            return
        from IPython.display import display
        bundle, metadata = {'text/plain': text}, {OUTPUT_KEY: EPOCH_LINES}
        if self._handle is None:
            self._handle = display(bundle, raw=True, metadata=metadata, display_id=True)
        else:
            self._handle.update(bundle, raw=True, metadata=metadata)


class EpochProgress(Callback):
    """A tqdm bar during each epoch (steps, steps/s, time left), then one line per epoch.

    The bar counts dispatched steps and never waits for the device. In a terminal it goes to
    stderr and is erased at the end of the epoch (`leave=False`), and the epoch line is
    printed to stdout. In a notebook the bar and the epoch lines share one text output, where
    the bar gives way to each epoch's line, so a saved notebook keeps the epoch lines only.
    """

    def __init__(self, live=None):
        self.live = in_notebook() if live is None else live
        self._bar = None

    def on_fit_start(self, trainer):
        self._text = _LiveText() if self.live else None
        if trainer.resumed_from is not None:
            for row in trainer.history:
                self._print(self._line(trainer, row) + ' (from the checkpoint)')

    def on_epoch_start(self, trainer):
        from tqdm import tqdm
        self._batch_size = getattr(trainer.train_loader, 'batch_size', None)
        # disable=None: no bar when stderr is not a terminal (a log file gets epoch lines only)
        self._bar = tqdm(total=trainer.train_batches_per_epoch, initial=trainer.start_step,
                         desc=f'epoch {trainer.epoch + 1}/{trainer.epochs_planned}',
                         unit='step', file=self._text or sys.stderr, leave=False,
                         disable=False if self.live else None, dynamic_ncols=not self.live,
                         ascii=True if self.live else None, mininterval=0.5 if self.live else 0.1)

    def on_train_step_end(self, trainer):
        self._bar.update(1)

    def on_losses(self, trainer, losses):
        # tqdm's rate is in steps/s; examples/s is what the epoch lines report.
        rate = self._bar.format_dict.get('rate')
        if rate and self._batch_size:
            self._bar.set_postfix_str(f'{rate * self._batch_size:.1f} examples/s', refresh=False)

    def on_epoch_end(self, trainer):
        self._close()
        self._print(self._line(trainer, trainer.history[-1]))

    def on_fit_end(self, trainer):
        self._close()

    def _close(self):
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def _print(self, line):
        if self._text is not None:
            self._text.add_line(line)
        else:
            print(line, flush=True)

    @staticmethod
    def _line(trainer, row):
        return epoch_line(row['epoch'], trainer.epochs_planned, row['train_loss'],
                          row['val_loss'], row['val_acc'], row['examples_per_sec'],
                          trainer.device_name())
