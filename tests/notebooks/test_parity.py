"""A chapter's notebooks compute the same function: same parameter count, same module output
shapes, and, with PyTorch's weights copied into each, the same logits on the same batch.

For every chapter whose book/<chapter>/chapter.yml has a `parity` section (model class, input
shape, parameter count, module output shapes)."""
import contextlib
import io
import json
import os
import pathlib
import re
import subprocess

import numpy as np
import pytest

from book.tools.chapters import ROOT, chapters, facts, load_code
from d2lmini import frameworks
from d2lmini.frameworks import IDS

MAX_RELATIVE_ERROR = 1e-4
REPORT = ROOT / '_build' / 'parity.json'
CHECKED = {chapter: facts(chapter)['parity'] for chapter in chapters() if 'parity' in facts(chapter)}


def nhwc(shape):
    return (shape[0], *shape[2:], shape[1])


def module_shapes(summary, layout):
    """Each module's output shape from a layer summary, in NCHW order."""
    shapes = [tuple(int(d) for d in re.findall(r'\d+', match))
              for match in re.findall(r'output shape: \(([^)]*)\)', summary)]
    if layout == 'NHWC':
        shapes = [(s[0], s[3], s[1], s[2]) if len(s) == 4 else s for s in shapes]
    return shapes


def printed(function, *args):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        function(*args)
    return out.getvalue()


def relative_error(logits, reference):
    return float(np.linalg.norm(logits - reference) / np.linalg.norm(reference))


def to_channels_last(weight):
    """PyTorch layouts -> TensorFlow/Flax ones: conv OIHW -> HWIO, dense (out, in) -> (in, out)."""
    return weight.transpose(2, 3, 1, 0) if weight.ndim == 4 else weight.T


_references = {}


def reference_for(chapter):
    """PyTorch's initialized weights, a real batch, and PyTorch's logits for it (once per chapter)."""
    if chapter in _references:
        return _references[chapter]
    import torch
    spec = CHECKED[chapter]
    ns = load_code(chapter, 'pytorch')
    d2l = ns['d2l']
    d2l.set_seed(0)
    model = ns[spec['model']]()
    model.apply_init([torch.zeros(*spec['input_shape'])], d2l.init_cnn)
    model.eval()
    data = d2l.FashionMNIST(batch_size=16, resize=tuple(spec['input_shape'][2:]))
    X, _ = next(iter(data.val_dataloader()))
    with torch.no_grad():
        logits = model(X).numpy()
    _references[chapter] = dict(
        chapter=chapter, spec=spec, weights=[p.detach().numpy() for p in model.parameters()],
        X=X.numpy(), logits=logits, summary=printed(model.layer_summary, tuple(spec['input_shape'])))
    return _references[chapter]


def tensorflow_result(reference):
    import tensorflow as tf
    spec = reference['spec']
    ns = load_code(reference['chapter'], 'tensorflow')
    model = ns[spec['model']]()
    model(tf.zeros(nhwc(spec['input_shape'])))
    variables = model.trainable_variables
    assert len(variables) == len(reference['weights'])
    for variable, weight in zip(variables, reference['weights']):
        variable.assign(to_channels_last(weight))
    logits = model(reference['X'].transpose(0, 2, 3, 1), training=False).numpy()
    return logits, sum(int(np.prod(v.shape)) for v in variables), \
        printed(model.layer_summary, nhwc(spec['input_shape']))


def definition_order(path):
    """Sort key putting Flax parameter paths in PyTorch's order: submodules by their index
    (layers_2 before layers_10; a jitted init returns dicts in sorted key order), kernel
    before bias."""
    def key(part):
        name, _, index = part.rpartition('_')
        return (name, int(index)) if index.isdigit() else (part, -1)
    return [key(part) for part in path[:-1]], ['kernel', 'bias'].index(path[-1])


def jax_result(reference):
    import jax
    from flax import traverse_util
    spec = reference['spec']
    ns = load_code(reference['chapter'], 'jax')
    model = ns[spec['model']]()
    params = model.apply_init([np.zeros(nhwc(spec['input_shape']), np.float32)])
    flat = traverse_util.flatten_dict(params)
    assert len(flat) == len(reference['weights'])
    for path, weight in zip(sorted(flat, key=definition_order), reference['weights']):
        weight = to_channels_last(weight)
        assert flat[path].shape == weight.shape, (path, flat[path].shape, weight.shape)
        flat[path] = jax.numpy.asarray(weight)
    params = traverse_util.unflatten_dict(flat)
    logits = np.asarray(model.apply({'params': params}, reference['X'].transpose(0, 2, 3, 1)))
    return logits, sum(int(np.prod(v.shape)) for v in flat.values()), \
        printed(model.layer_summary, nhwc(spec['input_shape']))


def mxnet_result(reference, tmp_path):
    python = ROOT / frameworks.get('mxnet').venv / 'bin' / 'python'
    assert python.exists(), f'{python} is missing: run `make setup`'
    inputs, outputs = tmp_path / 'reference.npz', tmp_path / 'mxnet.npz'
    np.savez(inputs, X=reference['X'], logits=reference['logits'],
             **{f'w{i}': w for i, w in enumerate(reference['weights'])})
    spec = reference['spec']
    run = subprocess.run([str(python), str(pathlib.Path(__file__).with_name('parity_mxnet.py')),
                          reference['chapter'], spec['model'], json.dumps(spec['input_shape']),
                          str(inputs), str(outputs)], capture_output=True, text=True, timeout=600,
                         env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert run.returncode == 0, run.stderr[-3000:]
    result = np.load(outputs)
    return result['logits'], int(result['num_params']), str(result['summary'])


@pytest.mark.parametrize('chapter, fw', [(chapter, fw) for chapter in CHECKED for fw in IDS])
def test_same_function_in_every_fw(chapter, fw, tmp_path):
    reference = reference_for(chapter)
    spec = reference['spec']
    if fw == 'pytorch':
        logits, num_params, summary = (reference['logits'],
                                       sum(w.size for w in reference['weights']),
                                       reference['summary'])
    elif fw == 'mxnet':
        logits, num_params, summary = mxnet_result(reference, tmp_path)
    else:
        logits, num_params, summary = globals()[f'{fw}_result'](reference)
    layout = frameworks.get(fw).layout      # as the code above feeds them
    assert num_params == spec['parameters']
    assert module_shapes(summary, layout) == module_shapes(reference['summary'], 'NCHW') == [
        tuple(shape) for shape in spec['module_output_shapes']]
    error = relative_error(logits, reference['logits'])
    record(f'{chapter}/{fw}', error)
    assert logits.shape == (16, 10) and np.abs(reference['logits']).max() > 1e-3
    assert error <= MAX_RELATIVE_ERROR, f'{fw}: relative error {error:.2e} against PyTorch'


def record(framework, error):
    """Keep the measured errors for the report (`_build/parity.json`)."""
    REPORT.parent.mkdir(exist_ok=True)
    report = json.loads(REPORT.read_text()) if REPORT.exists() else {}
    report[framework] = error
    REPORT.write_text(json.dumps(report, indent=1))
    print(f'{framework}: relative error of the logits against PyTorch {error:.2e}')


def seeded_start(chapter, fw, tmp_path):
    python = ROOT / frameworks.get(fw).venv / 'bin' / 'python'
    spec, result = CHECKED[chapter], tmp_path / f'{fw}.npz'
    run = subprocess.run([str(python), '-m', 'tests.notebooks.seeded_start', chapter, fw,
                          spec['model'], json.dumps(spec['input_shape']), str(result)],
                         capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stderr[-3000:]
    return np.load(result)


@pytest.mark.parametrize('chapter', list(CHECKED))
def test_one_seed_gives_every_framework_the_same_start(chapter, tmp_path):
    """No weights copied: with one seed, d2lmini's `init_cnn` gives the four models the same
    initial weights, so their logits agree and their first training losses (same data order)
    agree closely."""
    results = {fw: seeded_start(chapter, fw, tmp_path) for fw in IDS}
    reference = results['pytorch']
    assert np.abs(reference['logits']).max() > 1e-3
    for fw, result in results.items():
        error = relative_error(result['logits'], reference['logits'])
        record(f'{chapter}/{fw} (seeded start)', error)
        assert error <= MAX_RELATIVE_ERROR, f'{fw}: initial logits {error:.2e} from PyTorch\'s'
        np.testing.assert_allclose(result['losses'], reference['losses'], atol=1e-3,
                                   err_msg=f'{fw}: first training losses')
