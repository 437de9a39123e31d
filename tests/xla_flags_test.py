"""Tests for gan_jax.xla_flags: device threads that arrive late at a collective wait."""

import os
import subprocess
import sys

import pytest
from cli_runs import REPO

from gan_jax.xla_flags import PATIENT_CPU_COLLECTIVES, with_patient_collectives


def test_patience_is_added_once_and_a_users_own_setting_wins():
    flags = with_patient_collectives("--xla_force_host_platform_device_count=4")
    assert flags.split() == ["--xla_force_host_platform_device_count=4", *PATIENT_CPU_COLLECTIVES]
    assert with_patient_collectives(flags) == flags
    own = "--xla_cpu_collective_call_terminate_timeout_seconds=5"
    assert own in with_patient_collectives(own).split()
    assert PATIENT_CPU_COLLECTIVES[1] not in with_patient_collectives(own).split()


# Device 0 computes for seconds while devices 1-3 wait for it at an all-reduce.
_IMBALANCED_ALL_REDUCE = """
import jax, jax.numpy as jnp
from jax.sharding import NamedSharding, PartitionSpec as P
import gan_jax.command  # the commands' first import: sets XLA_FLAGS before JAX starts
mesh = jax.make_mesh((4,), ("d",))
x = jax.device_put(jnp.ones((4, 1024, 1024)), NamedSharding(mesh, P("d")))
def per_device(x):
    slow = lambda y: jax.lax.fori_loop(0, 200, lambda i, y: jnp.tanh(y @ y / 1024.0), y)
    y = jax.lax.cond(jax.lax.axis_index("d") == 0, slow, lambda y: y, x[0])
    return jax.lax.psum(y, "d")
run = jax.jit(jax.shard_map(per_device, mesh=mesh, in_specs=P("d"), out_specs=P()))
print("sum", float(run(x).sum()))
"""


@pytest.mark.slow
def test_a_device_thread_far_behind_at_a_collective_is_waited_for():
    # Scaled down: XLA's own stuck warning after 1 s would abort 1 s later; the commands'
    # patience (set on import, before JAX starts) lets the slow thread finish.
    env = {
        **os.environ,
        "PYTHONPATH": REPO,
        "XLA_FLAGS": "--xla_force_host_platform_device_count=4 "
        "--xla_cpu_collective_call_warn_stuck_timeout_seconds=1",
    }
    impatient = {
        **env,
        "XLA_FLAGS": env["XLA_FLAGS"] + " --xla_cpu_collective_call_terminate_timeout_seconds=1",
    }
    code = _IMBALANCED_ALL_REDUCE
    aborted = subprocess.run(
        [sys.executable, "-c", code], env=impatient, capture_output=True, text=True, timeout=600
    )
    finished = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert aborted.returncode != 0, "the slow thread was not slow enough to test anything"
    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.stdout.startswith("sum ")
