"""The base class of `Trainer` callbacks. It imports nothing of d2lmini, so that a callback
module (built-in or a user's) depends on this file only, never on the training loop."""


class Callback:
    """Code that `Trainer.fit` runs at fixed points (as in Keras and PyTorch Lightning).

    Every hook gets the trainer; override the ones you need and pass instances as
    `Trainer(callbacks=[...])`. Built-in callbacks (progress, run record, checkpoints) run
    first, in that order: the checkpointer before the others, so that they see a restored run.

    What a callback may read on the trainer (and should not assign; `Trainer.resume_from` is
    the one way to change where a run stands):
        model, data, train_loader     what `fit` was given, and the training loader in use
        budget                        the `d2lmini.budget.Budget` in force
        epochs_planned                epochs this `fit` runs in all (max_epochs after the budget)
        train_batches_per_epoch, val_batches_per_epoch    after the budget
        steps_per_sync                training steps between two fetches of the losses
        num_classes                   logits per example of a classifier (None otherwise)
        epoch                         0-based index of the epoch in progress
        step                          training steps done in this epoch
        start_epoch, start_step       where this `fit` began (after a resume: the checkpoint's)
        history                       one dict per finished epoch (see `Trainer`)
        losses                        every completed step's loss (nats), in order
        resumed_from                  None, or {checkpoint, epoch, step} after a resume
        status, interrupted           'running' until `on_fit_end`, then 'finished',
                                      'interrupted' or 'failed'
        record                        the run record (`d2lmini.record`), after each epoch
        device_name(), framework      where it trains ('cpu', 'gpu:0', '2 devices (cpu:0, cpu:1)'),
                                      and the framework's id
        placement                     `d2lmini.devices.Placement`: kind, count, names of the devices
    """

    def on_fit_start(self, trainer):
        """After the model is prepared (and a checkpoint restored), before the first epoch."""

    def on_epoch_start(self, trainer):
        """Before the epoch's first step; `trainer.epoch` is the 0-based epoch index."""

    def on_train_step_end(self, trainer):
        """After every step, with no device sync: keep it cheap. `trainer.step` counts the
        steps done in this epoch."""

    def on_losses(self, trainer, losses):
        """At each sync point: `losses`, float64 (k,), the k steps' losses just fetched."""

    def on_epoch_end(self, trainer):
        """After the epoch's validation; `trainer.history[-1]` describes the epoch."""

    def on_fit_end(self, trainer):
        """Always, last: `trainer.status` is 'finished', 'interrupted' or 'failed'."""
