"""The runs test_data_parallel.py checks, made in a process of their own: some frameworks must
be told how many CPU devices to offer before they start (`D2LMINI_CPU_DEVICES`, set by the
test). `python data_parallel_runs.py FRAMEWORK TMP_DIR` trains the kit's tiny models on one and
on two devices and prints what it saw as one line of JSON, last; with `launched CHECKPOINT_DIR`
after them, it is one of the processes a launcher (torchrun) started, and writes what it saw
to TMP_DIR/launched-rank-<RANK>.json (not to the stdout it shares with the other process: two
writes of a long line to one pipe can interleave)."""
import contextlib
import io
import json
import multiprocessing
import os
import pathlib
import signal
import subprocess
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from kits import KITS, Kit  # noqa: E402

from d2lmini.callback import Callback  # noqa: E402
from d2lmini.errors import NonFiniteLossError  # noqa: E402

BATCH, STEPS, EPOCHS = 32, 4, 2
CLIP = 0.5          # below the tiny CNN's gradient norms at the start (about 1-3)
HANG_S = 30         # a fit still running this long after its worker was killed hangs


class StopAfterFirstEpoch(Callback):
    def on_epoch_end(self, trainer):
        if trainer.epoch == 0:
            raise KeyboardInterrupt


class CtrlCAtStep(Callback):
    """Ctrl-C after step `step`, as a terminal sends it: SIGINT to the process and to its
    workers (the whole process group)."""
    def __init__(self, kit, step):
        self.kit, self.at = kit, step

    def on_train_step_end(self, trainer):
        if trainer.step == self.at:
            for pid in self.kit.worker_pids(trainer):
                os.kill(pid, signal.SIGINT)
            signal.raise_signal(signal.SIGINT)


class KillWorkerAtStep(Callback):
    """SIGKILL to the worker of the last device after step `step` (as the kernel's
    out-of-memory killer would), and SIGSTOP to the others: stuck, as NCCL leaves a worker
    whose peer died (gloo notices and ends them), they never answer."""
    def __init__(self, kit, step):
        self.kit, self.at, self.killed_at = kit, step, None

    def on_train_step_end(self, trainer):
        if trainer.step == self.at:
            *others, last = self.kit.worker_pids(trainer)
            for pid in others:
                os.kill(pid, signal.SIGSTOP)
            os.kill(last, signal.SIGKILL)
            self.killed_at = time.perf_counter()


class FactsAtFitEnd(Callback):
    """How the trainer holds a training batch and its parameters, while its fit runs."""
    def __init__(self, kit, batch):
        self.kit, self.batch, self.facts = kit, batch, None

    def on_fit_end(self, trainer):
        self.facts = self.kit.data_parallel_facts(trainer, trainer.prepare_batch(self.batch))


def main(framework, tmp, mode='', directory=None):
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

    def run(num_gpus, net=None, lr=0.1, data=None, directory=None, callbacks=(), linear=False,
            clip=0):
        """(trainer, model, what it printed, the error fit raised or None)."""
        d2l.set_seed(0)
        data = data or data_of()
        model, params = kit.make_model(data, lr=lr, net=net and net(), linear=linear)
        trainer = d2l.Trainer(max_epochs=EPOCHS, num_gpus=num_gpus, checkpoint_dir=directory,
                              callbacks=list(callbacks), gradient_clip_val=clip)
        printed, error = io.StringIO(), None
        try:
            with contextlib.redirect_stdout(printed):
                kit.fit(trainer, model, data, params)
        except (ValueError, KeyboardInterrupt, NonFiniteLossError, RuntimeError) as caught:
            error = f'{type(caught).__name__}: {caught}'
        return trainer, model, printed.getvalue(), error

    def summary(trainer, model, printed, error=None):
        return dict(losses=trainer.losses, history=trainer.history, status=trainer.status,
                    printed=printed, error=error, resumed_from=trainer.resumed_from,
                    device=trainer.record and trainer.record['device'],
                    weights=kit.weights(trainer, model).tolist())

    if mode == 'launched':      # in each process torchrun started: what it saw, in a file
        launched = dict(plain=summary(*run(2)), resumed=summary(*run(2, directory=directory)))
        pathlib.Path(tmp, f"launched-rank-{os.environ['RANK']}.json").write_text(json.dumps(launched))
        return

    # The same model on one and on two devices: a plain CNN, and BatchNorm with dropout
    # (where BatchNorm trains on several CPU devices; else it is refused).
    facts = FactsAtFitEnd(kit, next(iter(data_of().train_dataloader())))
    for name, net, lr in (('plain', None, 0.1), ('bn_dropout', kit.make_bn_dropout_net, 0.01)):
        out[name] = {}
        for n in (1, 2):
            if name == 'bn_dropout' and n == 2 and not kit.batchnorm_on_cpu_devices:
                out['bn_refused'] = summary(*run(n, net=net, lr=lr))
                del out[name]
                break
            trainer, model, printed, _ = run(n, net=net, lr=lr,
                                             callbacks=[facts] if name == 'plain' and n == 2
                                             else ())
            out[name][n] = summary(trainer, model, printed)
    out['split'] = facts.facts

    # Gradient clipping: by the norm of the whole batch's gradient, on any number of devices.
    out['clipped'] = {n: summary(*run(n, clip=CLIP)) for n in (1, 2)}

    # More devices asked for than there are.
    out['too_many'] = summary(*run(4))

    # The model of a 2-device run, trained on by a Trainer of one device (TensorFlow turns
    # its mirrored variables back into plain ones; MXNet puts its parameters on one context).
    two_devices, model, _, _ = run(2)
    one_device = d2l.Trainer(max_epochs=1, num_gpus=0)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        kit.fit(one_device, model, data_of(), None)
    out['then_one'] = summary(one_device, model, printed.getvalue())
    # ... and then by the 2-device Trainer again, which must train the model as it now is.
    with contextlib.redirect_stdout(io.StringIO()):
        kit.fit(two_devices, model, data_of(), None)
    out['two_again'] = summary(two_devices, model, '')

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
    # (the model keeps the weights of the last completed step, as on one device, and the
    # checkpoint written on Ctrl-C resumes on one device as if nothing had happened)
    directory = os.path.join(tmp, 'ctrl_c')
    out['ctrl_c'] = summary(*run(2, directory=directory, callbacks=[CtrlCAtStep(kit, 2)]))
    out['ctrl_c']['resumed'] = summary(*run(1, directory=directory))
    out['ctrl_c_one_device'] = summary(*run(1, callbacks=[CtrlCAtStep(kit, 2)]))
    out['nan'] = summary(*run(2, data=data_of(poison_call=5), linear=True))  # call 5: step 3

    # A worker process killed during the run (where there are worker processes).
    if type(kit).worker_pids is not Kit.worker_pids:
        kill = KillWorkerAtStep(kit, 2)

        def hung(signum, frame):
            raise RuntimeError(f'no error {HANG_S} s after the worker was killed: a hang')
        signal.signal(signal.SIGALRM, hung)
        signal.alarm(HANG_S)
        try:
            out['killed'] = summary(*run(2, callbacks=[kill]))
        finally:
            signal.alarm(0)
        out['killed']['seconds_to_error'] = time.perf_counter() - kill.killed_at
    # Two processes started by torchrun, as a script is (where the framework has a launcher):
    # a run, and one that resumes the checkpoint of a run stopped on one device.
    if kit.launcher:
        directory = os.path.join(tmp, 'launched')
        stopped = run(1, directory=directory, callbacks=[StopAfterFirstEpoch()])
        result = subprocess.run(
            kit.launcher(2) + [os.path.abspath(__file__), framework, tmp, 'launched', directory],
            env=dict(os.environ, OMP_NUM_THREADS='1'), capture_output=True, text=True,
            timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        out['launched'] = {path.stem.rsplit('-', 1)[1]: json.loads(path.read_text())
                           for path in pathlib.Path(tmp).glob('launched-rank-*.json')}
        out['launched']['stopped'] = summary(*stopped)
    # No worker process outlives its fit.
    out['children_left'] = [child.name for child in multiprocessing.active_children()]
    print(json.dumps(out))


if __name__ == '__main__':
    main(*sys.argv[1:])
