"""Fashion-MNIST: where its files are looked for, how they are checked and read."""
import functools
import os
import pathlib

import numpy as np

from d2lmini import checks, datafiles, loading

FILES = {
    'train-images': datafiles.DataFile(
        'train-images-idx3-ubyte', 47040016,
        'c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888'),
    'train-labels': datafiles.DataFile(
        'train-labels-idx1-ubyte', 60008,
        'bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9'),
    'test-images': datafiles.DataFile(
        't10k-images-idx3-ubyte', 7840016,
        '5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b'),
    'test-labels': datafiles.DataFile(
        't10k-labels-idx1-ubyte', 10008,
        '0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34'),
}
MIRROR = 'https://github.com/zalandoresearch/fashion-mnist/raw/master/data/fashion/'
SYSTEM_DIR = pathlib.Path('/usr/share/datasets/fashion-mnist')
TEXT_LABELS = ('t-shirt', 'trouser', 'pullover', 'dress', 'coat',
               'sandal', 'shirt', 'sneaker', 'bag', 'ankle boot')
FIXES = (
    'install the Debian/Ubuntu package: sudo apt-get install dataset-fashion-mnist',
    'or put the four IDX files (plain or .gz) in a directory and set D2LMINI_DATA to it',
)


def search_places():
    """Where copies are looked for, in order: $D2LMINI_DATA, the user cache, the system copy."""
    places = []
    if os.environ.get('D2LMINI_DATA'):
        places.append(datafiles.Place(pathlib.Path(os.environ['D2LMINI_DATA']), '$D2LMINI_DATA'))
    places.append(datafiles.Place(cache_dir(), 'd2lmini cache'))
    places.append(datafiles.Place(SYSTEM_DIR, 'package dataset-fashion-mnist'))
    return places


def cache_dir():
    return datafiles.cache_root() / 'fashion-mnist'


def parse_idx(content):
    """An IDX file's payload as a uint8 array of the shape its header declares."""
    if content[:2] != b'\0\0' or content[2] != 0x08:
        raise ValueError('not an IDX file of unsigned bytes')
    ndim = content[3]
    shape = tuple(int.from_bytes(content[4 + 4 * i:8 + 4 * i], 'big') for i in range(ndim))
    return np.frombuffer(content, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def read_file(key):
    content = datafiles.read_verified(
        FILES[key], search_places(), url=MIRROR + FILES[key].name + '.gz',
        cache_dir=cache_dir(), fixes=FIXES)
    return parse_idx(content)


@functools.lru_cache(maxsize=None)
def load_split(train):
    """(images uint8 (N, 28, 28), labels uint8 (N,)), read and verified once per process."""
    prefix = 'train' if train else 'test'
    return read_file(f'{prefix}-images'), read_file(f'{prefix}-labels')


class FashionMNIST(loading.DataModule):
    """Fashion-MNIST as minibatches of float32 images in [0, 1] and integer labels.

    Args:
        batch_size: examples per batch (int >= 1). Training batches are full (the last,
            partial one is dropped), so it must not exceed the 60,000 training examples.
        resize: (height, width) in pixels the 28x28 images are bilinearly resized to.

    Batches are (images, labels) as the framework's tensors: float32 images (N, 1, H, W) in
    NCHW frameworks (PyTorch, MXNet), (N, H, W, 1) in NHWC ones (TensorFlow, JAX), and labels
    (N,) in 0..9 (`text_labels` names them): int64 in PyTorch (`torch.long`, what its
    `cross_entropy` takes), int32 in TensorFlow, JAX and MXNet, and int32 NumPy arrays from
    this framework-free class itself. A framework module subclasses this with its `layout`
    (as `d2lmini.frameworks` records it) and its `to_framework` conversion. `take` cuts the
    data to its first examples (see `DataModule.take`). Raises `ValueError` for a bad
    argument, and `DataNotFoundError` / `DataIntegrityError` when no verified copy of the data
    can be found or downloaded.
    """
    layout = 'NCHW'
    text_labels = TEXT_LABELS

    def __init__(self, batch_size=64, resize=(28, 28)):
        batch_size = checks.integer('batch_size', batch_size, 1)
        resize = checks.image_size('resize', resize)
        self.save_hyperparameters()
        self.train = load_split(True)
        self.val = load_split(False)
        if batch_size > len(self.train[1]):
            raise ValueError(f'batch_size={batch_size} is larger than the {len(self.train[1])} '
                             f'training examples: training batches are full ones, so there '
                             f'would be none. Use a batch_size of at most {len(self.train[1])}.')

    @staticmethod
    def to_framework(images, labels):
        return images, labels

    def get_dataloader(self, train):
        transform = loading.ImageTransform((28, 28), self.resize, self.layout)
        return loading.BatchLoader(self.train if train else self.val, self.batch_size,
                                   shuffle=train, drop_last=train, transform=transform,
                                   to_framework=self.to_framework)
