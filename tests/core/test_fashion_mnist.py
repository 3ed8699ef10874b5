"""The loader on the real Fashion-MNIST files."""
import numpy as np
import pytest

from d2lmini import fashion_mnist, loading
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


def test_take_keeps_the_first_examples_in_a_copy():
    data = FashionMNIST(batch_size=32)
    train_y, val_y = data.train[1], data.val[1]
    small = data.take(train_examples=96, val_examples=40)
    assert type(small) is FashionMNIST and small.batch_size == 32
    assert data.train[1] is train_y and data.val[1] is val_y        # the original is whole
    assert len(data.train_dataloader()) == 60000 // 32
    train = small.train_dataloader()
    assert len(train) == 3
    labels = np.concatenate([y for _, y in train])                 # shuffled among themselves
    assert sorted(labels.tolist()) == sorted(train_y[:96].tolist())
    val = list(small.val_dataloader())
    assert [len(y) for _, y in val] == [32, 8]
    np.testing.assert_array_equal(np.concatenate([y for _, y in val]), val_y[:40])
    X, _ = val[0]
    np.testing.assert_array_equal(X, next(iter(data.val_dataloader()))[0])


def test_take_of_one_split_and_of_none_at_all():
    data = FashionMNIST(batch_size=64, resize=(32, 32))
    only_val = data.take(val_examples=64)
    assert len(only_val.train[1]) == 60000 and len(only_val.val_dataloader()) == 1
    assert next(iter(only_val.val_dataloader()))[0].shape == (64, 1, 32, 32)
    empty = data.take(train_examples=0)
    with pytest.raises(ValueError, match='no batch: 0 examples'):
        next(iter(empty.train_dataloader()))
    few = data.take(train_examples=10)                   # less than one batch, which is dropped
    with pytest.raises(ValueError, match='no batch: 10 examples in batches of 64'):
        next(iter(few.train_dataloader()))


def test_take_keeps_a_framework_subclass_and_its_layout():
    class ChannelsLast(FashionMNIST):
        layout = 'NHWC'

        @staticmethod
        def to_framework(images, labels):
            return images.copy(), labels.astype(np.int64)

    small = ChannelsLast(batch_size=8).take(train_examples=16, val_examples=8)
    assert type(small) is ChannelsLast
    X, y = next(iter(small.val_dataloader()))
    assert X.shape == (8, 28, 28, 1) and y.dtype == np.int64


@pytest.mark.parametrize('name, count', [('train_examples', -1), ('train_examples', 2.5),
                                         ('val_examples', True), ('val_examples', '8'),
                                         ('train_examples', 60001), ('val_examples', 10001)])
def test_take_rejects_a_bad_count_by_name(name, count):
    data = FashionMNIST()
    with pytest.raises(ValueError, match=f'{name}={count!r} is not allowed'):
        data.take(**{name: count})
    with pytest.raises(TypeError):
        data.take(8)                                     # examples, not batches: say which


def test_take_needs_splits_kept_as_arrays():
    class Streamed(loading.DataModule):
        def get_dataloader(self, train):
            return iter(())
    with pytest.raises(TypeError, match='Streamed keeps no `train` tuple of arrays'):
        Streamed().take(train_examples=8)
