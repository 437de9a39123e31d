"""Several processes (hosts) as one run, through JAX's own runtime (`jax.distributed`).

Every process runs the same command; process 0 is the coordinator and the only one
that writes metrics, pictures, logs and the run's other files (Orbax writes each
checkpoint once, from all of them together). Each process holds its devices' share
of the data set and of each batch (`gan_jax.parallel`).
"""

import atexit
import contextlib
import os
import sys
import threading
import time
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax._src import distributed as jax_distributed  # its runtime client has no public handle
from jax.experimental import multihost_utils

from gan_jax.errors import UserError, first_line


def initialize(
    coordinator_address: str = "",
    num_processes: int = 1,
    process_id: int = 0,
    timeout_s: int = 300,
    silence_s: int = 30,
) -> None:
    """Joins this process to a multi-process run; call before any JAX computation.

    Args:
      coordinator_address: 'host:port' of process 0; with it, `num_processes` and
        `process_id` say how many processes there are and which this one is. Without
        it, a SLURM job step of several tasks gives all three (JAX reads SLURM's
        environment); otherwise the run is this one process and nothing happens.
      timeout_s: how long to wait for the other processes to join. Past it the process
        exits with a one-line error (JAX's own timeout, later, would abort it with a C++
        stack trace).
      silence_s: how long a process may fall silent during the run (killed, frozen, cut
        off) before the others stop with a one-line error (`_PeerWatch`); JAX's own
        runtime would abort them with pages of C++ logs after 100 s.
    """
    if coordinator_address:
        if num_processes < 1 or not 0 <= process_id < num_processes:
            raise UserError(
                f"--coordinator_address needs --num_processes >= 1 and --process_id in "
                f"[0, num_processes), got {num_processes} and {process_id}"
            )
        where = f"{num_processes} processes at {coordinator_address}"
        arguments = {
            "coordinator_address": coordinator_address,
            "num_processes": num_processes,
            "process_id": process_id,
        }
    elif int(os.environ.get("SLURM_NTASKS", "1")) > 1 and "SLURM_STEP_ID" in os.environ:
        where = f"SLURM's {os.environ['SLURM_NTASKS']} tasks"
        arguments = {}
    else:
        return
    watchdog = threading.Timer(timeout_s, _not_joined, (where, timeout_s))
    watchdog.daemon = True
    watchdog.start()
    try:
        jax.distributed.initialize(**arguments, initialization_timeout=timeout_s + 60)
    finally:
        watchdog.cancel()
    _PeerWatch(silence_s).start()
    if not is_main():  # one process logs for the run
        logging.set_verbosity(logging.WARNING)


def _not_joined(where: str, timeout_s: int) -> None:
    # From the watchdog thread, while the main thread waits inside JAX's C++ runtime.
    print(
        f"error: the run of {where} did not start within {timeout_s} s: a process is "
        "missing (started late, crashed, or given another address or --num_processes)",
        file=sys.stderr,
        flush=True,
    )
    os._exit(1)


class _PeerWatch(threading.Thread):
    """Ends this process with one line when another process of the run falls silent.

    Each process beats once a second in the run's key-value store (on process 0) and
    reads the others' beats. A process that leaves normally says so first (at exit,
    before JAX's own shutdown), so only one that is killed, frozen or cut off falls
    silent; a lost coordinator (process 0) shows as a failing store.
    """

    _BEAT_S = 1.0
    _PREFIX = "gan_jax/beat/"
    _DONE = "gan_jax/done/"

    def __init__(self, silence_s: float):
        super().__init__(name="peer-watch", daemon=True)
        self._silence_s = silence_s
        self._client = jax_distributed.global_state.client
        self._me = jax.process_index()
        self._others = [p for p in range(jax.process_count()) if p != self._me]
        self._leaving = threading.Event()

    def start(self) -> None:
        super().start()
        # atexit runs handlers last-registered first: this goes before JAX's shutdown.
        atexit.register(self._leave)

    def run(self) -> None:
        last_change = {p: (None, time.monotonic()) for p in self._others}
        beat = 0
        while not self._leaving.wait(self._BEAT_S):
            beat += 1
            # The store answers from process 0: frozen, it would hold this call for ever.
            deadline = threading.Timer(
                self._silence_s,
                _stop_run,
                (
                    f"process 0, the run's coordinator, has been silent for {self._silence_s:g} s "
                    "(killed, frozen or cut off)",
                ),
            )
            deadline.daemon = True
            deadline.start()
            try:
                self._client.key_value_set(
                    f"{self._PREFIX}{self._me}", str(beat), allow_overwrite=True
                )
                beats = dict(self._client.key_value_dir_get(self._PREFIX))
                done = dict(self._client.key_value_dir_get(self._DONE))
            except Exception as error:  # any failure of the store ends the run
                if self._leaving.is_set():
                    return
                _stop_run(
                    "lost the run's coordinator (process 0 has stopped or is cut off: "
                    f"{first_line(error)})"
                )
            finally:
                deadline.cancel()
            now = time.monotonic()
            for peer in self._others:
                if f"{self._DONE}{peer}" in done:
                    continue
                value = beats.get(f"{self._PREFIX}{peer}")
                if value != last_change[peer][0]:
                    last_change[peer] = (value, now)
                elif now - last_change[peer][1] > self._silence_s:
                    _stop_run(
                        f"process {peer} of the run has been silent for "
                        f"{self._silence_s:g} s (killed, frozen or cut off)"
                    )

    def _leave(self) -> None:
        self._leaving.set()
        self.join(timeout=self._silence_s)
        # If the store is gone, the others see this process fall silent instead.
        with contextlib.suppress(Exception):
            self._client.key_value_set(f"{self._DONE}{self._me}", "1", allow_overwrite=True)


def _stop_run(cause: str) -> None:
    # From a watching thread, while the main thread may wait in a collective for ever.
    print(
        f"error: {cause}; process {jax.process_index()} stops too. The last checkpoint "
        "stands: start the run again on every process to resume from it",
        file=sys.stderr,
        flush=True,
    )
    os._exit(1)


@contextlib.contextmanager
def peer_failures_as_user_errors() -> Iterator[None]:
    """Turns JAX's error for a step whose peer process is gone (a collective's
    connection closed, a peer unavailable) into a one-line `UserError`; other errors,
    and any error of a one-process run, pass unchanged."""
    try:
        yield
    except jax.errors.JaxRuntimeError as error:
        text = str(error)
        if jax.process_count() == 1 or not any(sign in text for sign in _LOST_PEER_SIGNS):
            raise
        raise UserError(
            f"a step shared with the run's other processes failed ({first_line(error)}): "
            "another process has stopped. The last checkpoint stands: start the run again "
            "on every process to resume from it"
        ) from error


_LOST_PEER_SIGNS = ("Connection closed", "Connection reset", "UNAVAILABLE", "heartbeat")


def is_main() -> bool:
    """Whether this process writes the run's files (process 0; the only one alone)."""
    return jax.process_index() == 0


def sync(name: str) -> None:
    """Waits until every process has got here (at once when there is one process)."""
    if jax.process_count() > 1:
        multihost_utils.sync_global_devices(name)


def gather(value: int) -> list[int]:
    """`value` of every process, in process order (all of them must call this)."""
    if jax.process_count() == 1:
        return [value]
    return np.asarray(multihost_utils.process_allgather(np.int32(value))).tolist()


def local_copy(tree: object) -> object:
    """`tree`, replicated over the devices of several processes, as plain arrays on this
    process's default device: code that only the main process runs (pictures, reports)
    computes on these without the others. Unchanged in a single-process run."""
    if jax.process_count() == 1:
        return tree
    return uncommitted_copy(tree)


def uncommitted_copy(tree: object) -> object:
    """Each array of `tree` as a freshly created one is: on this process's default
    device, uncommitted, copied from this process's replica (an array spread over
    several processes must be replicated)."""
    return jax.tree.map(_local, tree)


def _local(x: object) -> object:
    if not isinstance(x, jax.Array):
        return x
    if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        impl = jax.random.key_impl(x)
        return jax.random.wrap_key_data(_local(jax.random.key_data(x)), impl=impl)
    if not x.is_fully_replicated:
        raise ValueError(f"a {x.sharding} array has no full copy on each process")
    return jnp.asarray(np.asarray(x.addressable_data(0)))
