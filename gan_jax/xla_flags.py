"""XLA settings a process takes before JAX starts its backend.

Several CPU devices in one process (`--xla_force_host_platform_device_count`, or
`jax_num_cpu_devices`) run as threads that meet at every collective. XLA:CPU aborts the
whole process (SIGABRT, no Python error) when one of them arrives 20 s + 40 s after the
first: four device threads on two busy cores can fall that far behind, as one of our CI
runs did. A late thread is only slow, never lost (a lost process is `distributed`'s peer
watch's business), so our processes wait much longer before calling it stuck.
"""

import os

# XLA:CPU warns after the first and aborts after the first plus the second (checked on
# jaxlib 0.10.2: warn 1 s, terminate 2 s aborted a 6 s imbalance; warn 1 s, terminate
# 30 s let it finish).
PATIENT_CPU_COLLECTIVES = (
    "--xla_cpu_collective_call_warn_stuck_timeout_seconds=300",
    "--xla_cpu_collective_call_terminate_timeout_seconds=3600",
)


def with_patient_collectives(xla_flags: str) -> str:
    """`xla_flags` (an `XLA_FLAGS` value) plus `PATIENT_CPU_COLLECTIVES`, except those
    the value already sets: a user's own setting wins."""
    flags = xla_flags.split()
    for flag in PATIENT_CPU_COLLECTIVES:
        name = flag.split("=", 1)[0]
        if not any(f == name or f.startswith(name + "=") for f in flags):
            flags.append(flag)
    return " ".join(flags)


def use_patient_collectives() -> None:
    """Sets `XLA_FLAGS` for this process and its children; it takes effect only if JAX
    has not started its backend yet (commands call it on their first import)."""
    os.environ["XLA_FLAGS"] = with_patient_collectives(os.environ.get("XLA_FLAGS", ""))
