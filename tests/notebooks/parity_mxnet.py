"""Run by test_parity.py in the MXNet environment: PyTorch's weights in, MXNet's logits out.

usage: python parity_mxnet.py CHAPTER MODEL INPUT_SHAPE(JSON) reference.npz result.npz
(with the repository on PYTHONPATH)
"""
import contextlib
import io
import json
import sys

import numpy as np

from book.tools.chapters import load_code


def main(chapter, model_class, input_shape, reference_path, result_path):
    reference = np.load(reference_path)
    input_shape = tuple(json.loads(input_shape))
    model = load_code(chapter, 'mxnet')[model_class]()   # first: d2lmini prepares numpy for MXNet
    from mxnet import nd
    model.initialize()
    model(nd.zeros(input_shape))             # infer the deferred shapes
    params = list(model.collect_params().values())
    weights = [reference[f'w{i}'] for i in range(len(reference.files) - 2)]
    assert len(params) == len(weights), (len(params), len(weights))
    for param, weight in zip(params, weights):  # MXNet uses PyTorch's layouts
        assert param.shape == weight.shape, (param.name, param.shape, weight.shape)
        param.set_data(nd.array(weight))
    summary = io.StringIO()
    with contextlib.redirect_stdout(summary):
        model.layer_summary(input_shape)
    logits = model(nd.array(reference['X'])).asnumpy()
    np.savez(result_path, logits=logits, num_params=sum(int(np.prod(p.shape)) for p in params),
             summary=summary.getvalue())


if __name__ == '__main__':
    main(*sys.argv[1:])
