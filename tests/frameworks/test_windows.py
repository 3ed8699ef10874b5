"""`model.window_report`: what each convolution and pooling window sees of real input versus
padding, the same in every framework (d2lmini/windows.py), from the padding each adapter
reads off its framework's layers."""
import pathlib

import pytest

from d2lmini.windows import SmallestSizes
from kits import KITS
from test_costs import googlenet, image_shape

GOOGLENET_TABLES = pathlib.Path(__file__).with_name('googlenet_windows.txt')


@pytest.fixture
def kit(framework):
    return KITS[framework]()


_MODELS = {}


@pytest.fixture
def model(framework):
    """The chapter's GoogLeNet, built once per framework for this module's tests."""
    if framework not in _MODELS:
        _MODELS[framework] = googlenet(framework)
    return _MODELS[framework]


def kept_table(size):
    """The table kept for a size x size input (written from PyTorch's:
    `print(GoogleNet().window_report((1, 1, size, size)))` under '=== <size>x<size>')."""
    sections = GOOGLENET_TABLES.read_text().split('=== ')[1:]
    return next(s.split('\n', 1)[1] for s in sections if s.startswith(f'{size}x{size}\n'))


@pytest.mark.parametrize('size', [1, 65, 96])
def test_window_report_of_the_chapter_googlenet_is_the_same_in_every_framework(
        kit, model, size):
    report = model.window_report(image_shape(kit, 1, size))
    assert str(report) + '\n' == kept_table(size)
    # the same rows and numbers as the size arithmetic gives from the 96x96 report, to the bit
    assert report.windows == model.window_report(image_shape(kit, 1, 96)).at(size).windows
    first = report.windows[0]
    assert (first.layer.label, first.layer.padding) == ('conv 7x7/2', ((3, 3), (3, 3)))
    if size == 1:
        assert first.real_share == 1 / 49 and first.dead_taps == 48


def test_smallest_inputs_of_the_chapter_googlenet(kit, model):
    """Runs at 1x1; no output of padding alone at any size (each stride-2 layer pads by
    kernel // 2 and rounds up, so its last window is centred on input); the 5x5 convolutions
    of b5 lose their outer taps until their map is 3x3: ceil(n / 32) >= 3, n >= 65. Checked
    with the framework's own shapes at 64 and 65, not only by the arithmetic."""
    report = model.window_report(image_shape(kit, 1, 96))
    assert report.smallest_sizes() == SmallestSizes(runs=1, no_padding_only=1, no_dead_taps=65)
    assert not any(report.at(n).padding_only_rows for n in range(1, 300))
    at64 = model.window_report(image_shape(kit, 1, 64))
    assert [(w.layer.label, w.layer.in_shape[1:], w.dead_taps)
            for w in at64.dead_tap_convolutions] == [('conv 5x5', (2, 2), 16)] * 2
    assert not model.window_report(image_shape(kit, 1, 65)).dead_tap_convolutions


def padding_net(kit):
    """A net for 1 x 5 x 5 inputs whose padding each framework writes its own way, and the
    (before, after) pairs per axis (H, W) its windows should have."""
    framework = kit.framework_id
    if framework == 'pytorch':
        from torch import nn
        return nn.Sequential(
            nn.ZeroPad2d((0, 1, 2, 0)),         # left, right, top, bottom
            nn.Conv2d(1, 2, 3, stride=2),       # 7x6 -> 3x2, after a fold of the pad
            nn.Conv2d(2, 2, 4, padding='same'),  # PyTorch: the extra pixel after
            nn.MaxPool2d(3, 1, padding=(0, 1)), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
            nn.Linear(2, 3)), [((2, 0), (0, 1)), ((1, 2), (1, 2)), ((0, 0), (1, 1)),
                               ((0, 0), (0, 0))]
    if framework == 'tensorflow':
        import tensorflow as tf
        L = tf.keras.layers
        return tf.keras.Sequential([
            L.ZeroPadding2D(((2, 0), (0, 1))), L.Conv2D(2, 3, strides=2),
            L.Conv2D(2, 4, padding='same'),             # total 3: 1 before, 2 after
            L.Conv2D(2, 2, strides=2, padding='same'),  # on 3x2: totals 1 and 0
            L.MaxPool2D(3, 1, padding='same'), L.GlobalAveragePooling2D(), L.Dense(3)]), \
            [((2, 0), (0, 1)), ((1, 2), (1, 2)), ((0, 1), (0, 0)), ((1, 1), (1, 1)),
             ((0, 0), (0, 0))]
    if framework == 'jax':
        def net(model):
            from flax import linen as nn
            d2l = kit.d2l
            return nn.Sequential([
                nn.Conv(2, (3, 3), strides=2, padding=((2, 0), (0, 1))),
                nn.Conv(2, (4, 4), padding='SAME'),              # lax: 1 before, 2 after
                nn.Conv(2, (2, 2), strides=2, padding='SAME'),   # on 3x2: totals 1 and 0
                lambda x: d2l.max_pool(x, (3, 3), strides=(1, 1), padding='SAME'),
                lambda x: nn.avg_pool(x, (1, 2), padding=((0, 0), (1, 0))),
                lambda x: x.mean(axis=(1, 2)), nn.Dense(3)])
        return net, [((2, 0), (0, 1)), ((1, 2), (1, 2)), ((0, 1), (0, 0)), ((1, 1), (1, 1)),
                     ((0, 0), (1, 0)), ((0, 0), (0, 0))]
    nn = kit.gluon_nn()
    net = nn.HybridSequential()
    net.add(nn.Conv2D(2, 3, strides=2, padding=(2, 1)),     # MXNet pads symmetrically
            nn.Conv2D(2, (4, 3), padding=(1, 0)), nn.AvgPool2D((3, 1), 1, padding=(1, 0)),
            nn.GlobalMaxPool2D(), nn.Dense(3))
    return net, [((2, 2), (1, 1)), ((1, 1), (0, 0)), ((1, 1), (0, 0)), ((0, 0), (0, 0))]


@pytest.mark.filterwarnings('ignore:Using padding=.same. with even kernel')
def test_window_report_reads_each_framework_s_padding(kit):
    net, paddings = padding_net(kit)
    report = kit.classifier(net).window_report(image_shape(kit, 1, 5))
    assert [w.layer.padding for w in report.windows] == paddings
    assert report.windows[-1].layer.label == 'global ' + report.windows[-1].layer.kind.replace(
        '_', ' ')


def test_window_report_of_a_hand_computable_network(kit):
    """conv 3x3 padded by 1 on 8x8: along an axis 8 outputs x 3 taps, 2 of them on padding
    (the first output's first tap, the last's last): 22 of 24 real, (22/24)^2 a window."""
    report = kit.classifier(kit.make_cost_net()).window_report(image_shape(kit, 1, 8))
    assert [(w.index, w.layer.label, w.layer.padding) for w in report.windows] == [
        (0, 'conv 3x3', ((1, 1), (1, 1))), (1, 'max pool 2x2/2', ((0, 0), (0, 0))),
        (2, 'conv 1x1 g2', ((0, 0), (0, 0))), (3, 'global avg pool', ((0, 0), (0, 0)))]
    assert report.windows[0].real_share == (22 / 24) ** 2
    assert [w.real_share for w in report.windows[1:]] == [1.0] * 3
    assert report.smallest_sizes() == SmallestSizes(2, 2, 2)    # 2x2/2 pool: n >= 2
