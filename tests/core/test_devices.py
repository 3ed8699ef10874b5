"""The framework-free part of training on several devices (d2lmini/devices.py): what becomes of
`num_gpus`, the devices' names, `D2LMINI_CPU_DEVICES`, and the global batch's divisibility.
The frameworks' data parallelism is tested in tests/frameworks/test_data_parallel.py."""
import pytest

from d2lmini import devices


@pytest.mark.parametrize('num_gpus, gpus, cpus, parallel, kind, count, note', [
    (0, 0, 1, True, 'cpu', 1, ''),
    (0, 4, 4, True, 'cpu', 1, ''),
    (1, 0, 1, True, 'cpu', 1, ' (num_gpus=1 was asked for, but JAX finds no GPU: this run uses '
                              'the CPU)'),
    (3, 0, 2, True, 'cpu', 2, ' (num_gpus=3 was asked for, but JAX finds no GPU: this run uses '
                              '2 CPU devices in their place (D2LMINI_CPU_DEVICES=2), all there '
                              'are)'),
    (2, 0, 2, False, 'cpu', 1, ' (num_gpus=2 was asked for, but JAX finds no GPU: this run uses '
                               'the CPU)'),
    (2, 4, 1, True, 'gpu', 2, ''),
    (4, 2, 1, True, 'gpu', 2, ' (num_gpus=4 was asked for, but JAX finds 2 GPUs: this run uses '
                              'all 2)'),
    (2, 1, 1, True, 'gpu', 1, ' (num_gpus=2 was asked for, but JAX finds 1 GPU: this run uses '
                              'it)'),
    (2, 2, 1, False, 'gpu', 1, ' (num_gpus=2 was asked for, and 2 found: d2lmini trains on one '
                               'device, gpu:0)'),
])
def test_the_placement_says_what_became_of_num_gpus(num_gpus, gpus, cpus, parallel, kind, count,
                                                     note):
    placement = devices.place(num_gpus, 'JAX', gpus, cpus, parallel)
    assert (placement.kind, placement.count, placement.note) == (kind, count, note)


def test_devices_are_named_once_for_the_start_line_and_the_record():
    assert devices.Placement('cpu', 1).describe() == 'cpu'
    assert devices.Placement('gpu', 1).names == ['gpu:0']
    assert devices.Placement('gpu', 2).describe() == '2 devices (gpu:0, gpu:1)'


def test_the_cpu_devices_variable_is_checked():
    assert devices.cpu_devices_requested({}) is None
    assert devices.cpu_devices_requested({'D2LMINI_CPU_DEVICES': ' 2 '}) == 2
    for bad in ('0', 'two', '1.5'):
        with pytest.raises(ValueError, match=f"D2LMINI_CPU_DEVICES='{bad}' is not allowed"):
            devices.cpu_devices_requested({'D2LMINI_CPU_DEVICES': bad})


def test_divisibility_names_both_numbers():
    devices.check_divisible(64, devices.Placement('gpu', 4), 'batch_size')
    devices.check_divisible(63, devices.Placement('cpu', 1), 'batch_size')
    with pytest.raises(ValueError, match=r'batch_size is 3 examples, .* over the 4 devices .* '
                                         r'\(e\.g\. 4\)'):
        devices.check_divisible(3, devices.Placement('gpu', 4), 'batch_size')


def test_a_launched_process_trains_on_one_device_of_those_the_launcher_started():
    assert devices.launched({}) is None
    assert devices.launched({'RANK': '0', 'LOCAL_RANK': '0', 'WORLD_SIZE': '1'}) is None
    assert devices.launched({'RANK': '3', 'LOCAL_RANK': '1', 'WORLD_SIZE': '4'}) == (3, 1, 4)
    assert devices.place_launched(2, 2, 2) == devices.Placement('gpu', 2)
    assert devices.place_launched(0, 2, 2) == devices.Placement(
        'cpu', 2, ' (num_gpus=0 was asked for, and torchrun started 2 processes: this run '
                  'trains on 2 CPU devices, one per process)')
    assert devices.place_launched(1, 2, 0).note.endswith('trains on 2 CPU devices, one per '
                                                         'process)')
