"""Data parallelism on two CPU devices (`D2LMINI_CPU_DEVICES=2`, see d2lmini/devices.py): the
runs are made once per framework, in a process of their own (data_parallel_runs.py), since a
framework must be told how many CPU devices to offer before it starts; the tests read what
that process saw.

Two devices train the model one does, up to float32 rounding. Measured on the tiny CNN (4
steps of 32, 2 epochs): JAX, losses within 1.2e-7 relative (one or two float32 ulps), weights
within 6e-8; with BatchNorm and dropout, within 1.6e-6 relative and 9e-7. PyTorch
(DistributedDataParallel over two gloo processes): losses within 5.7e-8 relative, weights
within 3e-8; resumed across device counts, losses within 5.4e-8 relative, and (from one
device onto two) eight weights of one filter of the first convolution within 9.9e-6, the
others within 3e-8 (probably a max-pool or ReLU decision of that filter that the rounding
turned the other way). TensorFlow (MirroredStrategy): losses within 1.2e-7 relative, weights
within 6e-8; with BatchNorm and dropout 3.1e-6 and 9.8e-7. MXNet (contexts and a kvstore):
1.2e-7 and 5.5e-8; its Ctrl-C run resumed on one device, eight weights within 9.8e-6. The
tests allow RTOL (1e-5) and ATOL (1e-5). PyTorch refuses BatchNorm on several CPU devices
(d2lmini/torch.py), MXNet on several devices (d2lmini/mxnet.py), and both draw other dropout
masks there: their model without BatchNorm or dropout is the one compared."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from kits import KITS

HERE = os.path.dirname(os.path.abspath(__file__))
RTOL = ATOL = 1e-5
_RUNS = {}


@pytest.fixture
def runs(framework, tmp_path_factory):
    if not KITS[framework]().d2l.Trainer.data_parallel:
        pytest.skip(f'd2lmini.{KITS[framework].module_name} trains on one device only (yet)')
    if framework not in _RUNS:
        env = dict(os.environ, D2LMINI_CPU_DEVICES='2', D2LMINI_BUDGET='full',
                   JAX_PLATFORMS='cpu', CUDA_VISIBLE_DEVICES='')      # the CPU, GPUs or not
        env.pop('D2LMINI_CHECKPOINT_DIR', None)
        env['PYTHONPATH'] = os.pathsep.join(
            [os.path.dirname(os.path.dirname(HERE))] + env.get('PYTHONPATH', '').split(os.pathsep))
        result = subprocess.run(
            [sys.executable, os.path.join(HERE, 'data_parallel_runs.py'), framework,
             str(tmp_path_factory.mktemp(f'data_parallel_{framework}'))],
            env=env, capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr[-3000:]
        _RUNS[framework] = json.loads(result.stdout.splitlines()[-1])
    return _RUNS[framework]


def assert_same_training(run, reference):
    np.testing.assert_allclose(run['losses'], reference['losses'], rtol=RTOL, atol=0)
    np.testing.assert_allclose(run['weights'], reference['weights'], rtol=0, atol=ATOL)
    for ours, theirs in zip(run['history'], reference['history'], strict=True):
        np.testing.assert_allclose([ours['val_loss'], ours['val_acc']],
                                   [theirs['val_loss'], theirs['val_acc']], rtol=RTOL, atol=0)


@pytest.mark.parametrize('model', ['plain', 'bn_dropout'])
def test_two_devices_train_the_model_one_does(runs, model):
    """BatchNorm included where it trains on several devices (JAX, TensorFlow): its statistics
    are those of the global batch (d2lmini/devices.py), and dropout draws the masks one device
    would."""
    if model not in runs:
        pytest.skip('BatchNorm is refused on several CPU devices here (see '
                    'test_batchnorm_on_several_cpu_devices_is_refused_before_training)')
    one, two = runs[model]['1'], runs[model]['2']
    assert (one['device']['count'], two['device']['count']) == (1, 2)
    assert len(two['losses']) == 8 and two['status'] == 'finished'
    assert_same_training(two, one)


def test_gradient_clipping_uses_the_whole_batchs_gradient(runs):
    one, two = runs['clipped']['1'], runs['clipped']['2']
    assert two['device']['count'] == 2
    assert_same_training(two, one)
    # the clipping is in force: the run differs from the unclipped one
    assert not np.allclose(one['losses'], runs['plain']['1']['losses'], rtol=1e-3)


def test_the_batch_is_split_and_the_parameters_replicated(runs):
    assert runs['split'] == dict(batch_parts=[16, 16], parameters_replicated=True)


def test_the_start_line_and_the_record_name_the_devices(runs):
    run = runs['plain']['2']
    assert run['printed'].startswith('Training on 2 devices (cpu:0, cpu:1) with budget'), \
        run['printed']
    assert run['printed'].splitlines()[0].endswith(
        'this run uses 2 CPU devices in their place (D2LMINI_CPU_DEVICES=2))')
    assert run['device'] == dict(run['device'], type='cpu', name='2 devices (cpu:0, cpu:1)',
                                 count=2, names=['cpu:0', 'cpu:1'])
    assert 'examples/s on 2 devices (cpu:0, cpu:1)' in run['printed']


def test_more_devices_than_there_are_uses_those_there_are_and_says_so(runs):
    run = runs['too_many']
    assert run['printed'].splitlines()[0].endswith(
        '(num_gpus=4 was asked for, but ' + run['printed'].split('but ')[1].split(' finds')[0]
        + ' finds no GPU: this run uses 2 CPU devices in their place (D2LMINI_CPU_DEVICES=2), '
          'all there are)')
    assert run['device']['count'] == 2 and run['status'] == 'finished'


def test_the_model_of_a_two_device_run_trains_on_on_one_device_and_back(runs):
    run, back = runs['then_one'], runs['two_again']
    assert run['status'] == 'finished' and run['device']['count'] == 1
    assert len(run['losses']) == 4 and np.isfinite(run['losses']).all()
    # the 2-device Trainer, used again after the other one, trains the model as it now is
    assert back['status'] == 'finished' and back['device']['count'] == 2
    assert np.isfinite(back['losses']).all() and back['weights'] != run['weights']


def test_a_global_batch_the_devices_cannot_share_is_refused_naming_both_numbers(runs):
    assert runs['indivisible'] == (
        'ValueError: batch_size of FashionMNIST is 33 examples, which cannot be split evenly '
        'over the 2 devices this run trains on (cpu:0, cpu:1): the global batch is split into 2 '
        'equal parts, one per device. Use a batch size divisible by 2 (e.g. 32 or 34), or '
        'another num_gpus.')


@pytest.mark.parametrize('first, then', [(2, 1), (1, 2)])
def test_a_checkpoint_resumes_on_another_number_of_devices(runs, first, then):
    resume = runs['resume'][f'{first}to{then}']
    assert resume['stopped']['status'] == 'interrupted'
    assert resume['stopped']['device']['count'] == first
    resumed = resume['resumed']
    assert resumed['error'] is None, resumed['error']
    assert resumed['resumed_from']['epoch'] == 1 and resumed['status'] == 'finished'
    assert resumed['device']['count'] == then
    assert_same_training(resumed, runs['plain']['1'])


def test_batchnorm_on_several_cpu_devices_is_refused_before_training(runs, framework):
    if 'bn_refused' not in runs:
        pytest.skip('BatchNorm trains on several CPU devices here, its statistics synchronized')
    run = runs['bn_refused']
    assert run['error'] == (
        'ModelError: SmallCNN has BatchNorm layers (net.1), and this run would train it on 2 '
        'devices (cpu:0, cpu:1). Its statistics must be those of the whole global batch, as on '
        'one device, but ' + KITS[framework]().batchnorm_refusal)
    assert run['losses'] == [] and run['status'] == 'failed'


def test_a_killed_worker_ends_the_fit_with_an_error_naming_it(runs):
    if 'killed' not in runs:
        pytest.skip('one process drives every device here: no worker to kill')
    run = runs['killed']
    assert run['error'].startswith('WorkerError: The worker process training on cpu:1 (rank 1, '
                                   'pid '), run['error']
    assert 'ended during the run with exit code -9 (killed by SIGKILL); the other workers were ' \
           'stopped.' in run['error']
    assert run['seconds_to_error'] < 20 and run['status'] == 'failed'
    assert runs['children_left'] == []     # no worker outlives its fit, killed or not


def test_ctrl_c_and_a_nan_loss_on_two_devices(runs):
    ctrl_c, nan = runs['ctrl_c'], runs['nan']
    assert ctrl_c['error'].startswith('KeyboardInterrupt') and ctrl_c['status'] == 'interrupted'
    np.testing.assert_allclose(ctrl_c['losses'], runs['plain']['1']['losses'][:2], rtol=RTOL)
    assert 'Interrupted in epoch 1 after step 2 of 4' in ctrl_c['printed']
    np.testing.assert_allclose(ctrl_c['weights'], runs['ctrl_c_one_device']['weights'], rtol=0,
                               atol=ATOL)
    resumed = ctrl_c['resumed']
    assert resumed['resumed_from']['step'] == 2 and resumed['status'] == 'finished'
    assert_same_training(resumed, runs['plain']['1'])
    assert nan['error'].startswith('NonFiniteLossError: The training loss became nan in epoch 1, '
                                   'step 3.')
    assert 'restored to its weights after step 2 of epoch 1' in nan['error']
    assert np.isfinite(nan['weights']).all() and nan['status'] == 'failed'


def test_a_script_started_by_torchrun_trains_as_one_device_does(runs):
    """Each process torchrun starts trains on one device; process 0 alone shows the run, and
    hands a checkpoint it resumes to the others."""
    if 'launched' not in runs:
        pytest.skip('no launcher (torchrun) for this framework')
    launched = runs['launched']
    assert launched['stopped']['status'] == 'interrupted'
    for name in ('plain', 'resumed'):
        first, second = launched['0'][name], launched['1'][name]
        assert first['status'] == 'finished' and first['device']['count'] == 2
        assert first['printed'].splitlines()[0].endswith(
            '(num_gpus=2 was asked for, and torchrun started 2 processes: this run trains on 2 '
            'CPU devices, one per process)')
        assert second['printed'] == '' and second['device'] is None     # no record
        assert second['losses'] == first['losses'] and second['weights'] == first['weights']
        assert_same_training(first, runs['plain']['1'])
    assert launched['0']['resumed']['resumed_from']['epoch'] == 1
    assert launched['1']['resumed']['resumed_from']['epoch'] == 1
