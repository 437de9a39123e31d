"""SIGINT and SIGTERM: stop a training run between steps, never in the middle of one.

Python's default SIGINT handling raises KeyboardInterrupt wherever the main thread
happens to be (inside a JAX dispatch, an Orbax save, a module import), and SIGTERM,
what SLURM, Kubernetes and preemptible VMs send, kills the process outright. Both
lose work or leave half-written state. Here both signals are handled alike:

- While a trainer is inside `deferred()`, a signal only records a stop request;
  the training loop calls `raise_if_requested()` at safe points (between dispatches,
  between host-loop steps) and then saves before exiting. Further signals while it
  stops are ignored (with a note), so a second Ctrl-C cannot cut a save short.
- Elsewhere (start-up before training, the sampling and evaluation commands) there
  is nothing to save: the process says so in one line and exits at once with status
  128 + signal number, skipping interpreter teardown, which can crash while XLA or
  Orbax threads are still running.
"""

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

from gan_jax.errors import Interrupted

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_lock = threading.Lock()
_deferring = False
_requested: int | None = None


def signal_name(signum: int) -> str:
    return signal.Signals(signum).name


def _handler(signum: int, frame: object) -> None:
    del frame
    global _requested
    with _lock:
        if not _deferring:
            sys.stderr.write(f"\ninterrupted by {signal_name(signum)}: exiting, nothing to save\n")
            sys.stderr.flush()
            os._exit(128 + signum)
        if _requested is None:
            _requested = signum
            note = "stopping after the current step and saving a checkpoint"
        else:
            note = "still stopping and saving; please wait (SIGKILL never corrupts a checkpoint)"
    sys.stderr.write(f"\n{signal_name(signum)} received: {note}\n")
    sys.stderr.flush()


def install() -> None:
    """Routes SIGINT and SIGTERM to this module (main thread only, as Python requires)."""
    if threading.current_thread() is not threading.main_thread():
        return
    for signum in HANDLED_SIGNALS:
        signal.signal(signum, _handler)


def requested() -> int | None:
    """The signal number of a pending stop request, or None."""
    return _requested


def raise_if_requested(when: str) -> None:
    """Raises `Interrupted` if a stop was requested; `when` completes its message."""
    if _requested is not None:
        raise Interrupted(_requested, f"interrupted by {signal_name(_requested)} {when}")


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Within the block, signals become stop requests instead of ending the process.

    Installs the handlers if nobody has (a trainer called from Python, not a command).
    On the main thread only; elsewhere the block runs with the signals as they are.
    """
    global _deferring, _requested
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {s: signal.getsignal(s) for s in HANDLED_SIGNALS}
    install()
    with _lock:
        _deferring, _requested = True, None
    try:
        yield
    finally:
        with _lock:
            _deferring, _requested = False, None
        for signum, handler in previous.items():
            if handler is not None:
                signal.signal(signum, handler)
