"""Minimal hand-written training loops, one module per framework, for bench/worker.py.

Each module has `HandLoop(model, params, lr, device)` whose `epoch(loader)` trains one pass
over `loader` with the framework's own SGD and returns the losses as a NumPy array, once all of
the pass's work is done (its only host sync), and whose `evaluate(X, y)` returns the loss on a
validation batch; `wait(batch)`, which returns once a loader's batch exists; and `version()`.
Each loop is compiled the way d2lmini compiles its Trainer's step, and no more.
"""
