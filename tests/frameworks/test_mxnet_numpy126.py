"""MXNet 1.9.1 on numpy 1.26 (what Python 3.12 leaves), thanks to d2lmini's numpy.bool shim."""
import os
import pathlib
import subprocess
import sys
import textwrap

NUMPY126 = pathlib.Path(sys.prefix) / 'numpy126'      # made by `make setup`

SCRIPT = textwrap.dedent('''
    import numpy as np
    assert np.__version__.startswith('1.26'), np.__version__
    assert 'bool' not in np.__dict__            # the alias numpy 1.24 removed
    from d2lmini import mxnet as d2l
    from mxnet import autograd, gluon, nd
    net = gluon.nn.Dense(3)
    net.initialize(d2l.init_cnn)
    X = nd.random.normal(shape=(4, 5))
    with autograd.record():
        loss = (net(X) ** 2).sum()
    loss.backward()
    # numpy.bool is what MXNet needs for boolean arrays
    mask = nd.array([1, 0, 1]).astype('bool').asnumpy()
    print('ok', np.__version__, mask.dtype, float(loss.asscalar()) > 0)
''')


def test_mxnet_runs_on_numpy_1_26():
    assert (NUMPY126 / 'numpy').is_dir(), f'{NUMPY126} is missing: run `make setup`'
    env = dict(os.environ, PYTHONPATH=str(NUMPY126))
    result = subprocess.run([sys.executable, '-c', SCRIPT], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.split()[:3] == ['ok', '1.26.4', 'bool'], result.stdout
