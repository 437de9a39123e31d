"""Several processes (hosts) as one run, through JAX's own runtime (`jax.distributed`).

Every process runs the same command; process 0 is the coordinator and the only one
that writes metrics, pictures, logs and the run's other files (Orbax writes each
checkpoint once, from all of them together). Each process holds its devices' share
of the data set and of each batch (`gan_jax.parallel`).
"""

import os
import sys
import threading

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from jax.experimental import multihost_utils

from gan_jax.errors import UserError


def initialize(
    coordinator_address: str = "",
    num_processes: int = 1,
    process_id: int = 0,
    timeout_s: int = 300,
) -> None:
    """Joins this process to a multi-process run; call before any JAX computation.

    Args:
      coordinator_address: 'host:port' of process 0; with it, `num_processes` and
        `process_id` say how many processes there are and which this one is. Without
        it, a SLURM job step of several tasks gives all three (JAX reads SLURM's
        environment); otherwise the run is this one process and nothing happens.
      timeout_s: how long to wait for the other processes to join. Past it the process
        exits with a one-line error (JAX's own timeout, later, would abort it with a C++
        stack trace). A process that dies during the run is JAX's to report: the others
        abort once its heartbeats have been missing for 100 s.
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
