"""The sampling command on a trained checkpoint, run as a user runs it."""

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from testing_configs import gaussian_config

from gan_jax.train import train_and_evaluate

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_sample(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gan_jax.sample", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("gaussian"))
    train_and_evaluate(gaussian_config(num_points=400, num_epochs=3), workdir)
    return workdir


def test_sample_writes_scatter_and_points(trained_workdir, tmp_path):
    out = str(tmp_path / "points.png")
    result = run_sample(f"--workdir={trained_workdir}", "--num_samples=300", f"--out={out}")
    assert result.returncode == 0, result.stderr
    assert "step 150" in result.stdout
    points = np.load(str(tmp_path / "points.npy"))
    assert points.shape == (300, 2)
    assert np.all(np.isfinite(points)) and points.std() > 0
    assert Image.open(out).size[0] > 100


def test_sample_is_deterministic_given_seed(trained_workdir, tmp_path):
    for name in ("a", "b"):
        out = str(tmp_path / f"{name}.png")
        assert (
            run_sample(
                f"--workdir={trained_workdir}", "--num_samples=10", f"--out={out}", "--seed=5"
            ).returncode
            == 0
        )
    np.testing.assert_array_equal(np.load(tmp_path / "a.npy"), np.load(tmp_path / "b.npy"))


def test_sample_errors_are_one_line(tmp_path):
    result = run_sample(f"--workdir={tmp_path}", "--out=x.png")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: no checkpoints directory")
    assert "Traceback" not in result.stderr
    result = run_sample("--num_samples=0", f"--workdir={tmp_path}")
    assert result.returncode == 1 and "--num_samples must be positive" in result.stderr
