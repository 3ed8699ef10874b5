"""What the benchmark trains, written once for worker.py and breakdown.py: the chapter's
GoogLeNet (taken from book/googlenet/googlenet_<framework>.ipynb), initialized as the chapter
does, on Fashion-MNIST at 96x96 in batches of 128, with SGD at learning rate 0.01, seed 0.
"""
import os

from book.tools.chapters import load_code

BATCH_SIZE, RESIZE, LR = 128, (96, 96), 0.01


def load(framework):
    """The chapter's code run for `framework` (its namespace: `ns['d2l']`, `ns['GoogleNet']`),
    under `D2LMINI_BUDGET=full` (the Trainer uses every batch of the data it is given) and
    seeded with 0. d2lmini sets up its threads at import: call this before importing anything
    of the framework."""
    os.environ['D2LMINI_BUDGET'] = 'full'
    ns = load_code('googlenet', framework)
    ns['d2l'].set_seed(0)
    return ns


def data(d2l, train_batches=None, val_batches=None):
    """The data module, cut to its first `train_batches` / `val_batches` batches (None: all)."""
    module = d2l.FashionMNIST(batch_size=BATCH_SIZE, resize=RESIZE)
    return module.take(
        train_examples=None if train_batches is None else train_batches * BATCH_SIZE,
        val_examples=None if val_batches is None else val_batches * BATCH_SIZE)


def new_model(ns, data):
    """A fresh GoogLeNet, initialized as the chapter does: (model, params), params being
    None but in JAX, where the Trainer takes them as `fit`'s third argument (see `fit`)."""
    model = ns['GoogleNet'](lr=LR)
    params = model.apply_init([next(iter(data.train_dataloader()))[0]], ns['d2l'].init_cnn)
    return model, params


def fit(trainer, model, data, params):
    """`trainer.fit` on what `new_model` returned."""
    trainer.fit(model, data, *([] if params is None else [params]))
