"""The framework-free epoch loop. A framework module subclasses `Trainer` and fills in the hooks.

Losses stay on the device as a list of scalars and are fetched in one transfer at each sync
point (a few times per epoch), which is also where NaN/inf losses are caught and the plot is
redrawn.
"""
import itertools
import math
import time

import numpy as np

from d2lmini import budget as budgets
from d2lmini.errors import NonFiniteLossError
from d2lmini.hyperparameters import HyperParameters
from d2lmini.progress import ProgressBoard, epoch_line

SYNCS_PER_EPOCH = 4


class Trainer(HyperParameters):
    def __init__(self, max_epochs, num_gpus=0, gradient_clip_val=0):
        self.save_hyperparameters()
        # Like d2l: asking for a GPU where there is none falls back to the CPU.
        self.on_gpu = num_gpus > 0 and self.gpu_available()
        self.device = self.gpu(0) if self.on_gpu else self.cpu()

    # --- what a framework module provides ---------------------------------------------------
    # the framework's device functions, as static methods: cpu(), gpu(i), count_gpus()
    cpu = gpu = count_gpus = None

    def gpu_available(self):
        """Whether the framework sees a GPU (decides the 'auto' budget)."""
        return self.count_gpus() > 0

    def device_name(self):
        return 'gpu:0' if self.on_gpu else 'cpu'

    def prepare_model(self, model, first_batch):
        """Place the model, build its optimizer and compiled steps."""
        raise NotImplementedError

    def prepare_batch(self, batch):
        return batch

    def train_step(self, batch):
        """One update; returns the batch's mean loss as a device scalar."""
        raise NotImplementedError

    def eval_step(self, batch):
        """Returns (mean loss, accuracy) of a batch as device scalars."""
        raise NotImplementedError

    def to_numpy(self, scalars):
        """A list of device scalars as one NumPy array, in one transfer."""
        raise NotImplementedError

    def fetch(self, scalars):
        """`to_numpy`, as float64 so that sums over an epoch lose no precision."""
        return np.asarray(self.to_numpy(scalars), np.float64)

    # --- the loop ---------------------------------------------------------------------------
    def fit(self, model, data):
        self.budget = budgets.resolve(self.gpu_available())
        print(f'Training on {self.device_name()} with {self.budget.describe()}')
        self.model, self.data = model, data
        train_loader, val_loader = data.train_dataloader(), data.val_dataloader()
        self.num_train_batches = self.budget.train_batches(len(train_loader))
        self.num_val_batches = self.budget.val_batches(len(val_loader))
        self.max_epochs_run = self.budget.epochs(self.max_epochs)
        self.epoch = self.step = 0
        self.history = []   # one dict per epoch
        self.losses = []    # every training loss, one per step
        self.board = ProgressBoard(xlabel='epoch')
        try:
            first_batch = self.prepare_batch(next(iter(train_loader)))
            self.prepare_model(model, first_batch)
            for self.epoch in range(self.max_epochs_run):
                self.fit_epoch(train_loader, val_loader)
        except KeyboardInterrupt:
            print(f'Interrupted in epoch {self.epoch + 1} after {self.step} steps: training '
                  f'stopped; the model keeps the weights of the last completed step.')

    def fit_epoch(self, train_loader, val_loader):
        start, examples, pending = time.perf_counter(), 0, []
        sync_every = max(1, math.ceil(self.num_train_batches / SYNCS_PER_EPOCH))
        epoch_losses = []
        self.step = 0       # steps completed in this epoch
        for batch in itertools.islice(train_loader, self.num_train_batches):
            batch = self.prepare_batch(batch)
            pending.append(self.train_step(batch))
            self.step += 1
            examples += self.batch_size(batch)
            if len(pending) == sync_every or self.step == self.num_train_batches:
                epoch_losses.append(self._sync_losses(pending))
                pending = []
        seconds = time.perf_counter() - start
        val_loss, val_acc = self.evaluate(val_loader)
        epoch = self.epoch + 1
        self.board.draw(epoch, val_loss, 'val loss')
        self.board.draw(epoch, val_acc, 'val acc')
        self.board.show()
        self.history.append(dict(epoch=epoch, train_loss=float(np.mean(np.concatenate(epoch_losses))),
                                 val_loss=val_loss, val_acc=val_acc,
                                 examples_per_sec=examples / seconds))
        print(epoch_line(epoch, self.max_epochs_run, self.history[-1]['train_loss'], val_loss,
                         val_acc, examples / seconds, self.device_name()), flush=True)

    def _sync_losses(self, pending):
        losses = self.fetch(pending)
        bad = np.flatnonzero(~np.isfinite(losses))
        if bad.size:
            step = self.step - len(losses) + int(bad[0]) + 1
            raise NonFiniteLossError(
                f'The training loss became {losses[bad[0]]} in epoch {self.epoch + 1}, step {step}. '
                f'Training stopped. Try a smaller learning rate, or set gradient_clip_val in the '
                f'Trainer.', epoch=self.epoch + 1, step=step)
        self.losses.extend(losses.tolist())
        self.board.draw(self.epoch + self.step / self.num_train_batches, losses.mean(),
                        'train loss')
        self.board.show()
        return losses

    def evaluate(self, val_loader):
        results, sizes = [], []
        for batch in itertools.islice(val_loader, self.num_val_batches):
            batch = self.prepare_batch(batch)
            results.extend(self.eval_step(batch))
            sizes.append(self.batch_size(batch))
        values = self.fetch(results).reshape(-1, 2)
        weights = np.asarray(sizes, np.float64) / np.sum(sizes)
        return float(values[:, 0] @ weights), float(values[:, 1] @ weights)

    @staticmethod
    def batch_size(batch):
        return int(batch[-1].shape[0])
