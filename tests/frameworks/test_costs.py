"""`model.cost_report`: the same per-layer costs in every framework, by the formulas of
d2lmini/costs.py, and in agreement with the frameworks' own counters where they keep one
(PyTorch's FlopCounterMode, XLA's cost analysis)."""
import math
import pathlib

import pytest

from d2lmini.costs import CostError
from kits import KITS

GOOGLENET_TABLE = pathlib.Path(__file__).with_name('googlenet_costs_96x96.txt')


@pytest.fixture
def kit(framework):
    return KITS[framework]()


def image_shape(kit, channels, size):
    """A batch of one image in the framework's layout."""
    return (1, channels, size, size) if kit.layout == 'NCHW' else (1, size, size, channels)


def googlenet(framework, num_classes=10):
    from book.tools.chapters import load_code
    return load_code('googlenet', framework)['GoogleNet'](num_classes=num_classes)


def test_cost_report_of_a_hand_computable_network(kit):
    report = kit.classifier(kit.make_cost_net()).cost_report(image_shape(kit, 1, 8))
    # (layer, input, output, MACs, parameters, read bytes, written bytes), by the formulas:
    expected = [
        # 8*8 outputs * 4 channels * 3*3 taps * 1 input channel; 3*3*1*4 weights + 4 biases
        ('conv 3x3', (1, 8, 8), (4, 8, 8), 8 * 8 * 4 * 9 * 1, 9 * 4 + 4, 4 * 64, 4 * 256),
        ('max pool 2x2/2', (4, 8, 8), (4, 4, 4), 0, 0, 4 * 256, 4 * 64),
        # 4*4 outputs * 8 channels * 1 tap * 4/2 input channels per group; 1*2*8 + 8
        ('conv 1x1 g2', (4, 4, 4), (8, 4, 4), 4 * 4 * 8 * 2, 2 * 8 + 8, 4 * 64, 4 * 128),
        ('global avg pool', (8, 4, 4), (8, 1, 1), 0, 0, 4 * 128, 4 * 8),
        ('dense', (8,), (3,), 8 * 3, 8 * 3 + 3, 4 * 8, 4 * 3),
    ]
    assert [(row.layer.label, row.layer.in_shape, row.layer.out_shape, row.cost.macs,
             row.cost.params, row.cost.read_bytes, row.cost.written_bytes)
            for row in report.rows] == expected
    assert [row.layer.child for row in report.rows] == [0, 1, 2, 3, 4]    # ReLU: no row
    assert [row.cost.weight_bytes for row in report.rows] == [4 * 40, 0, 4 * 24, 0, 4 * 27]
    total = report.total
    assert (total.macs, total.params) == (2304 + 256 + 24, 40 + 24 + 27)
    assert (total.read_bytes, total.written_bytes) == (2080, 1836)
    assert report.rows[0].cost.intensity == 2304 / (160 + 256 + 1024)
    assert total.intensity == 2584 / (364 + 2080 + 1836)


def test_cost_report_of_the_chapter_googlenet_is_the_same_in_every_framework(kit):
    """The table, in every framework, is the one kept in googlenet_costs_96x96.txt (written
    from PyTorch's: `print(GoogleNet().cost_report((1, 1, 96, 96)))`)."""
    report = googlenet(kit.framework_id).cost_report(image_shape(kit, 1, 96))
    assert str(report) + '\n' == GOOGLENET_TABLE.read_text()
    assert report.total.params == 5977530       # chapter.yml's parameters
    assert [cost.macs for cost in report.by_child().values()] == [    # b1..b5, head
        7225344, 66060288, 79405056, 100998144, 22367232, 10240]


def test_cost_report_names_a_layer_it_does_not_know(kit):
    model = kit.classifier(kit.make_bn_dropout_net())
    with pytest.raises(CostError, match=r"BatchNorm.*unknown='zero'"):
        model.cost_report(image_shape(kit, 1, 8))
    report = model.cost_report(image_shape(kit, 1, 8), unknown='zero')
    uncounted = [row for row in report.rows if row.layer.kind == 'unknown']
    assert len(uncounted) == 1 and uncounted[0].layer.label.endswith('(not counted)')
    assert uncounted[0].cost.macs == uncounted[0].cost.bytes == 0
    # conv 3x3 1 -> 8 on 8x8, dense 4*4*8 -> 10: the counted layers
    assert report.total.macs == 8 * 8 * 8 * 9 + 128 * 10


def test_cost_report_agrees_with_pytorch_flop_counter(framework):
    """FlopCounterMode counts 2 FLOPs a multiply-add for convolutions (aten.convolution) and
    matrix products (aten.addmm), and nothing else (no bias adds, ReLU or pooling): its total
    is exactly twice the report's."""
    if framework != 'pytorch':
        pytest.skip('a PyTorch counter')
    import torch
    from torch.utils.flop_counter import FlopCounterMode
    model = googlenet('pytorch')
    report = model.cost_report((1, 1, 96, 96))
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(torch.zeros(1, 1, 96, 96))
    assert counter.get_total_flops() == 2 * report.total.macs == 552132608


def xla_flops(model, X_shape):
    import jax
    import jax.numpy as jnp
    X = jax.ShapeDtypeStruct(X_shape, jnp.float32)
    variables = jax.eval_shape(model.init, jax.random.PRNGKey(0), X)
    analysis = jax.jit(model.apply).lower(variables, X).compile().cost_analysis()
    return (analysis[0] if isinstance(analysis, list) else analysis)['flops']


def taps_inside(n_in, n_out, kernel, stride):
    """Kernel taps over real input (not padding) along one axis, summed over the outputs,
    for the symmetric padding that turns n_in into n_out."""
    pad = ((n_out - 1) * stride + kernel - n_in) // 2
    return sum(0 <= o * stride - pad + t < n_in for o in range(n_out) for t in range(kernel))


def test_cost_report_agrees_with_xla_cost_analysis(framework):
    """XLA counts 2 FLOPs a multiply-add too, but differs from 2 x the report's MACs twice:
    it leaves out the taps of a convolution that fall on padding (the report, like the
    GoogLeNet paper and FlopCounterMode, counts every tap), and it adds the elementwise work
    (a FLOP each: bias adds, ReLU, 8 comparisons a 3x3 max-pool output, a global pool's sums
    and division). On GoogLeNet at 96x96, whose late maps are 6x6 and 3x3, the padding taps
    are 11.5% of the MACs and the elementwise work 0.6%: XLA's count is 10.9% lower. So: the
    padding-free MACs, computed from the report's rows, explain XLA's count up to the
    elementwise work, which lies between 0 and 1% of 2 x MACs."""
    if framework != 'jax':
        pytest.skip('a JAX (XLA) counter')
    model = googlenet('jax')
    report = model.cost_report((1, 96, 96, 1))
    flops, macs = xla_flops(model, (1, 96, 96, 1)), report.total.macs
    assert 0.85 < flops / (2 * macs) < 0.9
    inside = sum(row.cost.macs if row.layer.kind == 'dense' else
                 row.layer.out_shape[0] * row.layer.in_channels // row.layer.groups
                 * math.prod(map(taps_inside, row.layer.in_shape[1:], row.layer.out_shape[1:],
                                 row.layer.kernel, row.layer.stride))
                 for row in report.rows if row.layer.kind in ('conv', 'dense'))
    assert 0 < flops - 2 * inside < 0.01 * 2 * macs


def test_tensorflow_cost_report_counts_the_layers_a_layer_makes_in_build(framework):
    """A Keras layer may make its sublayers in build(), once it knows its input's shape (the
    worked exercises' residual Inception block does): the report builds the model before it
    looks for layers, so it counts them."""
    if framework != 'tensorflow':
        pytest.skip('Keras layers only')
    import tensorflow as tf
    from d2lmini import tensorflow as d2l
    L = tf.keras.layers

    class Projecting(L.Layer):
        def build(self, input_shape):
            self.project = L.Conv2D(8, 1)

        def call(self, X):
            return self.project(X)

    class Net(d2l.Classifier):
        def __init__(self):
            super().__init__()
            self.net = tf.keras.Sequential([Projecting(), L.GlobalAveragePooling2D(), L.Dense(10)])

    report = Net().cost_report((1, 6, 6, 3))
    assert report.total.params == (3 * 8 + 8) + (8 * 10 + 10)
    assert report.total.macs == 6 * 6 * 3 * 8 + 8 * 10
