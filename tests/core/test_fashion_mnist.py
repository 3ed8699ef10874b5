"""The loader on the real Fashion-MNIST files."""
import numpy as np

from d2lmini import fashion_mnist
from d2lmini.fashion_mnist import FashionMNIST


def test_sizes_and_balanced_classes():
    (train_x, train_y), (test_x, test_y) = fashion_mnist.load_split(True), fashion_mnist.load_split(False)
    assert train_x.shape == (60000, 28, 28) and test_x.shape == (10000, 28, 28)
    assert np.bincount(train_y).tolist() == [6000] * 10
    assert np.bincount(test_y).tolist() == [1000] * 10


def test_pixel_statistics_at_28x28():
    data = FashionMNIST(batch_size=1000)
    total, total_sq, count = 0.0, 0.0, 0
    for X, _ in data.train_dataloader():
        total, total_sq, count = total + X.sum(), total_sq + (X.astype(np.float64) ** 2).sum(), count + X.size
    mean = total / count
    assert count == 60000 * 28 * 28
    assert abs(mean - 0.2860) <= 0.001
    assert abs(np.sqrt(total_sq / count - mean ** 2) - 0.3530) <= 0.001
    test_mean = np.mean([X.mean() for X, _ in FashionMNIST(batch_size=1000).val_dataloader()])
    assert abs(test_mean - 0.2868) <= 0.001


def test_every_example_once_per_epoch():
    data = FashionMNIST(batch_size=1000)
    labels = np.concatenate([y for _, y in data.train_dataloader()])
    assert len(labels) == 60000 and np.bincount(labels).tolist() == [6000] * 10
    val = list(FashionMNIST(batch_size=3000).val_dataloader())
    assert [len(y) for _, y in val] == [3000, 3000, 3000, 1000]     # nothing dropped


def test_layouts_at_96x96():
    nchw = FashionMNIST(batch_size=4, resize=(96, 96))
    X, y = next(iter(nchw.val_dataloader()))
    assert X.shape == (4, 1, 96, 96) and X.dtype == np.float32 and y.dtype == np.int32
    nhwc = FashionMNIST(batch_size=4, resize=(96, 96))
    nhwc.layout = 'NHWC'
    X2, _ = next(iter(nhwc.val_dataloader()))   # validation is not shuffled: same images
    np.testing.assert_array_equal(X2[..., 0], X[:, 0])
