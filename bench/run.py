"""`make bench` (`python -m bench.run`): GoogLeNet training throughput at 96x96, batch 128, in every framework.

For each framework, in its own process and virtual environment (bench/worker.py), it measures
(a) `d2l.Trainer.fit`, (b) a minimal hand-written loop with the same model, data, optimizer
and compilation (bench/loops/), interleaved, and the data pipeline alone; here it measures the
machine's float32 matrix-multiply GFLOP/s; and (`cpu2`) (a) on two CPU devices against one
device, the overhead of data parallelism. It then prints the tables, writes them as JSON
(bench/results.json) and puts it in bench/README.md.
"""
import argparse
import json
import os
import pathlib
import platform
import shutil
import subprocess
import sys
import tempfile
import time

from bench import measure
from d2lmini.frameworks import FRAMEWORKS

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
PYTHONS = {fw.id: ROOT / fw.venv / 'bin' / 'python' for fw in FRAMEWORKS}
GFLOP_PER_IMAGE = 1.642     # GoogLeNet at 96x96, one training image: forward plus backward
TARGET_RATIO, TARGET_PIPELINE = 0.97, 20
TARGET_DATA_PARALLEL = 0.85     # (a) on two CPU devices sharing the cores, over (a) on one
# the engine each adapter trains several devices through (the book's page multi_device)
ENGINES = dict(pytorch='DistributedDataParallel (gloo)',
               tensorflow='MirroredStrategy (ReductionToOneDevice)',
               jax='jit over a Mesh (NamedSharding)', mxnet="split_and_load + kvstore 'device'")
README = HERE / 'README.md'
BEGIN, END = '<!-- bench:begin -->', '<!-- bench:end -->'
PROFILE_BEGIN, PROFILE_END = '<!-- profile:begin -->', '<!-- profile:end -->'


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--frameworks', default=','.join(PYTHONS))
    parser.add_argument('--devices', default='auto',
                        help='a comma-separated choice of cpu, cpu2 (data parallelism on two CPU '
                             'devices) and gpu; auto: cpu, cpu2, and gpu where nvidia-smi works')
    measure.add_options(parser)
    parser.add_argument('--out', type=pathlib.Path, default=HERE / 'results.json')
    parser.add_argument('--no-readme', action='store_true', help='leave bench/README.md as is')
    parser.add_argument('--profile', action='store_true',
                        help='also profile each framework\'s train step (breakdown.py) and '
                             'print its five most expensive operations')
    parser.add_argument('--profile-only', action='store_true',
                        help='only the profiles, no throughput measurement')
    return parser.parse_args()


def devices(choice):
    if choice != 'auto':
        return choice.split(',')
    nvidia_smi = shutil.which('nvidia-smi')
    has_gpu = nvidia_smi and subprocess.run([nvidia_smi], capture_output=True).returncode == 0
    return ['cpu', 'cpu2', 'gpu'] if has_gpu else ['cpu', 'cpu2']


def matmul():
    """NumPy's float32 matmul GFLOP/s, without the OPENBLAS_* settings this workplace sets
    for old OpenBLAS builds (they pin an older, slower kernel)."""
    env = {k: v for k, v in os.environ.items()
           if k not in ('OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE')}
    out = subprocess.run([sys.executable, '-m', 'bench.measure'], env=env, cwd=ROOT,
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


def run_worker(framework, device, args):
    with tempfile.TemporaryDirectory() as tmp:
        result = pathlib.Path(tmp) / 'result.json'
        command = [str(PYTHONS[framework]), '-m', 'bench.worker', framework, str(result),
                   '--device', device, *measure.option_args(args)]
        print(f'\n== {framework} on {device}', flush=True)
        started = time.perf_counter()
        # cpu2: the framework offers two CPU devices (d2lmini/devices.py), and sees no GPU
        env = dict(os.environ, D2LMINI_CPU_DEVICES='2', CUDA_VISIBLE_DEVICES='',
                   JAX_PLATFORMS='cpu') if device == 'cpu2' else None
        status = subprocess.run(command, cwd=ROOT, env=env).returncode
        if status != 0 or not result.exists():
            print(f'== {framework} on {device}: failed (exit status {status}), left out')
            return None
        row = json.loads(result.read_text())
        row['seconds'] = time.perf_counter() - started
        return row


def run_breakdown(framework):
    """The framework's own profile of one d2lmini train step, in its own process."""
    with tempfile.TemporaryDirectory() as tmp:
        result = pathlib.Path(tmp) / 'profile.json'
        print(f'\n== {framework}: profile', flush=True)
        status = subprocess.run([str(PYTHONS[framework]), '-m', 'bench.breakdown', framework,
                                 str(result)], cwd=ROOT).returncode
        if status != 0 or not result.exists():
            print(f'== {framework}: profile failed (exit status {status}), left out')
            return None
        return json.loads(result.read_text())


def profile_table(profiles):
    lines = ['| framework | s/step profiled | 1 | 2 | 3 | 4 | 5 |', '|---|--:|---|---|---|---|---|']
    for p in profiles:
        cells = [f"`{row['op'][:60]}` {row['share']:.0%}" for row in p['top']]
        lines.append(f"| {p['framework']} | {p['step_seconds']:.2f} | " + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def profiles(frameworks, option):
    found = [p for p in (run_breakdown(fw) for fw in frameworks) if p is not None]
    text = (f"{time.strftime('%Y-%m-%d %H:%M')}, `make bench BENCH_ARGS={option}`: the five "
            'most expensive operations of one d2lmini train step (batch 128, 96x96, CPU) by '
            "each framework's own profiler (`bench/breakdown.py`), with their share of the "
            "profiled operations' time.\n\n" + profile_table(found))
    print('\n' + text)
    return found, text


def add_derived(rows, reference_gflops):
    """Relative speed, GFLOP/s and the fraction of the matmul rate, target checks."""
    for device in {row['device_kind'] for row in rows}:
        fastest = max(row['trainer'] for row in rows if row['device_kind'] == device)
        for row in rows:
            if row['device_kind'] == device:
                row['vs_fastest'] = row['trainer'] / fastest
    for row in rows:
        row['gflops'] = row['trainer'] * GFLOP_PER_IMAGE
        # the reference is the CPU's: a GPU row has no matmul rate measured to compare with
        row['of_matmul'] = row['gflops'] / reference_gflops if row['device_kind'] == 'cpu' else None
        row['pipeline_vs_training'] = row['pipeline'] / row['trainer']
        row['meets_ratio'] = row['ratio'] >= TARGET_RATIO
        row['meets_pipeline'] = row['pipeline_vs_training'] >= TARGET_PIPELINE


def table(rows):
    head = ('| framework | device | (a) Trainer img/s | (b) hand loop img/s | a/b '
            '| vs fastest | pipeline img/s | pipeline / training | GFLOP/s | of matmul |\n'
            '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n')
    lines = []
    for r in rows:
        mark = lambda ok: '' if ok else ' ✗'  # noqa: E731
        of_matmul = f"{r['of_matmul']:.0%}" if r['of_matmul'] is not None else 'n/a'
        lines.append(
            f"| {r['framework']} | {r['device']} | {r['trainer']:.1f} | {r['hand']:.1f} "
            f"| {r['ratio']:.3f}{mark(r['meets_ratio'])} | {r['vs_fastest']:.2f} "
            f"| {r['pipeline']:,.0f} | {r['pipeline_vs_training']:,.0f}x{mark(r['meets_pipeline'])} "
            f"| {r['gflops']:.0f} | {of_matmul} |")
    return head + '\n'.join(lines)


def data_parallel_table(rows):
    """The cpu2 rows: (a) on two CPU devices sharing the cores against (a) on one using them
    all, the overhead of data parallelism where the devices add no compute."""
    head = ('| framework | engine | (a) 1 device img/s | (a) 2 CPU devices img/s | 2 / 1 |\n'
            '|---|---|--:|--:|--:|\n')
    return head + '\n'.join(
        f"| {r['framework']} | {ENGINES[r['framework']]} | {r['one']:.1f} | {r['two']:.1f} "
        f"| {r['ratio']:.3f}{'' if r['ratio'] >= TARGET_DATA_PARALLEL else ' ✗'} |"
        for r in rows)


def machine(reference, load_at_start):
    cpu = next((line.split(':', 1)[1].strip() for line in open('/proc/cpuinfo')
                if line.startswith('model name')), platform.processor())
    memory = next((int(line.split()[1]) // 2**20 for line in open('/proc/meminfo')
                   if line.startswith('MemTotal')), None)
    return dict(cpu=cpu, cores=os.cpu_count(), memory_gib=memory, os=platform.platform(),
                python=platform.python_version(),
                load_average=dict(start=load_at_start, end=os.getloadavg()[0]),
                matmul=reference)


def describe(report):
    m, s = report['machine'], report['settings']
    versions = '; '.join(f"{r['framework']}: {r['version']}" for r in report['rows']
                         if r['device_kind'] == 'cpu')
    mm = m['matmul']
    return (
        f"{report['date']}, `make bench` ({report['seconds'] / 60:.1f} min): {s['steps']} "
        f"steps of batch 128 per timed pass, {s['repeats']} passes of (b) interleaved with "
        f"{s['repeats'] + 1} of (a), after {s['warmup_epochs']} warm-up pass(es); medians.\n\n"
        f"Machine: {m['cpu']}, {m['cores']} cores, {m['memory_gib']} GiB, {m['os']}, "
        f"Python {m['python']}; 1-minute load average {m['load_average']['start']:.1f} at the "
        f"start, {m['load_average']['end']:.1f} at the end (a machine shared with other work).\n"
        f"Libraries: {versions}.\n"
        f"Matmul reference: {mm['gflops']:.0f} GFLOP/s, float32 {mm['n']}x{mm['n']} "
        f"products with {mm['library']} (OpenBLAS kernel {mm['blas_kernel']}, "
        f"OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset), median of {len(mm['all_gflops'])}.\n")


def update_readme(block, begin=BEGIN, end=END):
    text = README.read_text()
    start, stop = text.index(begin) + len(begin), text.index(end)
    README.write_text(text[:start] + f'\n{block}\n' + text[stop:])


def main():
    args = parse_args()
    if args.profile_only:
        found, text = profiles(args.frameworks.split(','), '--profile-only')
        if not args.no_readme:
            update_readme(text, PROFILE_BEGIN, PROFILE_END)
        return
    started, load_at_start = time.perf_counter(), os.getloadavg()[0]
    reference = matmul()
    print(f"float32 matmul: {reference['gflops']:.0f} GFLOP/s ({reference['library']}, "
          f"OpenBLAS kernel {reference['blas_kernel']})")
    rows, parallel_rows = [], []
    for device in devices(args.devices):
        for framework in args.frameworks.split(','):
            row = run_worker(framework, device, args)
            if row is not None:
                (parallel_rows if device == 'cpu2' else rows).append(dict(row, device_kind=device))
    if not rows and not parallel_rows:
        sys.exit('no framework could be measured')
    add_derived(rows, reference['gflops'])
    report = dict(date=time.strftime('%Y-%m-%d %H:%M'), seconds=time.perf_counter() - started,
                  settings=dict(steps=args.steps, repeats=args.repeats,
                                warmup_epochs=args.warmup_epochs,
                                pipeline_batches=args.pipeline_batches),
                  targets=dict(ratio=TARGET_RATIO, pipeline_vs_training=TARGET_PIPELINE,
                               data_parallel=TARGET_DATA_PARALLEL),
                  gflop_per_image=GFLOP_PER_IMAGE, machine=machine(reference, load_at_start),
                  rows=rows, data_parallel_rows=parallel_rows)
    report['table'] = table(rows) if rows else ''
    if parallel_rows:
        report['table'] += ('\n\nData parallelism on two CPU devices sharing the cores '
                            '(`--devices cpu2`):\n\n' + data_parallel_table(parallel_rows))
    print('\n' + describe(report) + '\n' + report['table'])
    if args.profile:
        report['profiles'], text = profiles(args.frameworks.split(','), '--profile')
    args.out.write_text(json.dumps(report, indent=1) + '\n')
    if not args.no_readme:
        update_readme(f"{describe(report)}\n{report['table']}")
        if args.profile:
            update_readme(text, PROFILE_BEGIN, PROFILE_END)
    missed = [r['framework'] for r in rows if not (r['meets_ratio'] and r['meets_pipeline'])]
    missed += [f"{r['framework']} (2 CPU devices)" for r in parallel_rows
               if r['ratio'] < TARGET_DATA_PARALLEL]
    if missed:
        print(f"\nTargets missed (✗) by: {', '.join(missed)}")


if __name__ == '__main__':
    main()
