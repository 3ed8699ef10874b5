"""Faults of a run and of its checkpoint folder, in each framework: a run stopped anywhere
resumes exactly; SIGTERM is handled like Ctrl-C; settings that differ are never silently
dropped; a checkpoint folder holds one run, is locked while written, and loses nothing but
what d2lmini wrote; write errors are named; labels that do not fit the model, and a model
without parameters, are refused with one message in all four."""
import json
import os
import signal
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from d2lmini import checkpoint
from d2lmini.callback import Callback
from d2lmini.errors import CheckpointError, ModelError
from test_frameworks import checkpointed_run, d2l, full_budget, kit, small_data  # noqa: F401

SEED = 11


class StopAt(Callback):
    """Stops the run in epoch index `epoch` at `place`, as a Ctrl-C would there."""

    def __init__(self, place, epoch=1):
        self.place, self.epoch = place, epoch

    def on_fit_start(self, trainer):
        if self.place == 'before the first step':
            raise KeyboardInterrupt

    def on_train_step_end(self, trainer):
        if trainer.epoch != self.epoch:
            return
        if self.place == 'between two sync points' and trainer.step == 2:
            raise KeyboardInterrupt
        if self.place == 'after the last step, before validation' and \
                trainer.step == trainer.train_batches_per_epoch:
            os.kill(os.getpid(), signal.SIGINT)     # a real Ctrl-C: the loop stops after it

    def on_losses(self, trainer, losses):
        if trainer.epoch == self.epoch and self.place == 'at a sync point' and trainer.step == 3:
            raise KeyboardInterrupt

    def on_epoch_end(self, trainer):
        if trainer.epoch == self.epoch and self.place == 'after validation':
            raise KeyboardInterrupt


def run(kit, directory, max_epochs, callbacks=(), lr=0.1, seed=SEED, data=None, net=None):
    kit.d2l.set_seed(seed)
    data = data or small_data(kit.d2l, train_examples=640, val_examples=200)
    model, params = kit.make_model(data, lr=lr, net=net and net())
    trainer = kit.d2l.Trainer(max_epochs=max_epochs, checkpoint_dir=directory,
                              callbacks=list(callbacks))
    kit.fit(trainer, model, data, params)
    return trainer, model


PLACES = ['before the first step', 'between two sync points', 'at a sync point',
          'after the last step, before validation', 'after validation']


@pytest.mark.parametrize('place', PLACES)
def test_a_run_stopped_anywhere_resumes_exactly(kit, tmp_path, place, capsys):
    whole, whole_model = run(kit, tmp_path / 'whole', max_epochs=3)
    with pytest.raises(KeyboardInterrupt):
        run(kit, tmp_path / 'cut', max_epochs=3, callbacks=[StopAt(place)])
    resumed, resumed_model = run(kit, tmp_path / 'cut', max_epochs=3)
    assert resumed.status == 'finished'
    assert resumed.losses == whole.losses
    assert [(h['train_loss'], h['val_loss'], h['val_acc']) for h in resumed.history] == \
           [(h['train_loss'], h['val_loss'], h['val_acc']) for h in whole.history]
    np.testing.assert_array_equal(kit.weights(resumed, resumed_model),
                                  kit.weights(whole, whole_model))


def test_an_interrupt_before_training_is_recorded(kit, monkeypatch):
    """A Ctrl-C while the model is prepared (JAX compiles then), before any step."""
    kit.d2l.set_seed(SEED)
    data = small_data(kit.d2l, train_examples=640, val_examples=200)
    model, params = kit.make_model(data)
    trainer = kit.d2l.Trainer(max_epochs=1)

    def ctrl_c(model, first_batch):
        raise KeyboardInterrupt
    monkeypatch.setattr(trainer, 'prepare_model', ctrl_c)
    with pytest.raises(KeyboardInterrupt):
        kit.fit(trainer, model, data, params)
    assert trainer.status == 'interrupted' and trainer.record['status'] == 'interrupted'
    assert trainer.record['stop_signal'] == 'SIGINT' and trainer.record['steps'] == 0


def test_a_second_ctrl_c_during_the_checkpoint_still_records_the_stop(kit, tmp_path, monkeypatch):
    from d2lmini import checkpoint as module
    save = module.Checkpointer.save

    def interrupted_save(self, trainer):
        if trainer.status == 'interrupted':
            raise KeyboardInterrupt             # the second Ctrl-C, while saving
        return save(self, trainer)
    monkeypatch.setattr(module.Checkpointer, 'save', interrupted_save)
    kit.d2l.set_seed(SEED)
    data = small_data(kit.d2l, train_examples=640, val_examples=200)
    model, params = kit.make_model(data)
    trainer = kit.d2l.Trainer(max_epochs=2, checkpoint_dir=tmp_path,
                              callbacks=[StopAt('between two sync points', 0)])
    with pytest.raises(KeyboardInterrupt):
        kit.fit(trainer, model, data, params)
    assert trainer.record['status'] == 'interrupted'
    assert not (tmp_path / checkpoint.LOCK).exists()        # the folder is free again


def test_sigterm_is_handled_like_ctrl_c_in_process(kit, tmp_path, capsys):
    """Under a SIGTERM handler of the caller's (as `make reference` has one): the step
    finishes, a checkpoint is written, the record says SIGTERM, then the caller's handler
    gets the signal."""
    received = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: received.append(signum))

    class Term(Callback):
        def on_train_step_end(self, trainer):
            if trainer.epoch == 0 and trainer.step == 5:
                os.kill(os.getpid(), signal.SIGTERM)
    try:
        trainer, _ = run(kit, tmp_path, max_epochs=2, callbacks=[Term()])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert received == [signal.SIGTERM]
    out = capsys.readouterr().out
    assert 'Stopped by SIGTERM in epoch 1 after step 5 of 10' in out
    assert (tmp_path / 'latest').read_text() == 'epoch-0000-step-00005'


SIGTERM_SCRIPT = '''
import os, signal, sys
sys.path.insert(0, {tests!r})
from kits import KITS
from test_frameworks import small_data
kit = KITS[{framework!r}]()
kit.d2l.set_seed(11)
data = small_data(kit.d2l, train_examples=640, val_examples=200)
model, params = kit.make_model(data)

class Term(kit.d2l.Callback):
    def on_train_step_end(self, trainer):
        if {term} and trainer.epoch == 0 and trainer.step == 5:
            os.kill(os.getpid(), signal.SIGTERM)

trainer = kit.d2l.Trainer(max_epochs=1, checkpoint_dir={directory!r}, callbacks=[Term()])
kit.fit(trainer, model, data, params)
print('steps', len(trainer.losses))
'''


def test_sigterm_keeps_progress_and_ends_the_process_as_a_job_manager_expects(kit, tmp_path):
    def script(term):
        code = SIGTERM_SCRIPT.format(tests=os.path.dirname(__file__), framework=kit.framework_id,
                                     term=term, directory=str(tmp_path))
        return subprocess.run([sys.executable, '-c', textwrap.dedent(code)], capture_output=True,
                              text=True, timeout=300, env=dict(os.environ, D2LMINI_BUDGET='full'))
    stopped = script(True)
    assert stopped.returncode == -signal.SIGTERM, stopped.stderr       # killed by SIGTERM: 143
    assert 'Stopped by SIGTERM in epoch 1 after step 5 of 10' in stopped.stdout
    assert 'Checkpoint written to' in stopped.stdout
    resumed = script(False)
    assert resumed.returncode == 0, resumed.stderr
    assert 'continuing with epoch 1, step 6' in resumed.stdout


def test_a_rerun_with_other_settings_is_refused_naming_each(kit, tmp_path):
    run(kit, tmp_path, max_epochs=1, lr=0.1)
    with pytest.raises(CheckpointError, match=r'holds another run: hyperparameters.lr '
                                              r'\(0.1 vs 0.01\).*Delete'):
        run(kit, tmp_path, max_epochs=2, lr=0.01)
    with pytest.raises(CheckpointError, match=r'holds another run: seed \(11 vs 1\)'):
        run(kit, tmp_path, max_epochs=2, seed=1)
    # More epochs is the same run, planned longer: applied, and said.
    longer, _ = run(kit, tmp_path, max_epochs=2)
    assert len(longer.history) == 2 and longer.record['resumed_from']['epoch'] == 1


def test_a_changed_model_setting_is_not_ignored_by_the_same_trainer(kit):
    if kit.framework_id == 'jax':
        pytest.skip('Flax models are frozen dataclasses: model.lr cannot change')
    kit.d2l.set_seed(SEED)
    data = small_data(kit.d2l, train_examples=128, val_examples=64)
    model, params = kit.make_model(data, lr=0.1)
    trainer = kit.d2l.Trainer(max_epochs=1)
    kit.fit(trainer, model, data, params)
    model.lr = 0.01
    with pytest.raises(ValueError, match=r'lr=0.01 \(was 0.1\).*use a new Trainer'):
        kit.fit(trainer, model, data, None)
    kit.fit(kit.d2l.Trainer(max_epochs=1), model, data, None)      # as the message says


def test_the_environment_gives_each_run_a_folder_of_its_own(kit, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(checkpoint.ENV_VAR, str(tmp_path))
    first, _ = run(kit, None, max_epochs=1, lr=0.1)
    second, _ = run(kit, None, max_epochs=1, lr=0.01)
    assert second.resumed_from is None and second.losses != first.losses   # trained, not loaded
    folders = checkpoint.run_folders(tmp_path)
    assert len(folders) == 2 and all(f.name.startswith('SmallCNN-') for f in folders)
    assert {json.loads((f / checkpoint.RUN).read_text())['hyperparameters']['lr']
            for f in folders} == {0.1, 0.01}
    again, _ = run(kit, None, max_epochs=1, lr=0.01)                      # the same run again
    assert again.resumed_from is not None and again.losses == second.losses


def test_a_folder_in_use_is_refused_and_a_dead_holder_does_not_block(kit, tmp_path):
    tmp_path.mkdir(exist_ok=True)
    lock = tmp_path / checkpoint.LOCK
    lock.write_text(json.dumps(dict(pid=1, host=socket.gethostname())))     # alive: init
    with pytest.raises(CheckpointError, match=r'in use by process 1 on .*Wait for it'):
        run(kit, tmp_path, max_epochs=1)
    dead = subprocess.run([sys.executable, '-c', 'import os; print(os.getpid())'],
                          capture_output=True, text=True).stdout.strip()
    lock.write_text(json.dumps(dict(pid=int(dead), host=socket.gethostname())))
    trainer, _ = run(kit, tmp_path, max_epochs=1)
    assert trainer.status == 'finished' and not lock.exists()


def test_latest_is_followed_only_inside_the_folder(kit, tmp_path):
    run(kit, tmp_path / 'run', max_epochs=1)
    (tmp_path / 'run' / 'latest').write_text('../elsewhere')
    with pytest.raises(CheckpointError, match=r"points to '../elsewhere', which is not a "
                                              r'checkpoint of this folder'):
        run(kit, tmp_path / 'run', max_epochs=2)


def test_a_save_deletes_only_what_d2lmini_wrote(kit, tmp_path):
    run(kit, tmp_path, max_epochs=1)
    mine = [tmp_path / 'epoch-0001-step-00000 copy', tmp_path / 'notes', tmp_path / 'epoch-9']
    for folder in mine:
        folder.mkdir()
    abandoned = tmp_path / '.epoch-0002-step-00000.partial-999999'     # a killed save's
    abandoned.mkdir()
    run(kit, tmp_path, max_epochs=2)
    assert all(folder.exists() for folder in mine)
    assert not abandoned.exists() and not (tmp_path / 'epoch-0001-step-00000').exists()
    assert (tmp_path / 'latest').read_text() == 'epoch-0002-step-00000'


def test_a_failed_save_names_the_path_and_keeps_the_previous_checkpoint(kit, tmp_path,
                                                                        monkeypatch):
    run(kit, tmp_path, max_epochs=1)
    trainer_class = type(kit.d2l.Trainer(max_epochs=1))
    save_state = trainer_class.save_state

    def no_space(self, directory):
        raise OSError(28, 'No space left on device')
    monkeypatch.setattr(trainer_class, 'save_state', no_space)
    with pytest.raises(CheckpointError, match=r'Could not write the checkpoint .*epoch-0002-step-'
                       r'00000: OSError: \[Errno 28\] No space left on device\. The previous '
                       r'checkpoint .*epoch-0001-step-00000 is kept.*room|space'):
        run(kit, tmp_path, max_epochs=2)
    assert (tmp_path / 'latest').read_text() == 'epoch-0001-step-00000'
    assert not any(p.name.startswith('.') and 'partial' in p.name for p in tmp_path.iterdir())
    monkeypatch.setattr(trainer_class, 'save_state', save_state)
    trainer, _ = run(kit, tmp_path, max_epochs=2)
    assert trainer.resumed_from['epoch'] == 1 and len(trainer.history) == 2


def test_an_unwritable_folder_is_reported_before_training(kit, tmp_path):
    blocker = tmp_path / 'a-file'
    blocker.write_text('not a folder')
    epochs = []

    class Count(Callback):
        def on_epoch_start(self, trainer):
            epochs.append(trainer.epoch)
    with pytest.raises(CheckpointError, match=f'Cannot create the checkpoint folder {blocker}'):
        run(kit, blocker / 'checkpoints', max_epochs=1, callbacks=[Count()])
    assert epochs == []


class Boom:
    """Unpickling this creates the file `path`: proof that loading ran a file's code."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, 'w'))


def test_loading_a_checkpoint_never_runs_code(kit, tmp_path):
    """Each file of a checkpoint in turn replaced by a crafted pickle: resuming refuses it (or
    ignores it) and never runs its code."""
    import pickle
    import shutil
    run(kit, tmp_path / 'good', max_epochs=1)
    files = [f.relative_to(tmp_path / 'good') for f in (tmp_path / 'good').rglob('*')
             if f.is_file() and f.name not in (checkpoint.META, checkpoint.RUN, checkpoint.LATEST)]
    assert files
    marker = tmp_path / 'code-ran'
    for index, file in enumerate(files):
        folder = tmp_path / f'crafted-{index}'
        shutil.copytree(tmp_path / 'good', folder)
        (folder / file).write_bytes(pickle.dumps(Boom(str(marker))))
        try:
            run(kit, folder, max_epochs=2)
        except CheckpointError as error:
            assert 'Could not load the checkpoint' in str(error)
        assert not marker.exists(), f'loading a crafted {file} ran its code'


@pytest.mark.parametrize('optimizer', [('sgd', {'learning_rate': 0.05, 'momentum': 0.9}),
                                       ('adam', {'learning_rate': 0.002})])
def test_mxnet_momentum_state_resumes_exactly(kit, tmp_path, optimizer):
    """MXNet's optimizer state goes through d2lmini's own NDArray + JSON files: with momentum
    (one state array per parameter), or Adam (its bias correction counts each parameter's
    updates), a resumed run still repeats an uninterrupted one."""
    if kit.framework_id != 'mxnet':
        pytest.skip('the other frameworks save optimizer state in their own formats')
    from mxnet import gluon

    def with_momentum(directory, callbacks=()):
        kit.d2l.set_seed(SEED)
        data = small_data(kit.d2l, train_examples=640, val_examples=200)
        model, _ = kit.make_model(data)
        model.configure_optimizers = lambda: gluon.Trainer(model.collect_params(), *optimizer)
        trainer = kit.d2l.Trainer(max_epochs=2, checkpoint_dir=directory, callbacks=callbacks)
        trainer.fit(model, data)
        return trainer
    whole = with_momentum(tmp_path / 'whole')
    with pytest.raises(KeyboardInterrupt):
        with_momentum(tmp_path / 'cut', [StopAt('between two sync points')])
    assert json.loads((checkpoint.latest(tmp_path / 'cut') / 'optimizer.json').read_text())[
        'structure']                                        # the momentum arrays were saved
    assert with_momentum(tmp_path / 'cut').losses == whole.losses


def test_a_model_trains_without_apply_init(kit):
    """`fit` on a model that `apply_init` never saw (lazy layers still unshaped in PyTorch,
    deferred initialization in MXNet, none at all in JAX) initializes it the framework's way
    and trains: the chapter's exercises may skip `apply_init`."""
    kit.d2l.set_seed(SEED)
    data = small_data(kit.d2l, train_examples=256, val_examples=64)
    model, _ = kit.make_model(data)
    fresh = type(model)(lr=0.1)                  # the same class, never initialized
    trainer = kit.d2l.Trainer(max_epochs=1)
    trainer.fit(fresh, data)
    assert trainer.status == 'finished' and np.isfinite(trainer.losses).all()


def test_labels_outside_the_models_classes_are_refused(kit):
    """MXNet's `pick` clips such a label and trains on it; JAX gives a NaN loss; PyTorch and
    TensorFlow a raw index error. Here all four refuse before the batch's step runs."""
    kit.d2l.set_seed(SEED)
    data = small_data(kit.d2l, train_examples=256, val_examples=64)
    model, params = kit.make_model(data, outputs=5)
    trainer = kit.d2l.Trainer(max_epochs=1)
    with pytest.raises(ModelError, match=r'training batch \(epoch 1, step 1\) holds the labels '
                                         r'0 to 9, but SmallCNN gives 5 logits per example'):
        kit.fit(trainer, model, data, params)
    assert trainer.losses == [] and trainer.status == 'failed'


@pytest.mark.parametrize('split, label, expected', [
    ('train', -1, r'training batch \(epoch 1, step \d\) holds the labels -1 to 9'),
    ('val', 10, r'validation batch \(epoch 1\) holds the labels 0 to 10'),
])
def test_a_label_out_of_range_in_either_split_is_refused(kit, split, label, expected):
    kit.d2l.set_seed(SEED)
    data = small_data(kit.d2l, train_examples=256, val_examples=64)
    images, labels = getattr(data, split)
    labels = labels.astype(np.int64)      # the files' uint8 holds no -1
    labels[3] = label
    setattr(data, split, (images, labels))
    model, params = kit.make_model(data)
    with pytest.raises(ModelError, match=expected + r'.*class indices 0 to 9'):
        kit.fit(kit.d2l.Trainer(max_epochs=1), model, data, params)


def test_a_model_without_parameters_is_refused(kit):
    kit.d2l.set_seed(SEED)
    data = small_data(kit.d2l, train_examples=256, val_examples=64)
    with pytest.raises(ModelError, match='WithNet has no trainable parameters'
                                         if kit.module_name == 'jax'
                                         else 'SmallCNN has no trainable parameters'):
        model, params = kit.make_model(data, net=kit.make_parameter_free_net())
        kit.fit(kit.d2l.Trainer(max_epochs=1), model, data, params)


@pytest.mark.parametrize('shape', ['column', 'one-hot'])
def test_labels_of_another_shape_are_refused(kit, shape):
    """(N, 1) labels: TensorFlow and MXNet broadcast them against (N,) predictions and report
    a wrong accuracy without a word; one-hot labels give each framework's raw error."""
    kit.d2l.set_seed(SEED)
    data = small_data(kit.d2l, train_examples=256, val_examples=64)
    images, labels = data.train
    labels = labels.reshape(-1, 1) if shape == 'column' else np.eye(10, dtype=np.int64)[labels]
    data.train = (images, labels)
    model, params = kit.make_model(data)
    expected = r'\(64, 1\)' if shape == 'column' else r'\(64, 10\)'
    with pytest.raises(ModelError, match=r'holds labels of shape ' + expected + r'.*one integer'):
        kit.fit(kit.d2l.Trainer(max_epochs=1), model, data, params)


def test_a_model_with_other_layers_is_another_run(kit, tmp_path, monkeypatch):
    """Same class, settings and weight shapes, another activation (an exercise's variant):
    under D2LMINI_CHECKPOINT_DIR it gets a folder of its own and trains; in one explicit
    folder it is refused, naming the structure. The same model resumes its own run."""
    def run(activation, directory=None):
        kit.d2l.set_seed(SEED)
        data = small_data(kit.d2l, train_examples=256, val_examples=64)
        model, params = kit.make_model(data, net=kit.make_activation_net(activation))
        trainer = kit.d2l.Trainer(max_epochs=1, checkpoint_dir=directory)
        kit.fit(trainer, model, data, params)
        return trainer
    monkeypatch.setenv(checkpoint.ENV_VAR, str(tmp_path / 'root'))
    relu, sigmoid = run('relu'), run('sigmoid')
    assert len(checkpoint.run_folders(tmp_path / 'root')) == 2
    assert sigmoid.resumed_from is None and sigmoid.losses != relu.losses
    assert run('relu').resumed_from is not None, 'the same model resumes its own run'
    monkeypatch.delenv(checkpoint.ENV_VAR)
    run('relu', tmp_path / 'one')
    with pytest.raises(CheckpointError, match=r'holds another run: structure \('):
        run('sigmoid', tmp_path / 'one')


def test_a_run_with_dropout_resumes_exactly(kit, tmp_path):
    """Dropout draws from the framework's random state: a resumed run draws what the
    uninterrupted one would have (PyTorch and TensorFlow checkpoint that state, MXNet seeds it
    per step, JAX derives each step's key from the step)."""
    net = kit.make_bn_dropout_net
    whole, whole_model = run(kit, tmp_path / 'whole', max_epochs=2, net=net)
    with pytest.raises(KeyboardInterrupt):
        run(kit, tmp_path / 'cut', max_epochs=2, net=net,
            callbacks=[StopAt('between two sync points', epoch=0)])
    resumed, resumed_model = run(kit, tmp_path / 'cut', max_epochs=2, net=net)
    assert resumed.resumed_from is not None
    assert resumed.losses == whole.losses
    np.testing.assert_array_equal(kit.weights(resumed, resumed_model),
                                  kit.weights(whole, whole_model))


def test_a_pytorch_model_with_every_parameter_frozen_is_refused(kit):
    if kit.module_name != 'torch':
        pytest.skip('freezing by requires_grad is PyTorch\'s (Keras: no trainable variables, '
                    'covered above)')
    kit.d2l.set_seed(SEED)
    data = small_data(kit.d2l, train_examples=256, val_examples=64)
    model, params = kit.make_model(data)
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    with pytest.raises(ModelError, match='Every parameter of SmallCNN is frozen'):
        kit.fit(kit.d2l.Trainer(max_epochs=1), model, data, params)


def test_a_full_disk_when_taking_the_lock_is_named_and_leaves_no_lock(kit, tmp_path, monkeypatch):
    import errno

    def full(descriptor, *args, **kwargs):
        os.close(descriptor)
        raise OSError(errno.ENOSPC, 'No space left on device')
    monkeypatch.setattr(os, 'fdopen', full)
    with pytest.raises(CheckpointError, match=r'Cannot write the lock .*No space left on device'):
        checkpointed_run(kit, tmp_path, max_epochs=1)
    assert not (tmp_path / checkpoint.LOCK).exists()


def test_resume_notices_say_where_the_run_stands(kit, tmp_path, capsys):
    with pytest.raises(KeyboardInterrupt):
        run(kit, tmp_path, max_epochs=2, callbacks=[StopAt('after the last step, before validation', epoch=0)])
    run(kit, tmp_path, max_epochs=2)
    out = capsys.readouterr().out
    assert '0 epochs and 10 steps of epoch 1 done, continuing with the validation of epoch 1.' in out
    with pytest.raises(KeyboardInterrupt):
        run(kit, tmp_path / 'b', max_epochs=2, callbacks=[StopAt('between two sync points')])
    run(kit, tmp_path / 'b', max_epochs=1)      # asks for less than the checkpoint holds
    out = capsys.readouterr().out
    assert ('its run has done 1 epoch and 2 steps of epoch 2, so there is nothing left to train '
            '(the model keeps the weights of its last step)') in out


def test_a_learning_rate_set_by_hand_is_part_of_the_run(kit, tmp_path):
    """A model that sets self.lr without save_hyperparameters: a rerun with another rate is
    another run, not a silent resume of the first."""
    if kit.module_name == 'jax':
        pytest.skip('Flax models declare lr as a field, always part of the run')
    d2l = kit.d2l

    def run_with(lr):
        d2l.set_seed(SEED)
        data = small_data(d2l, train_examples=256, val_examples=64)
        model, params = kit.make_model(data)
        model.hparams = {}                      # as if save_hyperparameters were never called
        model.lr = lr
        kit.fit(d2l.Trainer(max_epochs=1, checkpoint_dir=tmp_path), model, data, params)
    run_with(0.1)
    with pytest.raises(CheckpointError, match=r'holds another run: hyperparameters.lr \(0.1 vs 0.5\)'):
        run_with(0.5)


def test_a_second_fit_trains_on_with_checkpoints_as_without(kit, tmp_path, monkeypatch):
    """With D2LMINI_CHECKPOINT_DIR set ("no code change"), a second fit of the same model
    trains on from its weights, as it does without checkpoints, in a run folder of its own;
    after an interrupted fit, another fit resumes that run."""
    monkeypatch.setenv(checkpoint.ENV_VAR, str(tmp_path))
    kit.d2l.set_seed(SEED)
    data = small_data(kit.d2l, train_examples=256, val_examples=64)
    model, params = kit.make_model(data)
    trainer = kit.d2l.Trainer(max_epochs=1)
    kit.fit(trainer, model, data, params)
    first = list(trainer.losses)
    kit.fit(trainer, model, data, None)
    assert trainer.resumed_from is None and len(trainer.losses) == len(first)
    assert np.mean(trainer.losses) < np.mean(first), 'it trained on from the trained weights'
    assert len(checkpoint.run_folders(tmp_path)) == 2
    trainer = kit.d2l.Trainer(max_epochs=1, callbacks=[StopAt('between two sync points', 0)])
    model, params = kit.make_model(data, lr=0.2)
    with pytest.raises(KeyboardInterrupt):
        kit.fit(trainer, model, data, params)
    kit.fit(trainer, model, data, None)                 # Ctrl-C, then fit again: a resume
    assert trainer.resumed_from is not None and trainer.status == 'finished'
    assert len(checkpoint.run_folders(tmp_path)) == 3
