"""Where a GoogLeNet train step spends its time, by each framework's own profiler.

usage: python -m bench.breakdown FRAMEWORK RESULT.json [--steps N] [--top K]     (run.py --profile)

The step is d2lmini's: `d2l.Trainer.fit` on the chapter's GoogLeNet (batch 128, 96x96) with
the settings d2lmini chooses; one epoch of --steps batches warms up (compilation, first
allocations), the next is profiled. Shares are of the summed time of the profiled operations:
- pytorch: `torch.profiler`, self CPU time per ATen operator;
- tensorflow: `tf.profiler` (XPlane), time per TensorFlow op type (the `tf.function`'s ops
  on the executor's threads);
- jax: `jax.profiler` (XPlane), time per XLA thunk of the compiled step, grouped by HLO
  instruction kind and the JAX primitive it came from (from the compiled HLO's metadata).
  XLA runs its Eigen convolutions asynchronously on its thread pool, outside any thunk's
  traced span: the cores' time outside traced thunks during the step's execution (Eigen's
  convolutions, and any idle time) is one line of its own;
- mxnet: MXNet's profiler, aggregate time per operator (engine bulking turned off for the
  profile, so that each operator is timed by itself rather than in bulked segments).
"""
import argparse
import collections
import glob
import json
import os
import pathlib
import re
import tempfile

from bench import workload
from bench.workload import BATCH_SIZE
from d2lmini.frameworks import IDS


def xplane_events(logdir):
    """(thread name, event name, duration in ms) of every event in an XPlane trace."""
    from jax.profiler import ProfileData     # reads any XPlane file, TensorFlow's too
    path = sorted(glob.glob(f'{logdir}/**/*.xplane.pb', recursive=True))[-1]
    for plane in ProfileData.from_file(path).planes:
        for line in plane.lines:
            for event in line.events:
                yield plane.name, line.name, event.name, event.duration_ns / 1e6


class Profiler:
    """start() and stop(trainer) around the profiled steps; totals() -> {operation: ms}."""


class TorchProfiler(Profiler):
    def start(self):
        import torch.profiler
        self.profile = torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU])
        self.profile.__enter__()

    def stop(self, trainer):
        self.profile.__exit__(None, None, None)

    def totals(self):
        return {e.key: e.self_cpu_time_total / 1e3 for e in self.profile.key_averages()}


class TensorFlowProfiler(Profiler):
    def start(self):
        import tensorflow as tf
        self.logdir = tempfile.mkdtemp()
        tf.profiler.experimental.start(self.logdir)

    def stop(self, trainer):
        import tensorflow as tf
        tf.profiler.experimental.stop()

    def totals(self):
        totals = collections.Counter()
        for plane, line, name, ms in xplane_events(self.logdir):
            # ops run on the executor's 'tf_Compute' threads, named 'scope/name:Type'
            if line.startswith('tf_Compute') and ':' in name and '::' not in name:
                totals[name.rsplit(':', 1)[-1]] += ms
        return totals


class JaxProfiler(Profiler):
    def start(self):
        import jax
        self.logdir = tempfile.mkdtemp()
        jax.profiler.start_trace(self.logdir)

    def stop(self, trainer):
        import jax
        jax.block_until_ready(trainer.state)    # the last step's work, traced
        jax.profiler.stop_trace()

    def totals(self, hlo):
        kinds = {}
        for name, rest in re.findall(r'^\s*(?:ROOT )?%([\w.\-]+) = ([^\n]*)', hlo, re.M):
            primitive = re.search(r'op_name="([^"]*)"', rest)
            primitive = primitive.group(1).split('/')[-1] if primitive else ''
            kinds[name] = re.sub(r'\.\d+$', '', name) + (f' ({primitive})' if primitive else '')
        totals, wall = collections.Counter(), 0
        for plane, line, name, ms in xplane_events(self.logdir):
            if 'XLAEigen' in line or 'PjRtCpuClient' in line:
                if name in kinds:
                    totals[kinds[name]] += ms
                elif name == 'ThunkExecutor::Execute (wait for completion)':
                    wall += ms      # the step's execution, start to end
        # What the cores did outside the traced thunks during the step: mostly Eigen's
        # convolutions (XLA runs one thread per core)
        untraced = (os.cpu_count() or 1) * wall - sum(totals.values())
        if untraced > 0:
            totals['outside traced thunks: Eigen convolutions, idle'] = untraced
        return totals


class MXNetProfiler(Profiler):
    def __init__(self):
        # Bulked segments would be timed as one; MXNet reads these at import
        os.environ['MXNET_EXEC_BULK_EXEC_TRAIN'] = os.environ['MXNET_EXEC_BULK_EXEC_INFERENCE'] = '0'

    def start(self):
        import mxnet as mx
        self.file = tempfile.mktemp(suffix='.json')
        mx.profiler.set_config(profile_all=True, aggregate_stats=True, filename=self.file)
        mx.profiler.set_state('run')

    def stop(self, trainer):
        import mxnet as mx
        mx.nd.waitall()
        mx.profiler.set_state('stop')

    def totals(self):
        import mxnet as mx
        stats = json.loads(mx.profiler.dumps(format='json'))
        totals = collections.Counter()
        for domain, ops in stats.get('Time', {}).items():
            if domain.startswith('operator'):
                for name, s in ops.items():
                    totals[name] += s['Total']
        return totals


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('framework', choices=IDS)
    parser.add_argument('result', type=pathlib.Path)
    parser.add_argument('--steps', type=int, default=2)
    parser.add_argument('--top', type=int, default=5)
    args = parser.parse_args(argv)
    profiler = {'pytorch': TorchProfiler, 'tensorflow': TensorFlowProfiler,
                'jax': JaxProfiler, 'mxnet': MXNetProfiler}[args.framework]()
    ns = workload.load(args.framework)   # first: d2lmini's settings come first
    d2l = ns['d2l']
    data = workload.data(d2l, train_batches=args.steps, val_batches=1)
    model, params = workload.new_model(ns, data)
    seconds = []

    class Profile(d2l.Callback):
        """Profiles the second epoch, the first being the warm-up."""
        def on_epoch_start(self, trainer):
            if trainer.epoch == 1:
                profiler.start()

        def on_train_step_end(self, trainer):
            if trainer.epoch == 1 and trainer.step == args.steps:   # before validation
                profiler.stop(trainer)

        def on_epoch_end(self, trainer):
            if trainer.epoch == 1:
                seconds.append(args.steps * BATCH_SIZE / trainer.history[-1]['examples_per_sec'])

    trainer = d2l.Trainer(max_epochs=2, callbacks=[Profile()])
    workload.fit(trainer, model, data, params)
    if args.framework == 'jax':
        hlo = trainer.compiled_train_step.lower(trainer.state, trainer.prepare_batch(
            next(iter(data.train_dataloader())))).compile().as_text()
        totals = collections.Counter(profiler.totals(hlo))
    else:
        totals = collections.Counter(profiler.totals())
    total = sum(totals.values())
    top = [dict(op=op, ms_per_step=ms / args.steps, share=ms / total)
           for op, ms in totals.most_common(args.top)]
    result = dict(framework=args.framework, steps=args.steps, step_seconds=seconds[0] / args.steps,
                  profiled_ms_per_step=total / args.steps, top=top)
    args.result.write_text(json.dumps(result, indent=1))
    print(f'{args.framework}: {result["step_seconds"]:.2f} s per step while profiled')
    for row in top:
        print(f"  {row['share']:6.1%}  {row['ms_per_step']:8.1f} ms  {row['op']}")


if __name__ == '__main__':
    main()
