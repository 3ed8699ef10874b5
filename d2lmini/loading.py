"""Framework-free minibatching: shuffle, gather, resize, lay out, hand to the framework."""
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
        order = (self.rng.permutation(self.num_examples) if self.shuffle
                 else np.arange(self.num_examples))
        for i in range(start, len(self)):
            index = np.sort(order[i * self.batch_size:(i + 1) * self.batch_size])
            yield self.to_framework(self.transform(self.images[index]),
                                    self.labels[index].astype(np.int32))


class DataModule(HyperParameters):
    """Base class of data sets: `get_dataloader(train)` is what a subclass provides."""

    def get_dataloader(self, train):
        raise NotImplementedError

    def train_dataloader(self):
        return self.get_dataloader(train=True)

    def val_dataloader(self):
        return self.get_dataloader(train=False)
