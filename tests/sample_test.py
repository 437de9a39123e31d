"""The sampling command on a trained checkpoint, run as a user runs it."""

import dataclasses
import subprocess
import sys

import jax
import numpy as np
import pytest
from cli_runs import REPO, assert_one_line_error
from PIL import Image
from testing_configs import camel_config, gaussian_config

from gan_jax.checkpoint import restore_gan
from gan_jax.config import ModelConfig
from gan_jax.data import quickdraw
from gan_jax.sample import MAX_GRID_IMAGES, MAX_SCATTER_POINTS
from gan_jax.sampling import generated_batches
from gan_jax.state import GAN, GANState, for_sampling
from gan_jax.train import train_and_evaluate


def run_sample(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "gan_jax.sample", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def _generated(gan: GAN, state: GANState, num_samples: int, key: jax.Array) -> np.ndarray:
    """G's outputs for latents drawn with `key`, as scoring generates them, in one array."""
    return np.concatenate([x for _, x in generated_batches(gan, state, num_samples, key)])


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("gaussian"))
    train_and_evaluate(gaussian_config(num_points=400, num_epochs=3), workdir)
    return workdir


@pytest.fixture(scope="module")
def image_workdir(tmp_path_factory):
    """A one-step run of 28x28 images; MLPs instead of the camel's convolutions (fast)."""
    root = tmp_path_factory.mktemp("images")
    bitmaps = np.zeros((16, 28, 28), np.uint8)
    bitmaps[:, 10, 4:24] = 255
    np.save(root / "camel.npy", bitmaps.reshape(16, 784))
    quickdraw.prepare(str(root / "tfds"), manual_path=str(root / "camel.npy"))
    mlp = {"hidden_sizes": [], "output_shape": [28, 28, 1], "output_activation": "tanh"}
    config = camel_config(
        generator=ModelConfig("mlp", mlp), discriminator=ModelConfig("mlp", {"hidden_sizes": [4]})
    )
    config = dataclasses.replace(
        config, data=dataclasses.replace(config.data, data_dir=str(root / "tfds"))
    )
    workdir = str(root / "run")
    train_and_evaluate(config, workdir)
    return workdir


@pytest.mark.slow
def test_sample_writes_scatter_and_points(trained_workdir, tmp_path):
    out = str(tmp_path / "points.png")
    result = run_sample(f"--workdir={trained_workdir}", "--num_samples=300", f"--out={out}")
    assert result.returncode == 0, result.stderr
    assert "step 150" in result.stdout
    points = np.load(str(tmp_path / "points.npy"))
    assert points.shape == (300, 2)
    assert np.all(np.isfinite(points)) and points.std() > 0
    assert Image.open(out).size[0] > 100


@pytest.mark.slow
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


@pytest.mark.slow
def test_sample_errors_are_one_line(tmp_path):
    result = run_sample(f"--workdir={tmp_path}", "--out=x.png")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith("error: no checkpoints directory")
    assert "Traceback" not in result.stderr
    result = run_sample("--num_samples=0", f"--workdir={tmp_path}")
    assert result.returncode == 1 and "--num_samples must be positive" in result.stderr


@pytest.mark.slow
def test_millions_of_points_are_written_in_batches(trained_workdir, tmp_path):
    # 2,000,000 points in 400 generator calls, straight into the .npy; the plot shows some.
    out = str(tmp_path / "many.png")
    result = run_sample(f"--workdir={trained_workdir}", "--num_samples=2000000", f"--out={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"plots {MAX_SCATTER_POINTS} of them (one in 200)" in result.stdout
    points = np.load(str(tmp_path / "many.npy"), mmap_mode="r")
    assert points.shape == (2_000_000, 2) and points.dtype == np.float32
    assert np.all(np.isfinite(points[-5000:])) and points[-5000:].std() > 0
    # The first points are those of a small request (the latents' first chunk is one draw).
    gan, state, _ = restore_gan(trained_workdir)
    np.testing.assert_allclose(
        points[:300], _generated(gan, state, 300, jax.random.key(0)), rtol=1e-6
    )
    assert Image.open(out).size[0] > 100


@pytest.mark.slow
def test_image_grid(image_workdir, tmp_path):
    out = str(tmp_path / "grid.png")
    result = run_sample(f"--workdir={image_workdir}", "--num_samples=10", f"--out={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "wrote 10 samples of step 1" in result.stdout
    width, height = Image.open(out).size
    assert width > height > 0  # 4 columns, 3 rows


@pytest.mark.parametrize("suffix", [".npy", ".npz"])
@pytest.mark.slow
def test_arrays_round_trip_any_count(image_workdir, tmp_path, suffix):
    # More images than a grid holds, in several generator calls.
    count = MAX_GRID_IMAGES + 1000
    out = str(tmp_path / f"images{suffix}")
    result = run_sample(f"--workdir={image_workdir}", f"--num_samples={count}", f"--out={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    saved = np.load(out)
    samples = saved["samples"] if suffix == ".npz" else saved
    if suffix == ".npz":
        assert list(saved) == ["samples"]  # an unconditional GAN has no labels
    assert samples.shape == (count, 28, 28, 1) and samples.dtype == np.float32
    gan, state, _ = restore_gan(image_workdir)
    np.testing.assert_allclose(
        samples, _generated(gan, state, count, jax.random.key(0)), rtol=1e-6, atol=1e-7
    )
    assert list(tmp_path.iterdir()) == [tmp_path / f"images{suffix}"]  # no leftovers


@pytest.mark.slow
def test_too_large_grid_is_one_line_before_generating(image_workdir, tmp_path):
    out = tmp_path / "grid.png"
    count = MAX_GRID_IMAGES + 1
    result = run_sample(f"--workdir={image_workdir}", f"--num_samples={count}", f"--out={out}")
    line = assert_one_line_error(result, f"error: a grid of {count} images is too large")
    assert str(MAX_GRID_IMAGES) in line and "--num_samples" in line
    assert not out.exists()


@pytest.mark.slow
def test_unwritable_out_is_one_line(trained_workdir, tmp_path):
    regular = tmp_path / "file.txt"
    regular.write_text("")
    # Paths that fail even for root (whom permission bits do not stop).
    for out, reason in [
        (regular / "points.png", "is a file, not a directory"),
        (tmp_path, "it is a directory"),
    ]:
        result = run_sample(f"--workdir={trained_workdir}", f"--out={out}")
        assert reason in assert_one_line_error(result, f"error: cannot write {out}")


@pytest.mark.slow
def test_a_run_with_a_g_average_samples_from_it_unless_asked_for_the_raw_g(tmp_path):
    workdir = str(tmp_path / "run")
    train_and_evaluate(gaussian_config(g_ema_decay=0.9), workdir)
    gan, state, _ = restore_gan(workdir)
    drawn = {}
    for flag in ("", "--raw_generator"):
        out = str(tmp_path / f"points{flag}.png")
        flags = [f"--workdir={workdir}", "--num_samples=50", f"--out={out}"] + [flag] * bool(flag)
        result = run_sample(*flags)
        assert result.returncode == 0, result.stderr
        drawn[flag] = np.load(str(tmp_path / f"points{flag}.npy"))
    key = jax.random.key(0)
    np.testing.assert_allclose(drawn[""], _generated(gan, for_sampling(state), 50, key), rtol=1e-6)
    np.testing.assert_allclose(drawn["--raw_generator"], _generated(gan, state, 50, key), rtol=1e-6)
    assert not np.allclose(drawn[""], drawn["--raw_generator"])
