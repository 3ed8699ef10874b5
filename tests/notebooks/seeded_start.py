"""Run by test_parity.py in each framework's environment: the chapter's model built and
initialized from a seed alone (no weights copied), its logits on a real batch, and its first
training losses.

usage: python -m tests.notebooks.seeded_start CHAPTER FRAMEWORK MODEL INPUT_SHAPE(JSON) RESULT.npz
"""
import json
import os
import sys

import numpy as np

from book.tools.chapters import load_code

STEPS, BATCH = 3, 16


def logits_of(framework, model, params, X):
    """The model's logits for NCHW float32 images X, in inference mode, as NumPy."""
    if framework == 'pytorch':
        import torch
        model.eval()
        with torch.no_grad():
            return model(torch.from_numpy(X)).numpy()
    if framework == 'tensorflow':
        return model(X.transpose(0, 2, 3, 1), training=False).numpy()
    if framework == 'jax':
        return np.asarray(model.apply({'params': params}, X.transpose(0, 2, 3, 1)))
    from mxnet import nd
    return model(nd.array(X)).asnumpy()


def main(chapter, framework, model_class, input_shape, result_path):
    os.environ['D2LMINI_BUDGET'] = 'full'
    ns = load_code(chapter, framework)
    d2l = ns['d2l']
    size = tuple(json.loads(input_shape)[2:])
    d2l.set_seed(0)
    data = d2l.FashionMNIST(batch_size=BATCH, resize=size).take(train_examples=STEPS * BATCH,
                                                                val_examples=BATCH)
    first = next(iter(data.val_dataloader()))
    model = ns[model_class](lr=0.01)
    params = model.apply_init([first[0]], d2l.init_cnn)
    X = next(iter(d2l.FashionMNIST(batch_size=BATCH, resize=size).val_dataloader()))[0]
    X = np.asarray(X if not hasattr(X, 'asnumpy') else X.asnumpy())
    if X.shape[-1] == 1:                                    # channels-last frameworks
        X = X.transpose(0, 3, 1, 2)
    logits = logits_of(framework, model, params, X)
    trainer = d2l.Trainer(max_epochs=1)
    trainer.fit(model, data, *([] if params is None else [params]))
    np.savez(result_path, logits=logits, losses=np.asarray(trainer.losses))


if __name__ == '__main__':
    main(*sys.argv[1:])
