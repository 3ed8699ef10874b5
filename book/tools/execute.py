"""Execute one notebook with a given Jupyter kernel (or the one its metadata names), started
in the notebook's folder with this process's environment (so D2LMINI_BUDGET reaches the code),
writing the result elsewhere: the source notebook is never rewritten."""
import asyncio
import os
import pathlib
import signal
import subprocess
import time

import nbformat
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from jupyter_core.utils import ensure_async
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

from book.tools.merge import first_line


class ExecutionError(Exception):
    """A notebook failed to run; the message names the notebook and the cell."""


class Stopped(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped a notebook's execution; `signum` says which. A KeyboardInterrupt,
    so that a caller which does not catch it ends as Ctrl-C ends a Python program."""

    def __init__(self, signum):
        super().__init__(f'stopped by {signal.Signals(signum).name}')
        self.signum = signum


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def kernel_name(nb, path, name=None):
    """`name`, else the kernel the notebook's metadata names; ExecutionError if it is not
    installed."""
    name = name or nb.metadata.get('kernelspec', {}).get('name')
    if not name:
        raise ExecutionError(f'{path}: no metadata.kernelspec.name, so no kernel to run it with.')
    try:
        KernelSpecManager().get_kernel_spec(name)
    except NoSuchKernel:
        raise ExecutionError(
            f"{path} is to run with the Jupyter kernel {name!r}, which is not installed (run `make setup`; "
            f"`jupyter kernelspec list` shows the installed ones).") from None
    return name


SKIP_TAG = 'skip-execution'      # nbclient leaves cells with this tag alone


def execute(source, target, cell_timeout=3600, startup_timeout=120, env=None, kernel=None,
            skip=None):
    """Run `source` top to bottom into `target`; returns the seconds it took. What the kernel
    process prints (library logs, not cell outputs) goes to <target>.kernel.log. On an error,
    the partly executed notebook goes to <target>.failed.ipynb and ExecutionError names the
    notebook, the cell and the error. `env`: variables to set for the kernel, on top of this
    process's environment. `kernel`: the Jupyter kernel to run it with (default: the one its
    metadata names; the chapter notebooks name Colab's `python3`, and the build passes each
    framework's kernel from d2lmini/frameworks.py). `skip(cell)`: True for a code cell not to
    run (it keeps no outputs in `target`).

    Ctrl-C or SIGTERM while the notebook runs sends the kernel SIGTERM (d2lmini's `fit` then
    finishes its step and writes a checkpoint before the kernel ends), runs no further cell,
    writes the partly executed notebook as on an error, and raises Stopped. This process's
    handlers for both signals are the same afterwards."""
    source, target = pathlib.Path(source), pathlib.Path(target)
    nb = nbformat.read(str(source), as_version=4)
    skipped = [cell for cell in nb.cells if cell.cell_type == 'code' and skip and skip(cell)]
    for cell in skipped:
        cell.outputs, cell.execution_count = [], None
        cell.metadata['tags'] = cell.metadata.get('tags', []) + [SKIP_TAG]
    name = kernel_name(nb, source, kernel)
    current = {}

    def on_cell_start(cell, cell_index, **_):
        current.update(cell=cell, index=cell_index)

    # nbclient (0.11) answers these signals by shutting the kernel down through a request,
    # which fails the running cell with DeadKernelError and its second clean-up with an
    # AssertionError, and tells the caller nothing of the signal. Once the kernel is up, our
    # handlers replace its own on the same event loop.
    received = []

    def stop_kernel(signum):
        if not received:        # once: a second Ctrl-C must not cut the checkpoint short
            received.append(signum)
            asyncio.ensure_future(ensure_async(client.km.signal_kernel(signal.SIGTERM)))

    def on_notebook_start(**_):
        loop = asyncio.get_running_loop()
        try:
            for signum in STOP_SIGNALS:
                loop.add_signal_handler(signum, stop_kernel, signum)
        except RuntimeError:    # not the main thread: signals are not ours to handle
            pass

    client = NotebookClient(
        nb, kernel_name=name, timeout=cell_timeout, startup_timeout=startup_timeout,
        resources={'metadata': {'path': str(source.parent.resolve())}},
        on_cell_start=on_cell_start, on_notebook_start=on_notebook_start, record_timing=True)
    target.parent.mkdir(parents=True, exist_ok=True)
    failed = target.with_suffix('.failed.ipynb')
    failed.unlink(missing_ok=True)
    log_path = target.with_suffix('.kernel.log')
    start = time.perf_counter()
    # the event loop's removal of a handler restores the default one, not the one it replaced
    handlers = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}
    try:
        with open(log_path, 'wb') as log:
            client.execute(env={**os.environ, **(env or {})}, stdout=log, stderr=subprocess.STDOUT)
    except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
        unskip(skipped)
        nbformat.write(nb, str(failed))
        if received:
            raise Stopped(received[0]) from None
        where = (f"cell {current['index']} ({first_line(current['cell'], 80)!r})" if current
                 else 'kernel start-up')
        what = (f'it ran past the per-cell timeout of {cell_timeout} s' if isinstance(error, CellTimeoutError)
                else 'the kernel died' if isinstance(error, DeadKernelError)
                else f'{error.ename}: {error.evalue}')
        raise ExecutionError(
            f'Executing {source} with kernel {name!r} failed in {where}: {what}\n'
            f'(partly executed notebook: {failed}; kernel log: {log_path})\n{str(error).strip()}') from None
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
    unskip(skipped)
    nbformat.write(nb, str(target))
    if received:        # the signal came as the last cell finished: the notebook is complete
        raise Stopped(received[0])
    return time.perf_counter() - start


def unskip(cells):
    for cell in cells:
        cell.metadata['tags'] = [tag for tag in cell.metadata['tags'] if tag != SKIP_TAG]
