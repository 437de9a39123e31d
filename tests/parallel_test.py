"""Data parallelism over local devices: a run on 4 (fake CPU) devices equals the run on
one, a sweep splits its members over them, and device counts that cannot work are
one-line errors."""

import json
import os
import subprocess
import sys

import jax
import pytest
from cli_runs import MLP_MNIST, REPO, assert_one_line_error
from generated_images import prepare_sprites

from gan_jax import parallel
from gan_jax.errors import UserError

FOUR_DEVICES = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4"}


@pytest.fixture(scope="module")
def sprites_dir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("sprites")
    prepare_sprites(root, str(root / "tfds"), count=8)
    return str(root / "tfds")


def test_four_devices_train_as_one_does(mnist_data_dir, sprites_dir):
    script = os.path.join(REPO, "tests", "data_parallel_runs.py")
    result = subprocess.run(
        [sys.executable, script, mnist_data_dir, sprites_dir],
        cwd=REPO,
        env={**FOUR_DEVICES, "PYTHONPATH": REPO},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["devices"] == 4
    for name in ("mlp_gan_mnist_deep", "cgan_mnist", "dcgan_pokemon"):
        run = report[name]
        assert run["mesh_devices"] == 4, name
        # Same batches, same random draws, BatchNorm statistics over the global batch:
        # a step's losses and D's outputs agree to float32 rounding (per-device
        # statistics would move them by percents), and so do the running statistics.
        assert run["metrics"] < 1e-5, (name, run)
        assert run["batch_stats"] < 1e-5, (name, run)
        # Adam's first update is about +-lr per parameter whatever the gradient's size,
        # so rounding in a near-zero gradient can move a parameter by up to 2 lr (the
        # DCGAN's lr is 0.005); parameters agree less closely than losses.
        assert run["state"] < 1e-3, (name, run)
        # Its checkpoint restores on one device, to the very bits it trained.
        assert run["restored"] == 0 and run["restored_devices"] == 1, (name, run)
    # Members split over the devices, 1 each, train 3 steps as they do together on one.
    assert report["sweep"]["difference"] < 1e-5, report["sweep"]


def test_a_batch_that_does_not_split_over_the_devices_is_one_line(mnist_data_dir, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            MLP_MNIST,
            f"--workdir={tmp_path}",
            f"--data_dir={mnist_data_dir}",
            "--num_devices=3",
        ],
        cwd=REPO,
        env=FOUR_DEVICES,
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = assert_one_line_error(result, "error:")
    assert "batch_size 100 does not split over num_devices=3" in line
    assert not os.path.exists(os.path.join(tmp_path, "checkpoints"))


def test_device_counts():
    assert jax.local_device_count() == 1  # the test process has the one CPU device
    assert parallel.device_count(0, 100, "batch_size 100") == 1
    assert parallel.device_count(1, 7, "batch_size 7") == 1
    with pytest.raises(UserError, match="num_devices=2, but this process has 1 CPU device"):
        parallel.device_count(2, 100, "batch_size 100")
    with pytest.raises(UserError, match="must be 0"):
        parallel.device_count(-1, 100, "batch_size 100")
    assert parallel.plan(0, 100, "batch_size 100").mesh is None
