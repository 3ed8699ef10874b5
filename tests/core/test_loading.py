"""Shuffling, batching and resizing, independent of any framework."""
import numpy as np
import pytest

from d2lmini import loading, seeding


def make_loader(n=100, batch_size=10, shuffle=True, drop_last=False):
    images = np.arange(n, dtype=np.uint8)[:, None, None].repeat(2, 1).repeat(2, 2)
    transform = loading.ImageTransform((2, 2), (2, 2), 'NCHW')
    return loading.BatchLoader((images, np.arange(n)), batch_size, shuffle, drop_last,
                               transform, to_framework=lambda X, y: (X, y))


def epoch_order(loader):
    return np.concatenate([y for _, y in loader])


def test_shuffle_differs_between_epochs_and_repeats_under_a_seed():
    seeding.set_seed(3)
    loader = make_loader()
    first, second = epoch_order(loader), epoch_order(loader)
    assert sorted(first) == list(range(100)) and sorted(second) == list(range(100))
    assert not np.array_equal(first, second)
    seeding.set_seed(3)
    again = make_loader()
    np.testing.assert_array_equal(epoch_order(again), first)
    np.testing.assert_array_equal(epoch_order(again), second)
    seeding.set_seed(4)
    assert not np.array_equal(epoch_order(make_loader()), first)


def test_no_shuffle_keeps_order_and_drop_last():
    assert epoch_order(make_loader(shuffle=False)).tolist() == list(range(100))
    loader = make_loader(n=105, drop_last=True)
    assert len(loader) == 10 and len(epoch_order(loader)) == 100
    assert len(make_loader(n=105)) == 11


def test_images_and_labels_stay_paired():
    loader = make_loader()
    for X, y in loader:
        np.testing.assert_allclose(X[:, 0, 0, 0] * 255, y, atol=1e-4)


def test_bilinear_matrix_rows_are_convex_and_identity_at_same_size():
    m = loading.bilinear_matrix(28, 96)
    assert m.shape == (96, 28) and (m >= 0).all()
    np.testing.assert_allclose(m.sum(axis=1), 1, atol=1e-6)
    np.testing.assert_allclose(loading.bilinear_matrix(28, 28), np.eye(28), atol=1e-7)


def test_bilinear_upsampling_of_a_ramp_is_linear_inside():
    ramp = np.arange(4, dtype=np.float32)
    out = loading.bilinear_matrix(4, 8) @ ramp
    # half-pixel centres: output i samples input position (i + 0.5) / 2 - 0.5, clamped
    expected = np.clip((np.arange(8) + 0.5) / 2 - 0.5, 0, 3)
    np.testing.assert_allclose(out, expected, atol=1e-6)


def test_unknown_layout_is_rejected():
    with pytest.raises(ValueError, match='NCHW or NHWC'):
        loading.ImageTransform((28, 28), (96, 96), 'CHWN')
