"""Run by test_parity.py in the MXNet environment: PyTorch's weights in, MXNet's logits out.

usage: python parity_mxnet.py reference.npz result.npz
"""
import contextlib
import io
import sys

import numpy as np

from chapter import load_chapter


def main(reference_path, result_path):
    reference = np.load(reference_path)
    ns = load_chapter('mxnet')
    nd = ns['nd']
    model = ns['GoogleNet']()
    model.initialize()
    model(nd.zeros((1, 1, 96, 96)))             # infer the deferred shapes
    params = list(model.collect_params().values())
    weights = [reference[f'w{i}'] for i in range(len(reference.files) - 2)]
    assert len(params) == len(weights), (len(params), len(weights))
    for param, weight in zip(params, weights):  # MXNet uses PyTorch's layouts
        assert param.shape == weight.shape, (param.name, param.shape, weight.shape)
        param.set_data(nd.array(weight))
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        model.layer_summary((1, 1, 96, 96))
    logits = model(nd.array(reference['X'])).asnumpy()
    np.savez(result_path, logits=logits, num_params=sum(int(np.prod(p.shape)) for p in params),
             summary=summary.getvalue())


if __name__ == '__main__':
    main(*sys.argv[1:])
