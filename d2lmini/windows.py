"""What each convolution and pooling window sees of real input versus padding, the same in every
framework: `model.window_report(X_shape)`.

Computed framework-free from the rows of a cost report (d2lmini/costs.py): each convolution
and pooling row gives its input and output sizes, kernel, stride and padding (a (before, after)
pair per spatial axis, which each adapter reads from its framework's layer). Along one axis of
n_in input pixels, padded by `before` and `after`, a window of k taps with stride s makes
n_out = (n_in + before + after - k) // s + 1 outputs (`output_size`); output o reads the
padded input's pixels o*s .. o*s + k - 1, that is input pixels o*s - before + t, t = 0..k-1,
and a tap is real when 0 <= o*s - before + t < n_in, padding otherwise. A window's taps are the
product of its axes' taps, so along every axis and then as a product:

- real taps: the share of the window's taps that land on real input, averaged over the output
  positions (the product of the axes' averages);
- padding-only outputs: output positions (per channel) whose whole window lies on padding:
  they are made of padding alone (a constant, or -inf for a max pool with nothing else);
- dead taps: kernel positions that land on padding at every output position. Such a weight
  of a convolution only ever multiplies zeros: it contributes nothing and gets no gradient.
- jump: input pixels (of the model's input) between neighbouring outputs, the product of
  the strides on the way from the input to the layer's output.

Sizes are per example and channels first, in pixels; shares are fractions (the table prints
percents). A global pool's window is its whole input, whatever the input size.
"""
import dataclasses
import math

from d2lmini import costs
from d2lmini.errors import D2lminiError

WINDOW_KINDS = ('conv', 'max_pool', 'avg_pool')


class WindowError(D2lminiError, ValueError):
    """The window report cannot follow the model's sizes (or the model does not run)."""


def output_size(n_in, kernel, stride, before=0, after=0):
    """Outputs along one axis of a window of `kernel` taps moved by `stride` over `n_in` pixels
    padded by `before` and `after`: (n_in + before + after - kernel) // stride + 1, as
    PyTorch, TensorFlow, JAX and MXNet (pooling_convention='valid') compute it; below 1, the
    layer does not run."""
    return (n_in + before + after - kernel) // stride + 1


def _ceil_div(a, b):
    return -((-a) // b)


def axis_windows(n_in, n_out, kernel, stride, before):
    """Along one axis: (real taps summed over the n_out outputs, taps that are real at some
    output, outputs whose every tap is padding). Closed forms, O(kernel): tap t is real at
    the outputs o with before - t <= o*stride <= n_in - 1 + before - t."""
    real = live = 0
    for t in range(kernel):
        first = max(0, _ceil_div(before - t, stride))
        last = min(n_out - 1, (n_in - 1 + before - t) // stride)
        count = max(0, last - first + 1)
        real += count
        live += count > 0
    # padding alone: the window ends before the input (o*s + k - 1 - before < 0) or starts
    # after it (o*s - before >= n_in); windows move one way, so only the ends can be so
    leading = min(n_out, max(0, _ceil_div(before - kernel + 1, stride)))
    trailing = min(n_out, max(0, n_out - _ceil_div(n_in + before, stride)))
    return real, live, min(n_out, leading + trailing)


@dataclasses.dataclass(frozen=True)
class Window:
    """One convolution or pooling row of a window report, at the report's input size.

    index: the row's position in the cost report (`cost_report(X_shape).rows[index]`).
    layer: its `costs.Layer` (in_shape, out_shape: channels first; kernel, stride, padding).
    source: the position in `WindowReport.windows` of the window whose output it reads
    (None: the model's input). jump: per axis, input pixels between neighbouring outputs.
    real_share: the share (0..1) of the window's taps on real input, averaged over the
    output positions. padding_only: output positions (of one channel) made of padding alone.
    dead_taps: kernel positions on padding at every output position (of prod(kernel)).
    """
    index: int
    layer: costs.Layer
    source: int
    jump: tuple
    real_share: float
    padding_only: int
    dead_taps: int

    @property
    def is_conv(self):
        return self.layer.kind == 'conv'

    @property
    def taps(self):
        return math.prod(self.layer.kernel)


def _window(index, layer, source, jump):
    stats = [axis_windows(n_in, n_out, k, s, before)
             for n_in, n_out, k, s, (before, _) in zip(layer.in_shape[1:], layer.out_shape[1:],
                                                      layer.kernel, layer.stride, layer.padding)]
    outputs = layer.out_shape[1:]
    real_share = math.prod(real / (k * n) for (real, _, _), k, n
                           in zip(stats, layer.kernel, outputs))
    padding_only = math.prod(outputs) - math.prod(n - alone for (_, _, alone), n
                                                  in zip(stats, outputs))
    dead = math.prod(layer.kernel) - math.prod(live for _, live, _ in stats)
    jump = tuple(j * s for j, s in zip(jump, layer.stride))
    return Window(index, layer, source, jump, real_share, padding_only, dead)


@dataclasses.dataclass(frozen=True)
class SmallestSizes:
    """Smallest square input sizes (pixels per side) at which the model runs (`runs`: every
    layer has an output), and runs with no output made of padding alone (`no_padding_only`),
    and runs with no dead taps in any convolution (`no_dead_taps`); None where no size up to
    the search's `largest` does."""
    runs: int
    no_padding_only: int
    no_dead_taps: int


def _square(size, n_axes):
    return (int(size),) * n_axes if isinstance(size, int) else tuple(int(d) for d in size)


class WindowReport:
    """What each convolution and pooling window of a model sees of real input versus padding,
    at one input size: `windows` (Window, in call order), `input_shape` (per example,
    channels first, (C, H, W)), `at(size)` (the same model at another input size, by size
    arithmetic), `smallest_sizes()` and `print(report)` for a table, the same in every
    framework.

    Built from a cost report (`costs.Report`) of the model for an input of `input_shape`.
    Each window's input is the output of the latest earlier window of that size (or the
    model's input): layers that change sizes are convolutions and pools, all rows of the cost
    report; branches that are concatenated or added have equal sizes. A dense layer that reads
    a flattened map of more than one position pins that map's size (the model runs only at
    sizes that keep it).

    Raises WindowError when a row's output size is not `output_size` of its input, kernel,
    stride and padding (dilation, ceil-mode pooling: windows this report does not model), or
    when a window reads a map of a size that no earlier window writes and that is not the
    input's (a layer the cost report does not see changed the size).
    """

    def __init__(self, report, input_shape):
        self.input_shape = tuple(int(d) for d in input_shape)
        spatial = self.input_shape[1:]
        self.windows, self._pins = [], []       # pins: (window position or None, its size)
        for index, row in enumerate(report.rows):
            layer = row.layer
            if layer.kind == 'dense':
                self._pin(layer)
                continue
            if layer.kind not in WINDOW_KINDS:
                continue
            size = layer.in_shape[1:]
            source = next((i for i in reversed(range(len(self.windows)))
                           if self.windows[i].layer.out_shape[1:] == size), None)
            if source is None and size != spatial:
                raise WindowError(
                    f'{layer.name} ({layer.label}) reads a {"x".join(map(str, size))} map, '
                    f'which no earlier convolution or pool writes and which is not the '
                    f'{"x".join(map(str, spatial))} input: a layer the cost report does not '
                    f'see changed its size')
            expected = tuple(output_size(n, k, s, b, a) for n, k, s, (b, a) in
                             zip(size, layer.kernel, layer.stride, layer.padding))
            if expected != layer.out_shape[1:]:
                raise WindowError(
                    f'{layer.name} ({layer.label}, padding {layer.padding}) turns '
                    f'{"x".join(map(str, size))} into {"x".join(map(str, layer.out_shape[1:]))}'
                    f', not (n + before + after - kernel) // stride + 1 = '
                    f'{"x".join(map(str, expected))}: a window this report does not model '
                    f'(dilation, ceil mode)')
            jump = (1,) * len(size) if source is None else self.windows[source].jump
            self.windows.append(_window(index, layer, source, jump))

    def _pin(self, layer):
        """Pin the size of the map a dense layer reads flattened, if more than one position."""
        source = len(self.windows) - 1 if self.windows else None
        shape = self.windows[-1].layer.out_shape if self.windows else self.input_shape
        if (len(layer.in_shape) == 1 and math.prod(shape[1:]) > 1
                and math.prod(shape) == layer.in_channels):
            self._pins.append((source, shape[1:]))

    def at(self, size):
        """The report at another input size (an int: square, or (H, W)), by the size arithmetic
        alone (no framework): the windows' kernels, strides and padding as at this size, a
        global pool's window the whole input. Raises WindowError if the model does not run
        there (a window without output, or a pinned size changed)."""
        report, failure = self._at(_square(size, len(self.input_shape) - 1))
        if failure:
            raise WindowError(failure)
        return report

    def _at(self, spatial):
        """(report at `spatial`, None) or (None, why the model does not run there)."""
        new = object.__new__(WindowReport)
        new.input_shape, new.windows, new._pins = (self.input_shape[0], *spatial), [], self._pins
        for window in self.windows:
            layer = window.layer
            size = (spatial if window.source is None
                    else new.windows[window.source].layer.out_shape[1:])
            kernel, stride = (size, size) if layer.whole_input else (layer.kernel, layer.stride)
            out = tuple(output_size(n, k, s, b, a) for n, k, s, (b, a)
                        in zip(size, kernel, stride, layer.padding))
            if min(out) < 1:
                return None, (f'at a {"x".join(map(str, spatial))} input, {layer.name} '
                              f'({layer.label}) gets a {"x".join(map(str, size))} map and has no '
                              f'output: the model does not run')
            layer = dataclasses.replace(layer, in_shape=(layer.in_shape[0], *size),
                                        out_shape=(layer.out_shape[0], *out), kernel=kernel,
                                        stride=stride)
            jump = (1,) * len(size) if window.source is None else new.windows[window.source].jump
            new.windows.append(_window(window.index, layer, window.source, jump))
        for source, size in self._pins:
            now = spatial if source is None else new.windows[source].layer.out_shape[1:]
            if now != size:
                return None, (f'at a {"x".join(map(str, spatial))} input, a dense layer reads a '
                              f'flattened {"x".join(map(str, now))} map, not '
                              f'{"x".join(map(str, size))}: the model does not run')
        return new, None

    @property
    def padding_only_rows(self):
        """The windows with outputs made of padding alone."""
        return [w for w in self.windows if w.padding_only]

    @property
    def dead_tap_convolutions(self):
        """The convolutions with dead taps."""
        return [w for w in self.windows if w.is_conv and w.dead_taps]

    def smallest_sizes(self, largest=1024):
        """SmallestSizes: the smallest square inputs, 1 <= size <= `largest` pixels a side, at
        which the model runs, runs without outputs made of padding alone, and runs without
        dead taps in its convolutions.

        Walks the sizes 1, 2, ... with the size arithmetic over this report's windows (`at`),
        not by running the framework at each size: the answer is then the same in every
        framework by construction, and a size costs microseconds (a framework's report at one
        size takes a forward pass, or for JAX a trace). The walk keeps each layer's padding
        as this report measured it, which holds for fixed padding (ints, pairs, and 'same'
        at stride 1); 'SAME' padding at stride 2 or more (TensorFlow, JAX) depends on the
        input's size: check such a model with a framework report at the answer."""
        found = {}
        for size in range(1, int(largest) + 1):
            report, failure = self._at((size,) * (len(self.input_shape) - 1))
            if failure:
                continue
            found.setdefault('runs', size)
            if not report.padding_only_rows:
                found.setdefault('no_padding_only', size)
            if not report.dead_tap_convolutions:
                found.setdefault('no_dead_taps', size)
            if len(found) == 3:
                break
        return SmallestSizes(found.get('runs'), found.get('no_padding_only'),
                             found.get('no_dead_taps'))

    COLUMNS = ('#', 'child', 'layer', 'input', 'output', 'padding', 'jump', 'real taps',
               'pad-only outputs', 'dead taps')

    def table_rows(self):
        """The table's cells, as strings: a header, then a line per window."""
        def sizes(values):
            return 'x'.join(map(str, values))

        def padding(pairs):
            axes = [str(b) if b == a else f'{b}+{a}' for b, a in pairs]
            return axes[0] if len(set(axes)) == 1 else 'x'.join(axes)

        def jump(values):
            return str(values[0]) if len(set(values)) == 1 else sizes(values)
        lines = [list(self.COLUMNS)]
        for w in self.windows:
            layer = w.layer
            lines.append([str(w.index), str(layer.child), layer.label, sizes(layer.in_shape[1:]),
                          sizes(layer.out_shape[1:]), padding(layer.padding), jump(w.jump),
                          f'{100 * w.real_share:.1f}%',
                          f'{w.padding_only} of {math.prod(layer.out_shape[1:])}'
                          if w.padding_only else '0',
                          f'{w.dead_taps} of {w.taps}' if w.is_conv else '-'])
        return lines

    def summary(self):
        """One line: the input size, the lowest real share, the rows with padding-only outputs
        and the convolutions with dead taps."""
        convs = [w for w in self.windows if w.is_conv]
        lowest = min(self.windows, key=lambda w: w.real_share, default=None)
        dead = self.dead_tap_convolutions
        alone = len(self.padding_only_rows)
        return (f'{"x".join(map(str, self.input_shape[1:]))} input, {len(self.windows)} windows'
                + (f': real taps down to {100 * lowest.real_share:.1f}% (#{lowest.index})'
                   if lowest else '')
                + (f'; outputs made of padding alone in {alone} windows' if alone else
                   '; no output made of padding alone')
                + f'; dead taps in {len(dead)} of {len(convs)} convolutions '
                f'({sum(w.dead_taps for w in dead):,} of {sum(w.taps for w in convs):,} kernel '
                f'positions)')

    def __str__(self):
        lines = self.table_rows()
        widths = [max(len(line[i]) for line in lines) for i in range(len(self.COLUMNS))]
        text_columns = {1, 2, 3, 4, 5}      # left-aligned; numbers right-aligned
        formatted = ['  '.join(cell.ljust(w) if i in text_columns else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(line, widths))).rstrip()
                     for line in lines]
        formatted.insert(1, '-' * len(formatted[0]))
        formatted.append('-' * len(formatted[0]))
        smallest = self.smallest_sizes()
        side = lambda n: f'{n}x{n}' if n else 'none up to 1024x1024'     # noqa: E731
        return '\n'.join(formatted + [
            self.summary(),
            f'smallest square input: runs at {side(smallest.runs)}; no output made of padding '
            f'alone at {side(smallest.no_padding_only)}; no dead taps at '
            f'{side(smallest.no_dead_taps)}',
            'sizes per example in pixels (H x W); padding: before+after (top/left first); jump: '
            'input pixels between neighbouring outputs; real taps: share on real input, '
            'averaged over outputs'])

    def _repr_pretty_(self, printer, cycle):     # IPython shows the table as a cell's value
        printer.text(str(self))


def window_report(cost_report, X_shape, layout):
    """The WindowReport of a model from its `cost_report` for an input batch of `X_shape` in
    `layout` ('NCHW' or 'NHWC'): what every adapter's `model.window_report` returns."""
    return WindowReport(cost_report, costs.channels_first(X_shape, layout))


class WindowReporting:
    """`model.window_report(X_shape)`, written once for the adapters' model classes (a mixin
    beside HyperParameters); each names the layout of its batches in `input_layout`."""
    input_layout = 'NCHW'

    def window_report(self, X_shape):
        """What each convolution and pooling window sees of real input versus padding, for an
        input batch of `X_shape` (in the framework's layout: NCHW for PyTorch and MXNet, NHWC
        for TensorFlow and JAX): a WindowReport (print it for a table, `.smallest_sizes()` for
        the smallest inputs), the same in every framework, built from the model's
        `cost_report(X_shape)` (layers it does not know count as zero; in JAX shapes only,
        nothing computed). Raises WindowError if it cannot follow the sizes."""
        report = self.cost_report(X_shape, unknown='zero')
        return window_report(report, X_shape, self.input_layout)
