"""What d2lmini's safety nets cost for the chapter's GoogLeNet: the copy of the weights kept at
each sync point (to restore after a NaN) and the checkpoint written after each epoch.

usage: python -m bench.costs FRAMEWORK   (prints one JSON line)
Times are medians of a few repeats, in seconds, beside the median time of one training step
(batch 128 at 96x96), measured in the same process.
"""
import json
import os
import statistics
import sys
import tempfile
import time

from book.tools.chapters import load_code


def median_time(function, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(framework, steps=6):
    os.environ['D2LMINI_BUDGET'] = 'full'
    ns = load_code('googlenet', framework)
    d2l = ns['d2l']
    from d2lmini import checkpoint
    d2l.set_seed(0)
    data = d2l.FashionMNIST(batch_size=128, resize=(96, 96))
    data.train = tuple(a[:128 * steps] for a in data.train)
    data.val = tuple(a[:128] for a in data.val)
    model = ns['GoogleNet'](lr=0.01)
    params = model.apply_init([next(iter(data.train_dataloader()))[0]], d2l.init_cnn)
    trainer = d2l.Trainer(max_epochs=2)
    trainer.fit(model, data, *([] if params is None else [params]))
    step = min(h['seconds'] for h in trainer.history) / steps
    sync = median_time(trainer.snapshot, 5)
    with tempfile.TemporaryDirectory() as directory:
        saver = checkpoint.Checkpointer(directory)
        save = median_time(lambda: saver.save(trainer, 1, 0, [], None), 3)
    syncs_per_epoch, steps_per_epoch = 4, 469
    print(json.dumps(dict(
        framework=framework, step_s=step, snapshot_s=sync, checkpoint_s=save,
        snapshot_share_of_step=sync * syncs_per_epoch / steps_per_epoch / step,
        checkpoint_share_of_epoch=save / (steps_per_epoch * step))))


if __name__ == '__main__':
    main(sys.argv[1])
