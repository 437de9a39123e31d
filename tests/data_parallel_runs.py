"""Trains small runs on one device and on every device of this process; prints JSON.

Run by tests/parallel_test.py in a subprocess with fake CPU devices
(`XLA_FLAGS=--xla_force_host_platform_device_count=4`): the device count is fixed when
JAX starts, so the one-device and the many-device runs share a process that has many.

Usage: python tests/data_parallel_runs.py MNIST_DATA_DIR SPRITES_DATA_DIR
"""

import json
import sys
import tempfile

import jax
import numpy as np

from experiments import dcgan_pokemon, gaussian_2d, mlp_gan_mnist_deep
from gan_jax.checkpoint import restore_gan
from gan_jax.config import replace
from gan_jax.train import train_and_evaluate, train_group
from gan_jax.workdir import metrics_file


def largest_difference(a: object, b: object) -> float:
    """The largest absolute difference between two pytrees' floating-point leaves; inf
    if their other leaves (step counters, PRNG keys) differ."""
    a, b = (jax.tree.map(_plain, t) for t in (a, b))
    largest = 0.0
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        x, y = np.asarray(x), np.asarray(y)
        if not np.issubdtype(x.dtype, np.floating):
            if not np.array_equal(x, y):
                return float("inf")
            continue
        largest = max(largest, float(np.max(np.abs(x.astype(np.float64) - y), initial=0.0)))
    return largest


def step_metrics(workdir: str) -> list[dict[str, float]]:
    """metrics.jsonl's records: one per step, as each epoch below is one batch."""
    with open(metrics_file(workdir)) as f:
        records = [json.loads(line) for line in f]
    return [{k: v for k, v in r.items() if k not in ("examples_per_sec", "step")} for r in records]


def relative_difference(a: list[dict[str, float]], b: list[dict[str, float]]) -> float:
    return max(
        abs(x[k] - y[k]) / max(abs(x[k]), 1e-3) for x, y in zip(a, b, strict=True) for k in x
    )


def _plain(x: object) -> object:
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(x)
    return x


def main(mnist_dir: str, sprites_dir: str) -> None:
    devices = jax.device_count()
    # One step each (an epoch of one batch): its losses, D's outputs and the BatchNorm
    # statistics it records all come from the initial parameters, which both runs share,
    # so they test the split step directly. Later steps start from parameters that Adam
    # has already moved apart by float rounding (see tests/parallel_test.py).
    runs = {
        "mlp_gan_mnist_deep": mlp_gan_mnist_deep.config(
            data_dir=mnist_dir, num_examples=100, batch_size=100, num_epochs=1
        ),
        "dcgan_pokemon": dcgan_pokemon.config(
            data_dir=sprites_dir, n_G=8, n_D=8, num_examples=8, batch_size=8, num_epochs=1
        ),
    }
    report = {"devices": devices}
    for name, config in runs.items():
        states, metrics = {}, {}
        for count in (1, devices):
            workdir = tempfile.mkdtemp()
            states[count] = train_and_evaluate(replace(config, num_devices=count), workdir)
            metrics[count] = step_metrics(workdir)
        _, restored, _ = restore_gan(workdir)  # the many-device run's, on one device
        mesh_devices = len(jax.tree.leaves(states[devices].generator.params)[0].devices())
        one, many = jax.device_get((states[1], states[devices]))
        report[name] = {
            "metrics": relative_difference(metrics[1], metrics[devices]),
            "batch_stats": largest_difference(
                (one.generator.batch_stats, one.discriminator.batch_stats),
                (many.generator.batch_stats, many.discriminator.batch_stats),
            ),
            "state": largest_difference(one, many),
            "restored": largest_difference(restored, many),
            "restored_devices": len(jax.tree.leaves(restored.generator.params)[0].devices()),
            "mesh_devices": mesh_devices,
        }
    # Members split over the devices: the small Gaussian GAN, as which members go where
    # does not depend on the networks (and it compiles in a fraction of the time).
    sweep = [gaussian_2d.config(num_points=80, num_epochs=2, seed=s) for s in range(devices)]
    members = {}
    for count in (1, devices):
        configs = [replace(c, num_devices=count) for c in sweep]
        members[count] = train_group(configs, [tempfile.mkdtemp() for _ in configs])
    report["sweep"] = {
        "difference": max(
            largest_difference(a, b) for a, b in zip(members[1], members[devices], strict=True)
        )
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(*sys.argv[1:])
