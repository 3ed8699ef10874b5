"""Per-layer cost reports, the same in every framework: `model.cost_report(X_shape)`.

Each adapter only describes its framework's leaf layers as `Layer`s (kind, input and output
shapes, kernel, stride, groups, bias) from one forward pass; everything here is framework-free
and computed in one convention, so that a layer costs the same whatever its framework and
layout:

- Shapes are per example and channels first: (C, H, W) for images, (C,) for features. A
  framework's batch shape is converted by `channels_first` from its layout (NCHW or NHWC).
- Multiply-adds (MACs) count the multiplications of weights by inputs, each with the
  addition that accumulates it (Szegedy et al. 2015, "Going deeper with convolutions", budget
  GoogLeNet in "multiply-adds"):
    convolution, kernel k_1 x ... x k_n, C_in -> C_out in `groups` groups, output H_out x W_out:
        H_out * W_out * C_out * (k_1 * ... * k_n) * C_in / groups
    dense layer, C_in -> C_out features, at each of P positions (P = 1 for a vector):
        P * C_in * C_out
  Every kernel tap counts, those that fall on zero padding too. Nothing else is a
  multiply-add: bias additions, activations (ReLU), pooling (a max pool compares, an average
  pool adds) and concatenation cost 0 MACs here. FLOP counters count a multiply-add as 2
  FLOPs: PyTorch's `torch.utils.flop_counter.FlopCounterMode` counts exactly 2 * MACs for
  convolutions and matrix products (and nothing else); XLA's `cost_analysis()['flops']`
  leaves out the taps over padding and adds the elementwise work (a FLOP each: bias adds,
  ReLU, pooling comparisons, a global pool's sums and division), which for GoogLeNet at
  96x96 makes it 10.9% lower (tests/frameworks/test_costs.py).
- Parameters: k_1 * ... * k_n * C_in / groups * C_out (+ C_out with a bias) for a convolution,
  C_in * C_out (+ C_out) for a dense layer, none for pooling. Weight bytes: 4 per parameter
  (float32).
- Activation bytes: 4 per element (float32) of the layer's input (read) and output (written),
  times the batch. Each layer is assumed to read its input from memory and write its output
  back: no fusion, no reuse between layers.
- Arithmetic intensity: MACs per byte moved, MACs / (weight + read + written bytes); a
  totals row divides the total MACs by the total bytes.

Layers that only apply an elementwise function or move data (activations, dropout, flatten,
reshape; `kind='free'`) are not rows: TensorFlow and MXNet fuse the ReLU into the convolution
where PyTorch has a module for it, and the report is the same either way. Explicit padding
(`kind='pad'`, Keras' ZeroPadding2D) is folded into the layer it feeds, which then reads the
unpadded input, as PyTorch's `padding=` argument does. Concatenation is no layer in any of the
frameworks (a function call in the forward pass), so it is not a row either.

A layer the report does not know (`kind='unknown'`, e.g. batch normalization) raises
`CostError` naming it; with `unknown='zero'` it is a row of zero cost, marked as not counted.
"""
import dataclasses
import math

from d2lmini.errors import D2lminiError

BYTES_PER_VALUE = 4     # float32
KINDS = ('conv', 'dense', 'max_pool', 'avg_pool', 'global_max_pool', 'global_avg_pool', 'pad',
         'free', 'unknown')


class CostError(D2lminiError, ValueError):
    """The cost report met layers whose cost it does not know."""


def channels_first(shape, layout):
    """The per-example, channels-first shape of a batch `shape` in `layout` ('NCHW' or 'NHWC'):
    (N, H, W, C) in NHWC -> (C, H, W); (N, C, H, W) in NCHW -> (C, H, W); (N, C) -> (C,)."""
    shape = tuple(int(d) for d in shape)[1:]
    if layout == 'NHWC' and len(shape) >= 2:
        return (shape[-1], *shape[:-1])
    if layout not in ('NCHW', 'NHWC'):
        raise ValueError(f"layout must be 'NCHW' or 'NHWC', not {layout!r}")
    return shape


@dataclasses.dataclass(frozen=True)
class Layer:
    """What the report needs to know of one leaf layer, as an adapter describes it.

    name: where the layer is in the model, in the framework's terms (for messages).
    class_name: its framework class ('Conv2d', 'Conv2D', 'Conv', ...), for messages.
    child: the position of the model's top-level child (of `model.net`) it belongs to; the
    report numbers anew, in order, the children that have rows.
    kind: one of KINDS. in_shape, out_shape: per example, channels first (`channels_first`).
    kernel, stride: window sizes and strides of a convolution or pooling (an int stands for
    the same size along every spatial axis). groups: a convolution's groups. bias: whether it
    adds a bias. in_channels, out_channels: a dense layer's features (for a convolution they
    default to the shapes' channels).
    padding: the zeros (-inf for a max pool) a convolution or pooling adds around its input
    before sliding its window, or, for a 'pad' layer, the padding it writes: per spatial axis a
    (before, after) pair, in input pixels (before: top/left). Given as () (none), an int (the
    same on every side), one int per axis (the same before and after) or a pair per axis;
    stored as pairs. It changes no cost (every tap counts); d2lmini/windows.py reads it.
    A 'pad' layer without it pads (out - in) // 2 before and the rest after.
    whole_input: set for the global kinds: the window is the whole input, at any input size.
    """
    name: str
    class_name: str
    child: int
    kind: str
    in_shape: tuple
    out_shape: tuple
    kernel: tuple = ()
    stride: tuple = ()
    groups: int = 1
    bias: bool = False
    in_channels: int = None
    out_channels: int = None
    padding: tuple = ()
    whole_input: bool = False

    @classmethod
    def from_batches(cls, name, class_name, child, kind, in_batch, out_batch, layout, **details):
        """A Layer from the batch shapes of its input and output in the adapter's `layout`
        ('NCHW' or 'NHWC'), the form in which every adapter sees them."""
        return cls(name, class_name, child, kind, channels_first(in_batch, layout),
                   channels_first(out_batch, layout), **details)

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f'{self.name}: kind must be one of {KINDS}, not {self.kind!r}')
        fix = lambda name, value: object.__setattr__(self, name, value)     # noqa: E731
        fix('in_shape', tuple(int(d) for d in self.in_shape))
        fix('out_shape', tuple(int(d) for d in self.out_shape))
        spatial = self.in_shape[1:]
        if self.kind.startswith('global_'):
            # a window over the whole input; (C,) and (C, 1, 1) outputs are the same values
            fix('kind', self.kind[len('global_'):])
            fix('kernel', spatial)
            fix('stride', spatial)
            fix('out_shape', (self.in_shape[0], *(1 for _ in spatial)))
            fix('whole_input', True)
        for field in ('kernel', 'stride'):
            value = getattr(self, field)
            fix(field, (int(value),) * len(spatial) if isinstance(value, int) else
                tuple(int(v) for v in value))
        fix('padding', self._padding_pairs(spatial))
        if self.kind == 'conv':
            fix('in_channels', self.in_channels or self.in_shape[0])
            fix('out_channels', self.out_channels or self.out_shape[0])

    def _padding_pairs(self, spatial):
        """`padding` as a (before, after) pair per spatial axis (see the class docstring)."""
        padding = self.padding
        if padding is None or (not isinstance(padding, int) and len(padding) == 0):
            if self.kind == 'pad':      # split what the layer adds: the extra pixel after
                return tuple(((o - i) // 2, o - i - (o - i) // 2)
                             for i, o in zip(spatial, self.out_shape[1:]))
            return ((0, 0),) * len(spatial)
        if isinstance(padding, int):
            return ((int(padding), int(padding)),) * len(spatial)
        pairs = tuple((int(p), int(p)) if isinstance(p, int) or not hasattr(p, '__len__')
                      else tuple(int(v) for v in p) for p in padding)
        if len(pairs) != len(spatial) or any(len(pair) != 2 for pair in pairs):
            raise ValueError(f'{self.name}: padding {self.padding!r} is not one (before, '
                             f'after) pair per spatial axis of {self.in_shape}')
        return pairs

    @property
    def label(self):
        """'conv 7x7/2', 'max pool 3x3/2', 'global avg pool', 'dense', ... (/2: stride 2)."""
        window = 'x'.join(map(str, self.kernel))
        stride = ('' if set(self.stride) <= {1} else f'/{self.stride[0]}'
                  if len(set(self.stride)) == 1 else '/' + 'x'.join(map(str, self.stride)))
        if self.kind == 'conv':
            return f'conv {window}{stride}' + (f' g{self.groups}' if self.groups != 1 else '')
        if self.kind in ('max_pool', 'avg_pool'):
            op = self.kind.split('_')[0]
            if self.kernel == self.in_shape[1:] and set(self.out_shape[1:]) <= {1}:
                return f'global {op} pool'
            return f'{op} pool {window}{stride}'
        return self.kind if self.kind != 'unknown' else f'{self.class_name} (not counted)'


@dataclasses.dataclass(frozen=True)
class Cost:
    """MACs (multiply-adds), parameters and bytes moved (weights, activations read and
    written), for a whole batch; costs add up with +."""
    macs: int = 0
    params: int = 0
    weight_bytes: int = 0
    read_bytes: int = 0
    written_bytes: int = 0

    @property
    def bytes(self):
        return self.weight_bytes + self.read_bytes + self.written_bytes

    @property
    def intensity(self):
        """Arithmetic intensity: MACs per byte moved (0.0 when nothing moves)."""
        return self.macs / self.bytes if self.bytes else 0.0

    def __add__(self, other):
        return Cost(*(getattr(self, f.name) + getattr(other, f.name)
                      for f in dataclasses.fields(self)))


def recording_hook(layers, describe, name, child):
    """A forward hook `(layer, inputs, output)`, as PyTorch and Gluon call them, that appends
    `describe(layer, name, child, input shape, output shape)` (a `Layer`) to `layers`."""
    return lambda layer, inputs, output: layers.append(
        describe(layer, name, child, inputs[0].shape, output.shape))


def cost(layer, batch=1):
    """The Cost of one Layer for a batch of `batch` examples (formulas: module docstring)."""
    out_size, in_size = math.prod(layer.out_shape), math.prod(layer.in_shape)
    if layer.kind == 'conv':
        if layer.in_channels % layer.groups or layer.out_channels % layer.groups:
            raise CostError(f'{layer.name}: {layer.in_channels} -> {layer.out_channels} channels '
                            f'do not split into {layer.groups} groups')
        per_output = math.prod(layer.kernel) * layer.in_channels // layer.groups
        macs, params = out_size * per_output, per_output * layer.out_channels
    elif layer.kind == 'dense':
        positions = out_size // layer.out_channels
        macs, params = positions * layer.in_channels * layer.out_channels, \
            layer.in_channels * layer.out_channels
    else:       # pooling, unknown layers counted as zero
        macs = params = 0
    if layer.bias and layer.kind in ('conv', 'dense'):
        params += layer.out_channels
    activations = 0 if layer.kind == 'unknown' else BYTES_PER_VALUE * batch
    return Cost(batch * macs, params, BYTES_PER_VALUE * params, activations * in_size,
                activations * out_size)


@dataclasses.dataclass(frozen=True)
class Row:
    layer: Layer
    cost: Cost


def _fold_padding(layers):
    """The layers without 'free' ones, each 'pad' folded into the next layer when that layer
    reads what the padding wrote (it then reads the unpadded input, and the pad's padding is
    added to its own); padding that feeds no layer is dropped (it moves data, but computes
    nothing)."""
    kept, padding = [], None
    for layer in layers:
        if layer.kind == 'free':
            continue
        if layer.kind == 'pad':
            padding = layer
            continue
        if padding is not None and layer.in_shape == padding.out_shape:
            layer = dataclasses.replace(
                layer, in_shape=padding.in_shape,
                padding=tuple((b + pad_b, a + pad_a) for (b, a), (pad_b, pad_a)
                              in zip(layer.padding, padding.padding)))
        padding = None
        kept.append(layer)
    return kept


class Report:
    """A cost report: `rows` (Row: layer and cost, in call order), `total` (a Cost),
    `by_child()` (Cost per top-level child: those with rows, numbered 0, 1, ... in order)
    and `batch`. `print(report)` shows it as a table,
    the same in every framework.

    `layers`: Layers in call order (as an adapter describes them); `batch`: the examples per
    input. `unknown`: 'raise' (CostError naming the unknown layers) or 'zero' (rows of zero
    cost, marked not counted).
    """

    def __init__(self, layers, batch=1, unknown='raise'):
        if unknown not in ('raise', 'zero'):
            raise ValueError(f"unknown must be 'raise' or 'zero', not {unknown!r}")
        layers = _fold_padding(layers)
        # Number the children that have rows 0, 1, ...: a ReLU module at the top of PyTorch's
        # net, fused into the convolution in Keras, must not shift the numbers after it.
        numbers = {}
        layers = [dataclasses.replace(layer, child=numbers.setdefault(layer.child, len(numbers)))
                  for layer in layers]
        strangers = [f'{layer.name} ({layer.class_name})' for layer in layers
                     if layer.kind == 'unknown']
        if strangers and unknown == 'raise':
            raise CostError(
                f'cost_report does not know the cost of {", ".join(strangers)}: it counts '
                f'convolution, dense and pooling layers, and leaves out activations, dropout, '
                f'flatten, reshape and padding. Pass unknown=\'zero\' to list such layers as '
                f'rows of zero cost (their work is then missing from the totals), or teach '
                f'd2lmini/costs.py and your framework\'s adapter their kind.')
        self.batch, self.unknown = int(batch), unknown
        self.rows = [Row(layer, cost(layer, self.batch)) for layer in layers]
        self.total = sum((row.cost for row in self.rows), Cost())

    def with_batch(self, batch):
        """The same model's report for another batch size, without another forward pass:
        multiply-adds and activation bytes grow with the batch, weights are read once."""
        return Report([row.layer for row in self.rows], batch, self.unknown)

    def by_child(self):
        """{position of the top-level child: its total Cost}, in order."""
        totals = {}
        for row in self.rows:
            totals[row.layer.child] = totals.get(row.layer.child, Cost()) + row.cost
        return totals

    def summary(self, name=''):
        """One line of the totals: multiply-adds, parameters, weight and activation megabytes
        (10**6 bytes) and the arithmetic intensity, e.g. 'GoogLeNet: 276.1 M multiply-adds,
        5.98 M parameters (23.9 MB), activations 5.6 MB, 9.6 MACs/B'."""
        total = self.total
        return (f'{name + ": " if name else ""}{total.macs / 1e6:,.1f} M multiply-adds, '
                f'{total.params / 1e6:.2f} M parameters ({total.weight_bytes / 1e6:.1f} MB), '
                f'activations read and written {(total.read_bytes + total.written_bytes) / 1e6:.1f} MB, '
                f'{total.intensity:.1f} MACs/B')

    COLUMNS = ('#', 'child', 'layer', 'input', 'output', 'multiply-adds', 'parameters',
               'weight B', 'read B', 'written B', 'MACs/B')

    def table_rows(self):
        """The table's cells, as strings: a header, a line per layer, then the total."""
        def numbers(cost):
            return [f'{cost.macs:,}', f'{cost.params:,}', f'{cost.weight_bytes:,}',
                    f'{cost.read_bytes:,}', f'{cost.written_bytes:,}', f'{cost.intensity:.2f}']
        shape = lambda s: 'x'.join(map(str, s))     # noqa: E731 (channels first: C x H x W)
        lines = [list(self.COLUMNS)]
        for index, row in enumerate(self.rows):
            layer = row.layer
            lines.append([str(index), str(layer.child), layer.label, shape(layer.in_shape),
                          shape(layer.out_shape), *numbers(row.cost)])
        lines.append(['', '', 'total', '', '', *numbers(self.total)])
        return lines

    def __str__(self):
        lines = self.table_rows()
        widths = [max(len(line[i]) for line in lines) for i in range(len(self.COLUMNS))]
        text_columns = {1, 2, 3, 4}     # left-aligned; numbers right-aligned
        formatted = ['  '.join(cell.ljust(w) if i in text_columns else cell.rjust(w)
                               for i, (cell, w) in enumerate(zip(line, widths))).rstrip()
                     for line in lines]
        formatted.insert(1, '-' * len(formatted[0]))
        formatted.insert(-1, '-' * len(formatted[0]))
        note = (f'batch {self.batch}; shapes per example, channels first; bytes of float32 '
                f'weights and activations; MACs/B: multiply-adds per byte moved')
        return '\n'.join(formatted + [note])

    def _repr_pretty_(self, printer, cycle):     # IPython shows the table as a cell's value
        printer.text(str(self))


@dataclasses.dataclass(frozen=True)
class Chip:
    """A processor as the roofline model sees it (Williams, Waterman and Patterson 2009,
    "Roofline", doi:10.1145/1498765.1498785): a peak rate of multiply-adds and a memory
    bandwidth.

    name: what to call it in tables and figures. peak_macs: multiply-adds per second at its
    peak (half its peak FLOP/s: a multiply-add is 2 FLOPs). bandwidth: bytes per second to its
    main memory.
    """
    name: str
    peak_macs: float
    bandwidth: float

    @property
    def balance(self):
        """The balance point, in MACs per byte: a layer of lower arithmetic intensity waits on
        memory (memory-bound), one of higher intensity on arithmetic (compute-bound)."""
        return self.peak_macs / self.bandwidth

    def bound(self, cost):
        """'compute' or 'memory': what limits a Cost's time on this chip."""
        return 'compute' if cost.intensity >= self.balance else 'memory'

    def seconds(self, cost):
        """The roofline's lower bound on a Cost's time here: the longer of its arithmetic at
        the peak rate and its bytes at the full bandwidth (caches and overlap can only lose)."""
        return max(cost.macs / self.peak_macs, cost.bytes / self.bandwidth)


def roofline_table(reports, chips):
    """A table, as text: for each report ({label: Report}, or (label, Report) pairs) on each
    Chip, the share of the multiply-adds in layers that are compute-bound there (intensity at
    or above the chip's balance point), the roofline's time for the report's batch (the sum over layers of
    Chip.seconds, in ms) and the images per second that time allows; and per report the
    largest working set of one layer (its weights, input and output, in MB of 10**6 bytes):
    what an on-chip memory must hold to run every layer without going back to main memory."""
    header = ('model', 'batch', 'chip', 'balance', 'compute-bound', 'ms', 'images/s',
              'largest layer')
    lines = [header]
    for label, report in (reports.items() if hasattr(reports, 'items') else reports):
        largest = max(row.cost.bytes for row in report.rows) / 1e6
        for chip in chips:
            compute = sum(row.cost.macs for row in report.rows if chip.bound(row.cost) == 'compute')
            seconds = sum(chip.seconds(row.cost) for row in report.rows)
            lines.append((label, str(report.batch), chip.name, f'{chip.balance:.1f}',
                          f'{compute / report.total.macs:.0%}', f'{seconds * 1e3:.3f}',
                          f'{report.batch / seconds:,.0f}', f'{largest:.1f} MB'))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    text = [' '.join(cell.ljust(w) if i < 3 else cell.rjust(w)
                     for i, (cell, w) in enumerate(zip(line, widths))).rstrip() for line in lines]
    note = ('balance: the chip\'s MACs per byte; compute-bound: share of the multiply-adds in '
            'layers at or above it; ms: the roofline\'s time for the batch')
    return '\n'.join([text[0], '-' * len(text[0]), *text[1:], note])


def _module_layers(report, child):
    """The layers of one top-level child that have parameters, and its global pool, as
    'conv 3x3, conv 1x1 ×2' (Layer.label, the same in every framework)."""
    counts = {}
    for row in report.rows:
        if row.layer.child == child and (row.cost.params or row.layer.label.startswith('global')):
            counts[row.layer.label] = counts.get(row.layer.label, 0) + 1
    return ', '.join(label + (f' ×{n}' if n > 1 else '') for label, n in counts.items())


def parameter_table(reports):
    """A table, as text, of the parameters of each model's top-level modules at several input
    sizes: `reports` is {model: {size label: Report}}. The modules are named by position,
    b1, b2, ... and `head` for the last (what the chapter calls them); columns: the shape each
    module reads (channels first, at each size), its parameters at each size, and its layers
    that have parameters (Layer.label, with counts). A model's totals close its lines."""
    sizes = list(next(iter(reports.values())))
    lines = [['model', 'module', *(f'reads {size}' for size in sizes),
              *(f'params {size}' for size in sizes), 'layers']]
    rules = [1]         # lines above which a rule is drawn
    for model, by_size in reports.items():
        first = next(iter(by_size.values()))
        children = list(first.by_child())
        names = [f'b{i}' for i in range(1, len(children))] + ['head']
        reads = {}
        for size, report in by_size.items():
            # what each module reads: the model's input, then what the module before it wrote
            written = {row.layer.child: row.layer.out_shape for row in report.rows}
            shapes = [report.rows[0].layer.in_shape, *written.values()]
            reads[size] = ['x'.join(map(str, shape)) for shape in shapes]
        rules.append(len(lines))
        for i, (name, child) in enumerate(zip(names, children)):
            lines.append([model if i == 0 else '', name, *(reads[size][i] for size in sizes),
                          *(f'{by_size[size].by_child()[child].params:,}' for size in sizes),
                          _module_layers(first, child)])
        lines.append(['', 'total', *('' for _ in sizes),
                      *(f'{by_size[size].total.params:,}' for size in sizes), ''])
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    numeric = range(2, 2 + 2 * len(sizes))
    text = []
    for index, line in enumerate(lines):
        if index in rules:
            text.append('  '.join('-' * width for width in widths))
        text.append('  '.join(cell.rjust(w) if i in numeric else cell.ljust(w)
                              for i, (cell, w) in enumerate(zip(line, widths))).rstrip())
    return '\n'.join(text)
