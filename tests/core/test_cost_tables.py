"""What the worked exercises read off cost reports (d2lmini/costs.py, intensity_plot.py): a
chip's balance point and roofline, the roofline and parameter tables, a report at another
batch size and its one-line summary, and the intensity figure. Layers described by hand."""
import pytest

from d2lmini import costs
from d2lmini.costs import Chip, Layer, Report
from d2lmini.intensity_plot import plot_intensity

CHIP = Chip('test chip', peak_macs=1e12, bandwidth=1e11)       # balance: 10 MACs per byte


def model_layers(hw=8):
    """A conv body (children 0, 1) and a dense head (child 2) for a 1 x hw x hw input."""
    return [Layer('c1', 'Conv2d', 0, 'conv', (1, hw, hw), (16, hw, hw), 3, bias=True),
            Layer('c2', 'Conv2d', 1, 'conv', (16, hw, hw), (32, hw, hw), 3, bias=True),
            Layer('pool', 'MaxPool2d', 1, 'global_avg_pool', (32, hw, hw), (32,)),
            Layer('fc', 'Linear', 2, 'dense', (32,), (10,), in_channels=32, out_channels=10,
                  bias=True)]


def test_a_chip_is_bound_by_whichever_of_arithmetic_and_memory_takes_longer():
    assert CHIP.balance == 10
    dense = costs.Cost(macs=1000, params=1000, weight_bytes=4000)       # 0.25 MACs/B
    conv = costs.Cost(macs=10**6, weight_bytes=1000, read_bytes=1000)   # 500 MACs/B
    assert CHIP.bound(dense) == 'memory' and CHIP.bound(conv) == 'compute'
    assert CHIP.seconds(dense) == 4000 / 1e11          # the bytes' time
    assert CHIP.seconds(conv) == 10**6 / 1e12          # the arithmetic's time


def test_another_batch_scales_work_and_activations_but_reads_the_weights_once():
    one = Report(model_layers())
    many = one.with_batch(8)
    assert many.batch == 8 and Report(model_layers(), batch=8).total == many.total
    assert many.total.macs == 8 * one.total.macs
    assert many.total.weight_bytes == one.total.weight_bytes
    assert many.total.intensity > one.total.intensity


def test_the_summary_gives_the_totals_in_millions_and_megabytes():
    report = Report(model_layers())
    total = report.total
    line = report.summary('tiny')
    assert line.startswith('tiny: ')
    assert f'{total.macs / 1e6:,.1f} M multiply-adds' in line
    assert f'{total.params / 1e6:.2f} M parameters ({total.weight_bytes / 1e6:.1f} MB)' in line
    assert line.endswith(f'{total.intensity:.1f} MACs/B')


def test_the_roofline_table_gives_each_report_on_each_chip():
    fast_memory = Chip('fast memory', peak_macs=1e12, bandwidth=1e13)   # balance 0.1
    reports = [('small', Report(model_layers())), ('large', Report(model_layers()).with_batch(64))]
    lines = costs.roofline_table(reports, [CHIP, fast_memory]).splitlines()
    assert len(lines) == 2 + 2 * 2 + 1      # header, rule, rows, note
    body = [line.split() for line in lines[2:-1]]
    assert [row[0] for row in body] == ['small', 'small', 'large', 'large']
    # on the fast-memory chip every layer is compute-bound
    assert body[1][-5] == '100%' and body[3][-5] == '100%'
    report = reports[0][1]
    seconds = sum(CHIP.seconds(row.cost) for row in report.rows)
    assert f'{seconds * 1e3:.3f}' in lines[2] and f'{1 / seconds:,.0f}' in lines[2]
    largest = max(row.cost.bytes for row in report.rows) / 1e6
    assert lines[2].endswith(f'{largest:.1f} MB')


def test_the_parameter_table_breaks_each_model_down_by_module_and_size():
    reports = {'net': {'8x8': Report(model_layers(8)), '4x4': Report(model_layers(4))}}
    lines = costs.parameter_table(reports).splitlines()
    rows = {line.split()[1] if line.startswith('net') else line.split()[0]: line
            for line in lines[2:] if not line.startswith('-')}
    assert set(rows) == {'b1', 'b2', 'head', 'total'}
    b1 = 3 * 3 * 1 * 16 + 16
    assert rows['b1'].split() == ['net', 'b1', '1x8x8', '1x4x4', f'{b1}', f'{b1}', 'conv', '3x3']
    assert '16x8x8' in rows['b2'] and '16x4x4' in rows['b2']
    assert rows['head'].split()[1:4] == ['32x1x1', '32x1x1', f'{32 * 10 + 10}']   # after a global pool
    assert 'conv 3x3, global avg pool' in rows['b2']
    assert rows['total'].split()[1:] == [f'{Report(model_layers(8)).total.params:,}'] * 2


def test_the_intensity_figure_has_a_point_per_layer_with_work_and_a_line_per_chip():
    report = Report(model_layers())
    plot = plot_intensity({'net': report}, [CHIP])
    ax = plot.figure.axes[0]
    points = ax.collections[0].get_offsets()
    assert len(points) == 3                            # two convolutions and the dense layer
    assert sorted(points[:, 1].tolist()) == sorted(
        100 * row.cost.macs / report.total.macs for row in report.rows if row.cost.macs)
    assert [line.get_xdata()[0] for line in ax.lines] == [CHIP.balance]
    assert plot._repr_png_().startswith(b'\x89PNG')
    with pytest.raises(ValueError, match='no multiply-adds'):
        plot_intensity({'empty': Report([model_layers()[2]])})
