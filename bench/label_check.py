"""What the Trainer's per-batch label check costs, as a share of a GoogLeNet train step.

usage: python -m bench.label_check FRAMEWORK [--steps N] [--repeats R]

One process, one framework: `d2l.Trainer.fit` trains the chapter's GoogLeNet (batch 128,
96x96) for two epochs of --steps batches (the first warms up: compilation, first
allocations); the second epoch's seconds per step is the step time. Then the check
(`Trainer._check_labels`, as `fit_epoch` calls it on each batch the loader yields) runs
--repeats times on each of those batches. Prints one JSON record.
"""
import argparse
import json
import time

from bench import workload
from d2lmini.frameworks import IDS


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('framework', choices=IDS)
    parser.add_argument('--steps', type=int, default=6)
    parser.add_argument('--repeats', type=int, default=2000)
    args = parser.parse_args()
    ns = workload.load(args.framework)
    d2l = ns['d2l']
    data = workload.data(d2l, train_batches=args.steps, val_batches=1)
    model, params = workload.new_model(ns, data)
    trainer = d2l.Trainer(max_epochs=2)
    workload.fit(trainer, model, data, params)
    step_s = trainer.history[-1]['seconds'] / args.steps
    batches = list(data.train_dataloader())
    start = time.perf_counter()
    for _ in range(args.repeats):
        for batch in batches:
            trainer._check_labels(batch, 'training')
    check_s = (time.perf_counter() - start) / (args.repeats * len(batches))
    print(json.dumps(dict(framework=args.framework, step_ms=step_s * 1e3,
                          check_us=check_s * 1e6, check_share_of_step=check_s / step_s)))


if __name__ == '__main__':
    main()
