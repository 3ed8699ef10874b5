"""Framework-free minibatching: shuffle, gather, resize, lay out, hand to the framework."""
import copy
import math

import numpy as np

from d2lmini import checks, seeding
from d2lmini.hyperparameters import HyperParameters


def bilinear_matrix(in_size, out_size):
    """(out_size, in_size) matrix M such that M @ signal resizes it bilinearly.

    Half-pixel centres and clamped edges, as PyTorch's `interpolate(..., align_corners=False)`
    and TensorFlow's `image.resize` use; resizing a batch is then two small matrix products.
    """
    src = (np.arange(out_size) + 0.5) * in_size / out_size - 0.5
    src = np.clip(src, 0, in_size - 1)
    low = np.floor(src).astype(int)
    high = np.minimum(low + 1, in_size - 1)
    weight_high = src - low
    matrix = np.zeros((out_size, in_size), np.float32)
    np.add.at(matrix, (np.arange(out_size), low), 1 - weight_high)
    np.add.at(matrix, (np.arange(out_size), high), weight_high)
    return matrix


class ImageTransform:
    """uint8 (N, H, W) -> float32 in [0, 1], resized, with a channel axis first or last."""

    def __init__(self, in_size, out_size, layout):
        if layout not in ('NCHW', 'NHWC'):
            raise ValueError(f'layout must be NCHW or NHWC, not {layout!r}')
        in_size = checks.image_size('in_size', in_size)
        self.layout = layout
        self.out_size = checks.image_size('out_size', out_size)
        self.rows = bilinear_matrix(in_size[0], out_size[0]) / 255
        self.cols_t = bilinear_matrix(in_size[1], out_size[1]).T.copy()

    def __call__(self, images):
        resized = np.matmul(np.matmul(self.rows, images.astype(np.float32)), self.cols_t)
        return resized[:, None] if self.layout == 'NCHW' else resized[..., None]


class BatchLoader:
    """Iterable over minibatches; each pass is one epoch with a fresh shuffle.

    The shuffling stream `rng` is seeded once from d2lmini's global seed, so a run repeats
    under `set_seed` while successive epochs still see different orders. Raises `ValueError`
    if the arrays differ in length or would make no batch.
    """

    def __init__(self, arrays, batch_size, shuffle, drop_last, transform, to_framework):
        self.images, self.labels = arrays
        if len(self.images) != len(self.labels):
            raise ValueError(f'{len(self.images)} images but {len(self.labels)} labels: '
                             f'each image needs one label.')
        batch_size = checks.integer('batch_size', batch_size, 1)
        self.batch_size, self.shuffle, self.drop_last = batch_size, shuffle, drop_last
        self.transform, self.to_framework = transform, to_framework
        self.rng = np.random.default_rng(seeding.draw_seed())

    @property
    def num_examples(self):
        return len(self.labels)

    def __len__(self):
        rounding = math.floor if self.drop_last else math.ceil
        return rounding(self.num_examples / self.batch_size)

    def __iter__(self):
        return self.batches(0)

    def batches(self, start=0):
        """One epoch's batches from index `start` on: the shuffle is drawn as for a whole
        epoch, and the batches before `start` are skipped without being made."""
        if len(self) == 0:
            drop = ', the last partial batch dropped' if self.drop_last else ''
            raise ValueError(f'no batch: {self.num_examples} examples in batches of '
                             f'{self.batch_size}{drop}. Use a smaller batch_size or more '
                             f'examples.')
        # Drawn now, not when the first batch is asked for: an epoch resumed after its last
        # step (no batch left to make) must still use up its shuffle.
        order = (self.rng.permutation(self.num_examples) if self.shuffle
                 else np.arange(self.num_examples))
        return self._batches(order, start)

    def _batches(self, order, start):
        for i in range(start, len(self)):
            index = np.sort(order[i * self.batch_size:(i + 1) * self.batch_size])
            yield self.to_framework(self.transform(self.images[index]),
                                    self.labels[index].astype(np.int32))


class DataModule(HyperParameters):
    """Base class of data sets: `get_dataloader(train)` is what a subclass provides.

    A subclass that keeps its splits in memory as `self.train` and `self.val`, each a tuple of
    equally long arrays (images, labels), as `FashionMNIST` does, also gets `take`.
    """

    def get_dataloader(self, train):
        raise NotImplementedError

    def take(self, *, train_examples=None, val_examples=None):
        """A copy of this data module that yields only the first `train_examples` training and
        the first `val_examples` validation examples; None keeps a split whole. This module is
        left as it is.

        For tests, benchmarks and quick trials: `d2l.FashionMNIST(batch_size=64).take(
        train_examples=640, val_examples=128)` trains on 10 batches of 64 an epoch (shuffled
        among themselves each epoch) and validates on 2. The examples are the split's first
        ones in stored order; its batches have the full module's layout and types.
        A count is an integer from 0 (the split then makes no batch, which `Trainer.fit`
        reports) to the split's size; anything else raises `ValueError` naming the argument.
        Raises `TypeError` if this module keeps no `train` and `val` arrays.
        """
        subset = copy.copy(self)
        for name, split, count in (('train_examples', 'train', train_examples),
                                   ('val_examples', 'val', val_examples)):
            if count is None:
                continue
            arrays = getattr(self, split, None)
            if not isinstance(arrays, tuple):
                raise TypeError(f'{type(self).__name__} keeps no `{split}` tuple of arrays, '
                                f'so take() cannot cut it: override take() for this data module.')
            count = checks.integer(name, count, 0)
            available = len(arrays[0])
            if count > available:
                raise ValueError(f'{name}={count} is not allowed: the {split} split has '
                                 f'{available} examples, so it must be an integer from 0 to '
                                 f'{available}.')
            setattr(subset, split, tuple(a[:count] for a in arrays))
        return subset

    def train_dataloader(self):
        return self.get_dataloader(train=True)

    def val_dataloader(self):
        return self.get_dataloader(train=False)
