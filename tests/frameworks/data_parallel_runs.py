"""The runs test_data_parallel.py checks, made in a process of their own: some frameworks must
be told how many CPU devices to offer before they start (`D2LMINI_CPU_DEVICES`, set by the
test). `python data_parallel_runs.py FRAMEWORK TMP_DIR` trains the kit's tiny models on one and
on two devices and prints what it saw as one line of JSON, last."""
import contextlib
import io
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kits import KITS  # noqa: E402

from d2lmini.callback import Callback  # noqa: E402
from d2lmini.errors import NonFiniteLossError  # noqa: E402

BATCH, STEPS, EPOCHS = 32, 4, 2


class StopAfterFirstEpoch(Callback):
    def on_epoch_end(self, trainer):
        if trainer.epoch == 0:
            raise KeyboardInterrupt


class CtrlCAtStep(Callback):
    def __init__(self, step):
        self.at = step

    def on_train_step_end(self, trainer):
        if trainer.step == self.at:
            raise KeyboardInterrupt


def main(framework, tmp):
    kit = KITS[framework]()
    d2l = kit.d2l
    out = {}

    def data_of(batch=BATCH, poison_call=None):
        data = d2l.FashionMNIST(batch_size=batch).take(train_examples=BATCH * STEPS,
                                                       val_examples=50)
        if poison_call is not None:     # the poison_call-th batch conversion becomes NaN
            convert, calls = data.to_framework, []

            def poisoned(images, labels):
                calls.append(1)
                return convert(images * np.nan if len(calls) == poison_call else images, labels)
            data.to_framework = poisoned
        return data

    def run(num_gpus, net=None, lr=0.1, data=None, directory=None, callbacks=(), linear=False):
        """(trainer, model, what it printed, the error fit raised or None)."""
        d2l.set_seed(0)
        data = data or data_of()
        model, params = kit.make_model(data, lr=lr, net=net and net(), linear=linear)
        trainer = d2l.Trainer(max_epochs=EPOCHS, num_gpus=num_gpus, checkpoint_dir=directory,
                              callbacks=list(callbacks))
        printed, error = io.StringIO(), None
        try:
            with contextlib.redirect_stdout(printed):
                kit.fit(trainer, model, data, params)
        except (ValueError, KeyboardInterrupt, NonFiniteLossError) as caught:
            error = f'{type(caught).__name__}: {caught}'
        return trainer, model, printed.getvalue(), error

    def summary(trainer, model, printed, error=None):
        return dict(losses=trainer.losses, history=trainer.history, status=trainer.status,
                    printed=printed, error=error, resumed_from=trainer.resumed_from,
                    device=trainer.record and trainer.record['device'],
                    weights=kit.weights(trainer, model).tolist())

    # The same model on one and on two devices: a plain CNN, and BatchNorm with dropout.
    for name, net, lr in (('plain', None, 0.1), ('bn_dropout', kit.make_bn_dropout_net, 0.01)):
        out[name] = {}
        for n in (1, 2):
            trainer, model, printed, _ = run(n, net=net, lr=lr)
            out[name][n] = summary(trainer, model, printed)
            if name == 'plain' and n == 2:
                batch = trainer.prepare_batch(next(iter(data_of().train_dataloader())))
                out['split'] = kit.data_parallel_facts(trainer, batch)

    # More devices asked for than there are.
    out['too_many'] = summary(*run(4))

    # A global batch the devices cannot share evenly.
    out['indivisible'] = run(2, data=data_of(batch=BATCH + 1))[3]

    # A checkpoint written on two devices resumes on one, and the other way round.
    out['resume'] = {}
    for first, then in ((2, 1), (1, 2)):
        directory = os.path.join(tmp, f'{first}to{then}')
        stopped = run(first, directory=directory, callbacks=[StopAfterFirstEpoch()])
        out['resume'][f'{first}to{then}'] = dict(stopped=summary(*stopped),
                                                 resumed=summary(*run(then, directory=directory)))

    # Ctrl-C between two steps, and a NaN loss, on two devices.
    out['ctrl_c'] = summary(*run(2, callbacks=[CtrlCAtStep(2)]))
    out['nan'] = summary(*run(2, data=data_of(poison_call=5), linear=True))  # call 5: step 3
    print(json.dumps(out))


if __name__ == '__main__':
    main(*sys.argv[1:])
