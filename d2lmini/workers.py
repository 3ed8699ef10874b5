"""Worker processes that train data-parallel on several devices, one per device, written once
for the adapters whose framework needs a process per device (PyTorch's
DistributedDataParallel): started by forking the process that calls `fit`, the way the
ecosystem starts them from a notebook (Lightning's `ddp_notebook`, Accelerate's
`notebook_launcher`), and driven by it.

The process that calls `fit` keeps the training loop (budgets, sync points, NaN and Ctrl-C
handling, checkpoints, progress, the run record: all as on one device, and in a notebook its
outputs are the cell's); the workers hold the model's replicas and run the steps it sends them,
in order, answering only when asked (a training step's loss stays on its device until the next
sync point, as on one device).

Faults: a worker that ends (an error, a crash, a kill) is noticed by its process sentinel at
the next message sent or answer awaited, the other workers are stopped, and `WorkerError`
names the worker, its device and its exit code; an error raised in a worker comes back as the
same exception, with the worker's traceback as its cause. Workers ignore SIGINT: a Ctrl-C in a
terminal reaches the whole process group, and it is the driving process that stops the run
after the step in progress (see `training.deferred_interrupts`), then stops the workers.
"""
import itertools
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import signal
import threading
import time
import traceback

from d2lmini.errors import D2lminiError

STOP_TIMEOUT_S = 10         # how long stopped workers may take to end before they are killed


class WorkerError(D2lminiError, RuntimeError):
    """A worker process training on one of several devices ended during a run."""


class RemoteTraceback(Exception):
    """The traceback of an error raised in a worker (the cause of the error re-raised here)."""

    def __str__(self):
        return self.args[0]


def describe_exit(code):
    """'exit code 1', or 'exit code -9 (killed by SIGKILL)'."""
    if code is not None and code < 0:
        try:
            return f'exit code {code} (killed by {signal.Signals(-code).name})'
        except ValueError:
            pass
    return f'exit code {code}'


class Pool:
    """`count` forked worker processes: worker `rank` runs `serve(rank, receive, reply)`, where
    `receive()` returns the next message sent to it and `reply(value)` answers the driving
    process; `names[rank]` is the worker's device, for messages."""

    def __init__(self, count, serve, names):
        context = multiprocessing.get_context('fork')
        self.names, self.processes, self.connections, self._outboxes = list(names), [], [], []
        self._ids = itertools.count()
        self.closed = False
        try:
            for rank in range(count):
                ours, theirs = context.Pipe()
                process = context.Process(target=_worker_main, args=(serve, rank, theirs),
                                          name=f'd2lmini-worker-{rank}', daemon=True)
                process.start()
                theirs.close()
                self.processes.append(process)
                self.connections.append(ours)
            # Sending from a thread (started once every worker is forked, so that none holds
            # a copy of it): a worker that stopped reading (waiting on a dead peer) never
            # blocks the driving process, which keeps watching the sentinels.
            for connection in self.connections:
                outbox = queue.SimpleQueue()
                threading.Thread(target=_send_all, args=(connection, outbox),
                                 daemon=True).start()
                self._outboxes.append(outbox)
        except BaseException:
            self.close()
            raise

    def new_id(self):
        return next(self._ids)

    def send(self, rank, message):
        self._check_alive()
        self._outboxes[rank].put(message)

    def broadcast(self, message):
        for rank in range(len(self.processes)):
            self.send(rank, message)

    def receive(self, rank, timeout=None):
        """The next answer of worker `rank`; raises `WorkerError` if any worker has ended, or
        if none came within `timeout` seconds (None: no limit), or the worker's own error,
        re-raised."""
        connection = self.connections[rank]
        sentinels = [p.sentinel for p in self.processes]
        deadline = None if timeout is None else time.monotonic() + timeout
        while not connection.poll():
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = multiprocessing.connection.wait([connection] + sentinels, left)
            if connection in ready:
                break
            self._check_alive()
            if not ready:
                process = self.processes[rank]
                self.close(wait=1)
                raise WorkerError(
                    f'The worker process training on {self.names[rank]} (rank {rank}, pid '
                    f'{process.pid}) did not answer within {timeout:g} s; the workers were '
                    f'stopped.')
        try:
            kind, value = connection.recv()
        except (EOFError, OSError):
            raise self._failure(rank) from None
        if kind == 'error':
            raise self._failure(rank, value)
        return value

    def ask(self, message, ranks=None, timeout=None):
        """Send `message` to the workers `ranks` (default: all) and return their answers
        (see `receive`)."""
        ranks = range(len(self.processes)) if ranks is None else ranks
        for rank in ranks:
            self.send(rank, message)
        return [self.receive(rank, timeout) for rank in ranks]

    def _check_alive(self):
        if self.closed:
            raise WorkerError('The worker processes of this run were stopped already.')
        for rank, process in enumerate(self.processes):
            if process.exitcode is not None:
                raise self._failure(rank)

    def _failure(self, rank, reported=None):
        """The error to raise for worker `rank`, which ended or `reported` (error, traceback
        text); stops all workers. A worker killed by a signal is the cause the others' errors
        (a lost peer) come from: it is the one named."""
        if reported is None and self.connections[rank].poll():
            try:
                kind, value = self.connections[rank].recv()
                reported = value if kind == 'error' else None
            except (EOFError, OSError):
                pass
        for process in self.processes:
            process.join(1 if reported is not None else 0.2)
        killed = [r for r, p in enumerate(self.processes)
                  if p.exitcode is not None and p.exitcode < 0]
        self.close(wait=1)
        if reported is not None and not killed:
            error, text = reported
            error.__cause__ = RemoteTraceback(f'\n\nin the worker on {self.names[rank]}:\n{text}')
            return error
        rank = killed[0] if killed else rank
        process = self.processes[rank]
        return WorkerError(
            f'The worker process training on {self.names[rank]} (rank {rank}, pid '
            f'{process.pid}) ended during the run with {describe_exit(process.exitcode)}; the '
            f'other workers were stopped. The model keeps the weights it had when this fit '
            f'began (with checkpoint_dir, fit resumes from the last checkpoint). Look for the '
            f'cause in what the worker printed (often memory: a smaller batch_size helps), or '
            f'train on one device.')

    def close(self, wait=STOP_TIMEOUT_S):
        """Stop the workers: ask them to end, and terminate (then kill) those that have not
        after `wait` seconds."""
        if self.closed:
            return
        self.closed = True
        for outbox in self._outboxes:
            outbox.put(None)
        for process in self.processes:
            process.join(wait)
            wait = 0.5
        for process in self.processes:
            if process.exitcode is None:
                process.terminate()
                process.join(2)
            if process.exitcode is None:
                process.kill()
                process.join(2)
        for connection in self.connections:
            connection.close()


def _send_all(connection, outbox):
    """The sending thread of one worker: sends what is put in `outbox`, in order; None sends
    'stop' and ends."""
    while True:
        message = outbox.get()
        try:
            connection.send(('stop',) if message is None else message)
        except (OSError, ValueError):     # the worker ended: the sentinel tells the rest
            return
        if message is None:
            return


def _worker_main(serve, rank, connection):
    signal.signal(signal.SIGINT, signal.SIG_IGN)     # the driving process handles Ctrl-C
    signal.signal(signal.SIGTERM, signal.SIG_DFL)

    def receive():
        return connection.recv()

    def reply(value):
        connection.send(('ok', value))
    try:
        serve(rank, receive, reply)
    except EOFError:            # the driving process ended
        os._exit(1)
    except BaseException as error:   # noqa: B036 (reported to the driving process)
        text = traceback.format_exc()
        try:
            pickle.dumps(error)
        except Exception:       # an exception that cannot travel: its text does
            error = WorkerError(f'{type(error).__name__}: {error}')
        try:
            connection.send(('error', (error, text)))
        except Exception:
            pass
        os._exit(1)
