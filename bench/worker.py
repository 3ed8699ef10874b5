"""One framework's measurements, in that framework's own process and virtual environment.

usage: python -m bench.worker FRAMEWORK RESULT.json [--device cpu|gpu|cpu2] [--steps N]
       [--repeats N] [--warmup-epochs N] [--pipeline-batches N]     (bench/run.py starts it)

--device cpu2 (run.py sets D2LMINI_CPU_DEVICES=2) measures data parallelism instead: (a) on
two CPU devices sharing the machine's cores against (a) on one device using all of them, the
two Trainers' epochs alternating (`measure_data_parallel`).

(a) `d2l.Trainer.fit` on the chapter's GoogLeNet trains epochs of --steps batches, each
followed by validation on one batch; the first --warmup-epochs epochs (compilation, first-touch
allocation) are not counted. After each epoch but the last, (b) a hand-written loop (bench/loops/FRAMEWORK.py)
trains a second, identically built model for one pass over a loader built the same way, then
validates on one batch. Both are timed the same way: the training pass alone, from the first
batch requested until its work is done and the losses are back on the host.
"""
import argparse
import importlib
import itertools
import json
import os
import pathlib

from bench import measure, workload
from bench.workload import BATCH_SIZE, LR, RESIZE
from d2lmini.frameworks import IDS

VAL_BATCHES = 1     # the Trainer validates after each epoch: keep that to one batch


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('framework', choices=IDS)
    parser.add_argument('result', type=pathlib.Path)
    parser.add_argument('--device', choices=('cpu', 'gpu', 'cpu2'), default='cpu')
    measure.add_options(parser)
    return parser.parse_args(argv)


def measure_pipeline(d2l, loops, args):
    """Images/s the training loader delivers: shuffled, resized, as the framework's tensors."""
    loader = workload.data(d2l).train_dataloader()

    def one_pass():
        for batch in itertools.islice(loader, args.pipeline_batches):
            pass
        loops.wait(batch)

    one_pass()
    return [measure.images_per_sec(one_pass, args.pipeline_batches * BATCH_SIZE)
            for _ in range(args.repeats)]


def measure_training(ns, loops, args):
    """(a) and (b) in images/s, one value per timed pass, interleaved a, b, a, ..., b, a."""
    d2l = ns['d2l']
    data = workload.data(d2l, train_batches=args.steps, val_batches=VAL_BATCHES)
    model_a, params_a = workload.new_model(ns, data)
    model_b, params_b = workload.new_model(ns, data)
    val_batch = next(iter(data.val_dataloader()))
    a, b, hand = [], [], []

    def after_epoch(trainer):
        timed = trainer.epoch >= args.warmup_epochs
        if timed:
            a.append(trainer.history[-1]['examples_per_sec'])
        if trainer.epoch == trainer.epochs_planned - 1:
            return      # (a)'s last epoch only closes the bracket around (b)'s last pass
        if not hand:    # built on the Trainer's device, inside fit's device scope, as (a) is
            hand.append(loops.HandLoop(model_b, params_b, LR, trainer.device))
        loader = data.train_dataloader()
        rate = measure.images_per_sec(lambda: hand[0].epoch(loader), args.steps * BATCH_SIZE)
        hand[0].evaluate(*val_batch)    # untimed, as the Trainer validates after each epoch
        if timed:
            b.append(rate)

    trainer = d2l.Trainer(max_epochs=args.warmup_epochs + args.repeats + 1,
                          num_gpus=int(args.device == 'gpu'),
                          callbacks=[measure.after_each_epoch(after_epoch)])
    if args.device == 'gpu' and not trainer.on_gpu:
        raise SystemExit(f'{args.framework}: no GPU visible')
    workload.fit(trainer, model_a, data, params_a)
    return a, b, str(trainer.device_name())


def measure_data_parallel(ns, args):
    """(a) in images/s on one device and on two CPU devices: ({1: [...], 2: [...]}, names).
    Each Trainer trains its own model, identically built, one epoch per `fit` (a second fit of
    the same model trains on, compiled once; PyTorch forks its two worker processes again at
    each fit, inside the epoch's timed part); the two alternate, so that both see the same
    machine load, and the first --warmup-epochs of each are not counted."""
    d2l = ns['d2l']
    data = workload.data(d2l, train_batches=args.steps, val_batches=VAL_BATCHES)
    runs = {}
    for count in (1, 2):
        model, params = workload.new_model(ns, data)
        runs[count] = [d2l.Trainer(max_epochs=1, num_gpus=0 if count == 1 else count), model,
                       params]
    rates = {1: [], 2: []}
    for epoch in range(args.warmup_epochs + args.repeats):
        for count, run in runs.items():
            trainer, model, params = run
            workload.fit(trainer, model, data, params)
            run[2] = None       # JAX: from the trained state on, not from the first params
            if epoch >= args.warmup_epochs:
                rates[count].append(trainer.history[-1]['examples_per_sec'])
    placement = runs[2][0].placement
    if (placement.kind, placement.count) != ('cpu', 2):
        raise SystemExit(f'{args.framework}: 2 CPU devices asked for, '
                         f'{runs[2][0].device_name()} found')
    return rates, {count: run[0].device_name() for count, run in runs.items()}


def main_data_parallel(args):
    ns = workload.load(args.framework)
    loops = importlib.import_module(f'bench.loops.{args.framework}')
    rates, names = measure_data_parallel(ns, args)
    ratios = [two / one for one, two in zip(rates[1], rates[2])]
    result = dict(framework=args.framework, device=names[2], one_device=names[1],
                  version=loops.version(), one=measure.median(rates[1]),
                  two=measure.median(rates[2]), ratio=measure.median(ratios),
                  samples=dict(one=rates[1], two=rates[2], ratio=ratios),
                  settings=dict(steps=args.steps, repeats=args.repeats,
                                warmup_epochs=args.warmup_epochs, batch_size=BATCH_SIZE,
                                resize=RESIZE, lr=LR))
    args.result.write_text(json.dumps(result, indent=1))


def main(argv=None):
    args = parse_args(argv)
    if args.device == 'cpu2':
        return main_data_parallel(args)
    ns = workload.load(args.framework)   # first: d2lmini sets up threads before import
    loops = importlib.import_module(f'bench.loops.{args.framework}')
    pipeline = measure_pipeline(ns['d2l'], loops, args)
    a, b, device = measure_training(ns, loops, args)
    ratios = measure.bracketed_ratios(a, b)
    result = dict(framework=args.framework, device=device, version=loops.version(),
                  trainer=measure.median(a), hand=measure.median(b),
                  ratio=measure.median(ratios), pipeline=measure.median(pipeline),
                  samples=dict(trainer=a, hand=b, ratio=ratios, pipeline=pipeline),
                  settings=dict(steps=args.steps, repeats=args.repeats,
                                warmup_epochs=args.warmup_epochs,
                                pipeline_batches=args.pipeline_batches, batch_size=BATCH_SIZE,
                                resize=RESIZE, lr=LR,
                                omp_num_threads=os.environ.get('OMP_NUM_THREADS')))
    args.result.write_text(json.dumps(result, indent=1))


if __name__ == '__main__':
    main()
