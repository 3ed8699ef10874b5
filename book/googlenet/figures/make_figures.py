"""Regenerates the chapter's SVG figures: python book/googlenet/figures/make_figures.py"""
import os
from xml.sax.saxutils import escape

HERE = os.path.dirname(os.path.abspath(__file__))

FONT = "Helvetica, Arial, 'Liberation Sans', 'DejaVu Sans', sans-serif"
INK = '#2b2b2b'      # text and outlines
MUTED = '#6b6b6b'    # secondary text
ARROW = '#555555'

# One soft fill (and a darker outline of the same hue) per kind of layer, shared by both figures.
KINDS = {
    'io':      ('#eeeeee', '#8a8a8a', 'input / output'),
    'conv1':   ('#d6e6f7', '#5b8cc2', '1×1 convolution'),
    'conv':    ('#d5eedb', '#55a06a', 'k×k convolution'),
    'maxpool': ('#fde3c8', '#d98a3d', 'max-pooling'),
    'avgpool': ('#fbd3d3', '#c96060', 'global average pooling'),
    'concat':  ('#e6dcf3', '#8e6bbf', 'concatenation'),
    'incep':   ('#fff1b8', '#c9a227', 'Inception block'),
    'dense':   ('#f6d6ea', '#b35c93', 'fully connected'),
}

# Approximate advance widths (in em) of DejaVu Sans, the widest font the stack may fall back
# to; used only to check that every label fits its box.
_NARROW = {' ': .32, 'i': .28, 'l': .28, 'j': .28, 't': .39, 'f': .35, 'r': .41, '.': .32,
           ',': .32, ':': .34, '[': .39, ']': .39, '(': .39, ')': .39, '1': .64, '-': .36,
           '/': .34, 'I': .30}
_WIDE = {'m': .97, 'w': .82, 'M': .86, 'W': .99, '×': .84, '→': .84, '+': .84, '·': .32}


def text_width(text, size):
    em = 0.0
    for ch in text:
        if ch in _NARROW:
            em += _NARROW[ch]
        elif ch in _WIDE:
            em += _WIDE[ch]
        elif ch.isupper():
            em += .72
        else:
            em += .62
    return em * size


class Svg:
    def __init__(self, width, height):
        self.width, self.height = width, height
        self.parts = []

    def add(self, s):
        self.parts.append(s)

    def rect(self, x, y, w, h, fill, stroke, rx=7, width=1.4):
        self.add(f'<rect x="{x:g}" y="{y:g}" width="{w:g}" height="{h:g}" rx="{rx}" '
                 f'fill="{fill}" stroke="{stroke}" stroke-width="{width}"/>')

    def text(self, x, y, content, size=14, weight='normal', fill=INK, anchor='middle',
             style=''):
        """`content` is plain text, or a list of (text, kind) runs where kind is '' or 'sub'."""
        runs = [(content, '')] if isinstance(content, str) else content
        body, shifted = [], False
        for run, kind in runs:
            if kind == 'sub' and not shifted:
                body.append(f'<tspan dy="{size * 0.28:.1f}" font-size="{size * 0.72:.1f}">'
                            f'{escape(run)}</tspan>')
                shifted = True
            elif kind != 'sub' and shifted:
                body.append(f'<tspan dy="{-size * 0.28:.1f}">{escape(run)}</tspan>')
                shifted = False
            else:
                body.append(escape(run))
        st = f' font-style="{style}"' if style else ''
        self.add(f'<text x="{x:g}" y="{y:g}" font-size="{size}" font-weight="{weight}" '
                 f'fill="{fill}" text-anchor="{anchor}"{st}>{"".join(body)}</text>')

    def line(self, points, arrow=True, color=ARROW, width=1.5):
        d = 'M' + ' L'.join(f'{x:g},{y:g}' for x, y in points)
        m = ' marker-end="url(#arrow)"' if arrow else ''
        self.add(f'<path d="{d}" fill="none" stroke="{color}" stroke-width="{width}" '
                 f'stroke-linejoin="round"{m}/>')

    def render(self, title, desc):
        head = (
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.width}" height="{self.height}" '
            f'viewBox="0 0 {self.width} {self.height}" font-family="{FONT}" role="img">\n'
            f'<title>{escape(title)}</title>\n<desc>{escape(desc)}</desc>\n'
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
            f'markerHeight="7" orient="auto-start-reverse"><path d="M0,1 L10,5 L0,9 z" '
            f'fill="{ARROW}"/></marker></defs>\n'
            f'<rect width="{self.width}" height="{self.height}" fill="#ffffff"/>\n')
        return head + '\n'.join(self.parts) + '\n</svg>\n'


def runs_text(runs):
    return ''.join(r for r, _ in runs) if not isinstance(runs, str) else runs


def box(svg, cx, y, w, h, kind, lines, sizes=(14.5, 13), checks=None):
    """A rounded box centred on cx with one or two lines of text; records a fit check."""
    fill, stroke, _ = KINDS[kind]
    svg.rect(cx - w / 2, y, w, h, fill, stroke)
    n = len(lines)
    gap = 17 if n == 2 else 0
    first = y + h / 2 - gap / 2 + sizes[0] * 0.35
    for i, content in enumerate(lines):
        size = sizes[min(i, len(sizes) - 1)]
        svg.text(cx, first + i * gap, content, size=size,
                 weight='bold' if i == 0 else 'normal', fill=INK if i == 0 else '#3d3d3d')
        if checks is not None:
            need = text_width(runs_text(content), size) * (1.12 if i == 0 else 1.0)
            checks.append((runs_text(content), need, w - 10))


def legend(svg, cx, y, kinds, max_width):
    """Colour swatches in centred rows below y, at most max_width wide; returns the bottom."""
    def width(kind):
        return 18 + 7 + text_width(KINDS[kind][2], 12.5)
    rows, row = [], []
    for kind in kinds:
        if row and sum(width(k) + 22 for k in row) + width(kind) > max_width:
            rows.append(row)
            row = []
        row.append(kind)
    rows.append(row)
    for r, row in enumerate(rows):
        x = cx - (sum(width(k) for k in row) + 22 * (len(row) - 1)) / 2
        ry = y + 22 * r
        for kind in row:
            fill, stroke, label = KINDS[kind]
            svg.rect(x, ry - 11, 18, 14, fill, stroke, rx=3)
            svg.text(x + 25, ry, label, size=12.5, anchor='start', fill='#3d3d3d')
            x += width(kind) + 22
    return y + 22 * (len(rows) - 1) + 14


def check(name, checks):
    bad = [(t, round(n), round(a)) for t, n, a in checks if n > a]
    if bad:
        raise SystemExit(f'{name}: text wider than its box: {bad}')


def C(i):
    """c_i as text runs."""
    return [('c', ''), (str(i), 'sub')]


def CI(i, j):
    """c_i[j] as text runs."""
    return [('c', ''), (str(i), 'sub'), (f'[{j}]', '')]


def inception_svg():
    W = 760
    svg, checks = Svg(W, 10), []
    cols = [115, 295, 475, 655]         # branch centres
    bw, bh = 156, 50                    # branch box size
    y_in, y_r1, y_r2, y_cat, y_out = 20, 122, 212, 318, 410

    # input
    box(svg, W / 2, y_in, 260, 46, 'io',
        ['input', [('C', ''), ('in', 'sub'), (' channels, height H, width W', '')]],
        checks=checks)
    bus = y_in + 46 + 26
    svg.line([(W / 2, y_in + 46), (W / 2, bus)], arrow=False)
    svg.line([(cols[0], bus), (cols[-1], bus)], arrow=False)
    svg.line([(cols[0], bus), (cols[0], y_r2)])
    for cx in cols[1:]:
        svg.line([(cx, bus), (cx, y_r1)])

    # branch layers
    row1 = [None,
            ('conv1', ['1×1 conv', CI(2, 0) + [(' channels', '')]]),
            ('conv1', ['1×1 conv', CI(3, 0) + [(' channels', '')]]),
            ('maxpool', ['3×3 max-pool', 'stride 1, pad 1'])]
    row2 = [('conv1', ['1×1 conv', C(1) + [(' channels', '')]]),
            ('conv', ['3×3 conv, pad 1', CI(2, 1) + [(' channels', '')]]),
            ('conv', ['5×5 conv, pad 2', CI(3, 1) + [(' channels', '')]]),
            ('conv1', ['1×1 conv', C(4) + [(' channels', '')]])]
    for cx, spec in zip(cols, row1):
        if spec:
            box(svg, cx, y_r1, bw, bh, spec[0], spec[1], checks=checks)
            svg.line([(cx, y_r1 + bh), (cx, y_r2)])
    for cx, spec in zip(cols, row2):
        box(svg, cx, y_r2, bw, bh, spec[0], spec[1], checks=checks)
        svg.line([(cx, y_r2 + bh), (cx, y_cat)])
    # channel names on the arrows into the concatenation
    for cx, name in zip(cols, [C(1), CI(2, 1), CI(3, 1), C(4)]):
        svg.text(cx + 8, y_r2 + bh + 24, name, size=13, anchor='start', fill='#3d3d3d',
                 style='italic')

    # concatenation and output
    cat_w = cols[-1] - cols[0] + bw
    box(svg, W / 2, y_cat, cat_w, 52, 'concat',
        ['channel concatenation',
         [('stack the four results along the channel axis: ', '')] + C(1)
         + [(' + ', '')] + CI(2, 1) + [(' + ', '')] + CI(3, 1) + [(' + ', '')] + C(4)
         + [(' channels', '')]],
        checks=checks)
    svg.line([(W / 2, y_cat + 52), (W / 2, y_out)])
    box(svg, W / 2, y_out, 260, 46, 'io',
        ['output', [('same height H and width W', '')]], checks=checks)

    y_note = y_out + 46 + 30
    svg.text(W / 2, y_note, 'Every convolution is followed by a ReLU. '
             'Padding keeps height and width unchanged in every branch.',
             size=12.5, fill=MUTED)
    legend_y = y_note + 28
    bottom = legend(svg, W / 2, legend_y, ['io', 'conv1', 'conv', 'maxpool', 'concat'], W - 20)
    svg.height = bottom + 12
    check('inception.svg', checks)
    return svg.render(
        'The Inception block',
        'Four parallel branches on the same input: a 1x1 convolution; a 1x1 then a 3x3 '
        'convolution; a 1x1 then a 5x5 convolution; a 3x3 max-pooling then a 1x1 convolution. '
        'Their outputs are concatenated along the channel axis.')


def googlenet_svg():
    W = 780
    cx = 428                     # centre line of the modules
    chip_h, pad, gap_x = 46, 9, 16
    arrow_gap = 36
    svg, checks = Svg(W, 10), []

    POOL = ('maxpool', ['max-pool', '3×3, stride 2'])
    modules = [
        ('input', None, [('io', ['input', '1 × 96 × 96'])]),
        ('b1', 'stem', [('conv', ['7×7 conv', '64, stride 2']), POOL]),
        ('b2', 'stem', [('conv1', ['1×1 conv', '64']),
                        ('conv', ['3×3 conv', '192']), POOL]),
        ('b3', 'body', [('incep', ['Inception', '256']), ('incep', ['Inception', '480']), POOL]),
        ('b4', 'body', [('incep', ['Inception', str(c)]) for c in (512, 512, 512, 528, 832)]
         + [POOL]),
        ('b5', 'body', [('incep', ['Inception', '832']), ('incep', ['Inception', '1024']),
                        ('avgpool', ['global avg pool', 'then flatten'])]),
        ('dense', 'head', [('dense', ['dense layer', '10 outputs'])]),
        ('output', None, [('io', ['output', '10 class scores'])]),
    ]
    shapes = [None, '64 × 24 × 24', '192 × 12 × 12', '480 × 6 × 6', '832 × 3 × 3',
              '1024', '10']

    def chip_width(lines):
        return max(text_width(lines[0], 14.5) * 1.12, text_width(lines[1], 13)) + 14

    y = 22
    rows = []                    # (name, group, top, bottom)
    for name, group, chips in modules:
        widths = [max(74, chip_width(lines)) for _, lines in chips]
        inner = sum(widths) + gap_x * (len(chips) - 1)
        is_module = name.startswith('b')
        h = chip_h + 2 * pad if is_module else chip_h
        top = y
        if is_module:
            mw = inner + 2 * pad
            svg.rect(cx - mw / 2, top, mw, h, '#ffffff', '#9a9a9a', rx=9, width=1.2)
            # the module's name sits left of its box, right of the group label
            checks.append((name, 66 + 12 + text_width(name, 16), cx - mw / 2))
            checks.append((name + ' box', cx + mw / 2, W - 16 - 8))
            svg.text(cx - mw / 2 - 12, top + h / 2 + 6, name, size=16, weight='bold',
                     anchor='end')
        x = cx - inner / 2
        cy = top + (pad if is_module else 0)
        for i, ((kind, lines), w) in enumerate(zip(chips, widths)):
            box(svg, x + w / 2, cy, w, chip_h, kind, lines, checks=checks)
            if i:
                svg.line([(x - gap_x + 1, cy + chip_h / 2), (x - 1, cy + chip_h / 2)])
            x += w + gap_x
        rows.append((name, group, top, top + h))
        y = top + h + arrow_gap
    height = y - arrow_gap

    # arrows between rows, labelled with the shape that flows along them
    for i in range(len(rows) - 1):
        y0, y1 = rows[i][3], rows[i + 1][2]
        svg.line([(cx, y0), (cx, y1)])
        if i >= 1:
            svg.text(cx + 10, (y0 + y1) / 2 + 5, shapes[i], size=13, anchor='start',
                     fill='#1f4e79', weight='bold')

    # group bands (drawn first, behind everything)
    bands = []
    for group, tint, edge in [('stem', '#f3f7fc', '#b9cde6'), ('body', '#fdfaf0', '#e3d39a'),
                              ('head', '#fbf3f8', '#e0b8d2')]:
        members = [r for r in rows if r[1] == group]
        top, bottom = members[0][2] - 10, members[-1][3] + 10
        bands.append(f'<rect x="16" y="{top:g}" width="{W - 32}" height="{bottom - top:g}" '
                     f'rx="10" fill="{tint}" stroke="{edge}" stroke-width="1.2"/>')
        mid = (top + bottom) / 2
        bands.append(f'<text x="44" y="{mid:g}" font-size="15" font-weight="bold" '
                     f'fill="{INK}" text-anchor="middle" dominant-baseline="central" '
                     f'transform="rotate(-90 44 {mid:g})">{group}</text>')
    svg.parts[:0] = bands

    legend_y = height + 34
    kinds = ['io', 'conv1', 'conv', 'maxpool', 'incep', 'avgpool', 'dense']
    bottom = legend(svg, W / 2, legend_y, kinds, W - 120)
    svg.height = bottom + 12
    check('googlenet.svg', checks)
    return svg.render(
        'GoogLeNet',
        'GoogLeNet for a 1x96x96 input. Stem: b1 (7x7 convolution, 3x3 max-pooling) gives '
        '64x24x24; b2 (1x1 and 3x3 convolutions, max-pooling) gives 192x12x12. Body: b3 (two '
        'Inception blocks, max-pooling) gives 480x6x6; b4 (five Inception blocks, max-pooling) '
        'gives 832x3x3; b5 (two Inception blocks, global average pooling) gives 1024. '
        'Head: a dense layer with 10 outputs.')


def main():
    for name, make in [('inception.svg', inception_svg), ('googlenet.svg', googlenet_svg)]:
        path = os.path.join(HERE, name)
        with open(path, 'w', encoding='utf-8') as f:
            f.write(make())
        print('wrote', os.path.relpath(path))


if __name__ == '__main__':
    main()
