"""The cost report's arithmetic (d2lmini/costs.py), on layers described by hand: no framework."""
import pytest

from d2lmini import costs
from d2lmini.costs import CostError, Layer, Report


def conv(child, in_shape, out_shape, kernel, stride=1, groups=1, name='conv'):
    return Layer(name, 'Conv2d', child, 'conv', in_shape, out_shape, kernel, stride, groups,
                 bias=True)


def test_channels_first_drops_the_batch_and_moves_channels_to_the_front():
    assert costs.channels_first((2, 96, 96, 3), 'NHWC') == (3, 96, 96)
    assert costs.channels_first((2, 3, 96, 96), 'NCHW') == (3, 96, 96)
    assert costs.channels_first((2, 50, 8), 'NHWC') == (8, 50)      # (N, L, C): a sequence
    assert costs.channels_first((2, 10), 'NHWC') == (10,)
    with pytest.raises(ValueError, match='NCHW'):
        costs.channels_first((2, 10), 'CHW')


def test_costs_follow_the_formulas_and_scale_with_the_batch():
    layers = [conv(0, (3, 32, 32), (16, 16, 16), kernel=5, stride=2),
              Layer('pool', 'MaxPool2d', 0, 'max_pool', (16, 16, 16), (16, 8, 8), 2, 2),
              Layer('dense', 'Linear', 1, 'dense', (1024,), (10,), in_channels=1024,
                    out_channels=10, bias=False)]
    one, two = Report(layers, batch=1), Report(layers, batch=2)
    conv_macs = 16 * 16 * 16 * 5 * 5 * 3          # H_out W_out C_out k k C_in
    assert [row.cost.macs for row in one.rows] == [conv_macs, 0, 1024 * 10]
    assert [row.cost.params for row in one.rows] == [5 * 5 * 3 * 16 + 16, 0, 1024 * 10]
    assert one.rows[0].cost.read_bytes == 4 * 3 * 32 * 32
    assert one.rows[0].cost.written_bytes == 4 * 16 * 16 * 16
    # a batch of two: twice the multiply-adds and activations, the same weights
    assert two.total.macs == 2 * one.total.macs
    assert two.total.read_bytes == 2 * one.total.read_bytes
    assert two.total.weight_bytes == one.total.weight_bytes == 4 * one.total.params
    assert two.total.intensity > one.total.intensity


def test_grouped_convolution_divides_the_work_by_the_groups():
    grouped = Report([conv(0, (32, 8, 8), (64, 8, 8), kernel=3, groups=4)])
    assert grouped.total.macs == 8 * 8 * 64 * 3 * 3 * 32 // 4
    assert grouped.total.params == 3 * 3 * 32 // 4 * 64 + 64
    with pytest.raises(CostError, match='groups'):
        Report([conv(0, (30, 8, 8), (64, 8, 8), kernel=3, groups=4)])


def test_global_pools_are_windows_over_the_whole_input():
    row, = Report([Layer('gap', 'GlobalAveragePooling2D', 0, 'global_avg_pool', (1024, 3, 3),
                         (1024,))]).rows
    assert (row.layer.kind, row.layer.kernel, row.layer.out_shape) == (
        'avg_pool', (3, 3), (1024, 1, 1))
    assert row.layer.label == 'global avg pool' and row.cost.macs == 0


def test_padding_is_folded_into_the_layer_it_feeds_and_free_layers_are_no_rows():
    layers = [Layer('pad', 'ZeroPadding2D', 0, 'pad', (1, 96, 96), (1, 102, 102)),
              conv(0, (1, 102, 102), (64, 48, 48), kernel=7, stride=2),
              Layer('relu', 'ReLU', 1, 'free', (64, 48, 48), (64, 48, 48)),
              Layer('pool', 'MaxPool2d', 2, 'max_pool', (64, 48, 48), (64, 24, 24), 3, 2)]
    report = Report(layers)
    assert [row.layer.label for row in report.rows] == ['conv 7x7/2', 'max pool 3x3/2']
    assert report.rows[0].layer.in_shape == (1, 96, 96)       # it reads the unpadded input
    assert [row.layer.child for row in report.rows] == [0, 1]  # the ReLU's child had no row


def test_an_unknown_layer_is_named_or_listed_as_zero_cost():
    layers = [conv(0, (3, 8, 8), (8, 8, 8), kernel=3),
              Layer('net.1', 'BatchNorm2d', 1, 'unknown', (8, 8, 8), (8, 8, 8))]
    with pytest.raises(CostError, match=r"net\.1 \(BatchNorm2d\).*unknown='zero'"):
        Report(layers)
    report = Report(layers, unknown='zero')
    assert report.rows[1].layer.label == 'BatchNorm2d (not counted)'
    assert report.rows[1].cost == costs.Cost() and report.total == report.rows[0].cost
    with pytest.raises(ValueError, match='unknown'):
        Report(layers, unknown='skip')


def test_the_table_is_aligned_with_a_line_per_layer_and_a_total():
    report = Report([conv(0, (3, 32, 32), (16, 32, 32), kernel=3),
                     Layer('dense', 'Linear', 1, 'dense', (16,), (10,), in_channels=16,
                           out_channels=10)])
    lines = str(report).splitlines()
    assert lines[0].split()[:3] == ['#', 'child', 'layer']
    assert len({len(line) for line in lines[:-1]}) == 1        # all but the note: one width
    assert lines[2].split()[:5] == ['0', '0', 'conv', '3x3', '3x32x32']
    assert lines[-2].split()[:2] == ['total', f'{report.total.macs:,}']
    assert report.by_child() == {0: report.rows[0].cost, 1: report.rows[1].cost}
