"""The window report's arithmetic (d2lmini/windows.py) and the padding it reads
(costs.Layer.padding, the fold of 'pad' layers), on layers described by hand: no framework."""
import itertools
import math

import pytest

from d2lmini import windows
from d2lmini.costs import Layer, Report
from d2lmini.windows import WindowError, WindowReport


def conv(in_shape, out_shape, kernel, stride=1, padding=0, child=0, name='conv'):
    return Layer(name, 'Conv2d', child, 'conv', in_shape, out_shape, kernel, stride,
                 padding=padding)


def pool(in_shape, out_shape, kernel, stride, padding=0, child=0, name='pool'):
    return Layer(name, 'MaxPool2d', child, 'max_pool', in_shape, out_shape, kernel, stride,
                 padding=padding)


def report_of(layers, input_shape):
    return WindowReport(Report(layers), input_shape)


def brute_force(n_in, n_out, kernel, stride, before):
    """axis_windows by enumerating every output and tap."""
    real = [[0 <= o * stride - before + t < n_in for t in range(kernel)] for o in range(n_out)]
    return (sum(map(sum, real)), sum(any(r[t] for r in real) for t in range(kernel)),
            sum(not any(r) for r in real))


def test_padding_is_stored_as_a_before_after_pair_per_axis():
    assert conv((1, 5, 5), (4, 5, 5), 3, padding=1).padding == ((1, 1), (1, 1))
    assert conv((1, 5, 5), (4, 3, 5), 3, padding=(0, 1)).padding == ((0, 0), (1, 1))
    assert conv((1, 4, 4), (4, 2, 2), 3, 2, padding=((0, 1), (0, 1))).padding == \
        ((0, 1), (0, 1))
    assert conv((1, 5, 5), (4, 3, 3), 3).padding == ((0, 0), (0, 0))     # default: none
    assert Layer('d', 'Linear', 0, 'dense', (8,), (3,), in_channels=8, out_channels=3
                 ).padding == ()
    gap = Layer('gap', 'AdaptiveAvgPool2d', 0, 'global_avg_pool', (8, 3, 3), (8,))
    assert gap.padding == ((0, 0), (0, 0)) and gap.whole_input
    with pytest.raises(ValueError, match='pair per spatial axis'):
        conv((1, 5, 5), (4, 5, 5), 3, padding=(1, 1, 1))


def test_padding_changes_no_cost():
    padded, unpadded = (Report([conv((3, 8, 8), (4, 8, 8), 3, padding=p)]) for p in (1, 0))
    assert padded.total == unpadded.total       # every tap counts, padding too


def test_a_pad_layer_is_folded_into_the_padding_of_the_layer_it_feeds():
    layers = [Layer('pad', 'ZeroPadding2D', 0, 'pad', (1, 8, 8), (1, 15, 11),
                    padding=((3, 4), (1, 2))),
              conv((1, 15, 11), (4, 8, 6), 3, 2, padding=((1, 0), (0, 1)))]
    layer = Report(layers).rows[0].layer
    assert layer.in_shape == (1, 8, 8) and layer.padding == ((4, 4), (1, 3))
    # Without its amounts, a pad layer pads half before, the extra pixel after
    unsplit = [Layer('pad', 'ZeroPadding2D', 0, 'pad', (1, 96, 96), (1, 103, 102)),
               conv((1, 103, 102), (64, 49, 48), 7, 2)]
    assert Report(unsplit).rows[0].layer.padding == ((3, 4), (3, 3))


def test_closed_forms_agree_with_enumeration():
    for n_in, kernel, stride, before, after in itertools.product(
            range(1, 8), range(1, 6), range(1, 4), range(0, 5), range(0, 3)):
        n_out = windows.output_size(n_in, kernel, stride, before, after)
        if n_out >= 1:
            assert windows.axis_windows(n_in, n_out, kernel, stride, before) == \
                brute_force(n_in, n_out, kernel, stride, before), (n_in, kernel, stride, before)


def test_a_3x3_convolution_padded_by_1_on_a_1x1_input_sees_one_real_tap_of_nine():
    w, = report_of([conv((1, 1, 1), (8, 1, 1), 3, padding=1)], (1, 1, 1)).windows
    assert w.real_share == pytest.approx(1 / 9)
    assert (w.dead_taps, w.taps, w.padding_only) == (8, 9, 0)


def test_a_7x7_stride_2_convolution_padded_by_3_on_a_1x1_input():
    w, = report_of([conv((1, 1, 1), (64, 1, 1), 7, 2, padding=3)], (1, 1, 1)).windows
    assert w.real_share == pytest.approx(1 / 49)
    assert (w.dead_taps, w.padding_only, w.jump) == (48, 0, (2, 2))


def test_tensorflow_same_padding_at_stride_2_pads_after_only():
    # 'same', 3x3/2 on 4x4: total (2 - 1) * 2 + 3 - 4 = 1, 0 before, 1 after. Outputs 0 and 1
    # read pixels 0..2 (3 real) and 2..4 (2 real): 5 of 6 taps a row, 25 of 36 per window.
    w, = report_of([conv((1, 4, 4), (8, 2, 2), 3, 2, padding=((0, 1), (0, 1)))],
                   (1, 4, 4)).windows
    assert w.real_share == pytest.approx(25 / 36) and w.dead_taps == 0
    # more padding before than a window can reach: outputs made of padding alone
    # (a 2x1 window on 2x1, 2 rows before: output rows read rows -2..-1, -1..0, 0..1)
    w, = report_of([conv((1, 2, 1), (8, 3, 1), (2, 1), 1, padding=((2, 0), (0, 0)))],
                   (1, 2, 1)).windows
    assert w.padding_only == 1          # the first output row, 1 position wide
    assert w.dead_taps == 0 and w.real_share == pytest.approx((0 + 1 + 2) / 6)


def test_padding_only_and_dead_taps_differ():
    # 5x5 padded by 2 on 2x2: no output is padding alone, but tap 0 (and 4) of each axis
    # always lands on padding: 25 - 3 * 3 = 16 dead taps
    w, = report_of([conv((1, 2, 2), (8, 2, 2), 5, padding=2)], (1, 2, 2)).windows
    assert (w.padding_only, w.dead_taps) == (0, 16)


def small_googlenet_like():
    """conv 7x7/2 p3 -> pool 3x3/2 p1 -> two branches (1x1; 5x5 p2) -> pool 3x3/2 p1 ->
    global avg pool -> dense, at 32x32: sizes 16, 8, 8, 4, 1."""
    return [conv((1, 32, 32), (8, 16, 16), 7, 2, 3),
            pool((8, 16, 16), (8, 8, 8), 3, 2, 1, child=1),
            conv((8, 8, 8), (4, 8, 8), 1, child=2, name='branch1'),
            conv((8, 8, 8), (4, 8, 8), 5, padding=2, child=2, name='branch2'),
            pool((8, 8, 8), (8, 4, 4), 3, 2, 1, child=3),
            Layer('gap', 'GlobalAvgPool2D', 4, 'global_avg_pool', (8, 4, 4), (8,)),
            Layer('fc', 'Dense', 5, 'dense', (8,), (10,), in_channels=8, out_channels=10)]


def test_windows_follow_sizes_through_branches_and_jumps():
    report = report_of(small_googlenet_like(), (1, 32, 32))
    assert [w.index for w in report.windows] == [0, 1, 2, 3, 4, 5]       # no dense row
    # a window reads the latest earlier output of its size: branch2 reads branch1's size,
    # which is the pool's at every input size (concatenated branches have equal sizes)
    assert [w.source for w in report.windows] == [None, 0, 1, 2, 3, 4]
    assert [w.jump for w in report.windows] == [(2, 2), (4, 4), (4, 4), (4, 4), (8, 8),
                                                (32, 32)]


def test_the_arithmetic_at_another_size_and_the_smallest_sizes():
    report = report_of(small_googlenet_like(), (1, 32, 32))
    at7 = report.at(7)      # 7 -> 4 -> 2 -> 2 -> 1: the 5x5 sees a 2x2 map
    assert [w.layer.out_shape[1:] for w in at7.windows] == [(4, 4), (2, 2), (2, 2), (2, 2),
                                                            (1, 1), (1, 1)]
    assert at7.windows[5].layer.kernel == (1, 1)        # the global pool's window follows
    assert [w.dead_taps for w in at7.dead_tap_convolutions] == [16]
    assert report.at(32).windows == report.windows
    # runs at 1; no padding-only output at 1; the 5x5 needs a 3x3 map: ceil(n/4) >= 3 -> 9
    assert report.smallest_sizes() == windows.SmallestSizes(1, 1, 9)
    assert report_of(small_googlenet_like()[:1], (1, 32, 32)).smallest_sizes() == \
        windows.SmallestSizes(1, 1, 5)      # 7x7/2 p3: tap 0 reads 2o - 3 >= 0 from o = 2


def test_a_model_that_does_not_run_at_small_sizes():
    # unpadded 5x5, then 3x3/2: n - 4 >= 3
    report = report_of([conv((1, 9, 9), (4, 5, 5), 5), pool((4, 5, 5), (4, 2, 2), 3, 2)],
                       (1, 9, 9))
    with pytest.raises(WindowError, match='does not run'):
        report.at(6)
    assert report.smallest_sizes() == windows.SmallestSizes(7, 7, 7)
    assert report.smallest_sizes(largest=6) == windows.SmallestSizes(None, None, None)


def test_a_dense_layer_reading_a_flattened_map_pins_its_size():
    layers = [conv((1, 8, 8), (4, 8, 8), 3, padding=1), pool((4, 8, 8), (4, 4, 4), 2, 2),
              Layer('fc', 'Linear', 1, 'dense', (64,), (10,), in_channels=64, out_channels=10)]
    report = report_of(layers, (1, 8, 8))
    assert report.smallest_sizes() == windows.SmallestSizes(8, 8, 8)
    with pytest.raises(WindowError, match='dense'):
        report.at(10)


def test_sizes_the_arithmetic_does_not_give_are_refused():
    # ceil-mode pooling: 5 -> 3 with a 2x2/2 unpadded window
    with pytest.raises(WindowError, match='does not model'):
        report_of([pool((4, 5, 5), (4, 3, 3), 2, 2)], (4, 5, 5))
    # a map no window writes (something unseen halved it)
    with pytest.raises(WindowError, match='does not see'):
        report_of([conv((1, 8, 8), (4, 8, 8), 3, padding=1), conv((4, 4, 4), (4, 4, 4), 1)],
                  (1, 8, 8))


def test_the_table_has_a_line_per_window_and_a_summary():
    report = report_of(small_googlenet_like(), (1, 32, 32)).at(1)
    lines = str(report).splitlines()
    assert lines[0].split()[:5] == ['#', 'child', 'layer', 'input', 'output']
    assert len({len(line) for line in lines[:8]}) == 1     # header, rule, 6 rows: one width
    assert lines[2].split() == ['0', '0', 'conv', '7x7/2', '1x1', '1x1', '3', '2', '2.0%', '0',
                                '48', 'of', '49']
    assert lines[3].split()[-1] == '-'                       # a pool has no weights
    assert lines[9].startswith('1x1 input, 6 windows: real taps down to 2.0% (#0); no output '
                               'made of padding alone; dead taps in 2 of 3 convolutions '
                               '(72 of 75 kernel positions)')
    assert lines[10] == ('smallest square input: runs at 1x1; no output made of padding alone '
                         'at 1x1; no dead taps at 9x9')
    assert math.isclose(report.windows[3].real_share, 1 / 25)
