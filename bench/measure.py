"""What every framework's measurement shares: timing, medians, interleaving, and the
machine's float32 matrix-multiply GFLOP/s (run as a script: `python measure.py`)."""
import json
import statistics
import time


def add_options(parser):
    """The step counts, shared by run.py and worker.py."""
    parser.add_argument('--steps', type=int, default=4, help='batches per timed pass')
    parser.add_argument('--repeats', type=int, default=11,
                        help='timed passes of b (a has one more, to close the last bracket)')
    parser.add_argument('--warmup-epochs', type=int, default=1, help='passes not timed')
    parser.add_argument('--pipeline-batches', type=int, default=40,
                        help='batches per timed pass of the data pipeline')


def option_args(args):
    """`add_options`' values as command-line arguments again, to hand on to worker.py."""
    return ['--steps', str(args.steps), '--repeats', str(args.repeats),
            '--warmup-epochs', str(args.warmup_epochs),
            '--pipeline-batches', str(args.pipeline_batches)]


def median(values):
    return statistics.median(values) if values else float('nan')


def bracketed_ratios(a, b):
    """a/b for each pass b[i], run between a[i] and a[i + 1], against the mean of those two:
    a load that rises or falls during the run then favours neither side."""
    return [(a[i] + a[i + 1]) / 2 / b[i] for i in range(len(b))]


def images_per_sec(run, images):
    """Time one call of `run` (which must wait for its results) and return images / second."""
    start = time.perf_counter()
    run()
    return images / (time.perf_counter() - start)


def after_each_epoch(function):
    """A Trainer callback that calls `function(trainer)` after each epoch of `fit`.

    The Trainer times each epoch's training part itself (`history[-1]['examples_per_sec']`),
    so whatever `function` does (the hand-written loop's pass) is outside that time.
    """
    from d2lmini.training import Callback

    class AfterEpoch(Callback):
        def on_epoch_end(self, trainer):
            function(trainer)
    return AfterEpoch()


def matmul_gflops(n=2048, repeats=7):
    """float32 (n x n) @ (n x n) with NumPy's BLAS: the median GFLOP/s of `repeats` products,
    and which BLAS kernel ran (OpenBLAS's core name, where NumPy's OpenBLAS tells it)."""
    import numpy as np
    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    b = a.copy()
    a @ b   # warm-up: threads start, pages are touched
    rates = [images_per_sec(lambda: a @ b, 2 * n ** 3) / 1e9 for _ in range(repeats)]
    return dict(gflops=median(rates), all_gflops=rates, n=n, library=f'numpy {np.__version__}',
                blas_kernel=openblas_core())


def openblas_core():
    """The kernel OpenBLAS picked for this CPU (e.g. 'SkylakeX'), or None if unknown."""
    import ctypes
    import glob
    import os
    import numpy as np
    libs = glob.glob(os.path.join(os.path.dirname(np.__file__), '..', 'numpy.libs', '*openblas*'))
    for path in libs:
        lib = ctypes.CDLL(path)
        for name in ('scipy_openblas_get_corename64_', 'openblas_get_corename64_',
                     'openblas_get_corename'):
            if hasattr(lib, name):
                getter = getattr(lib, name)
                getter.restype = ctypes.c_char_p
                return getter().decode()
    return None


if __name__ == '__main__':
    print(json.dumps(matmul_gflops()))
