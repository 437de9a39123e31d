"""The two convolutional experiments (D2L's Pokemon DCGAN, Foster's camel GAN), run as a
user runs them on tiny generated data sets: outputs, resume and the sampling command."""

import importlib
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
from cli_runs import REPO, assert_one_line_error
from cli_runs import run as run_module
from generated_images import prepare_sprites, sprite_png
from PIL import Image
from states import assert_states_equal

from gan_jax import evaluation
from gan_jax.checkpoint import restore_gan
from gan_jax.data import image_folder, quickdraw
from gan_jax.data.image_files import FitOptions
from gan_jax.metrics import inception
from gan_jax.train import train_and_evaluate
from gan_jax.workdir import (
    checkpoints_dir,
    loss_plot,
    memorisation_plot,
    metrics_file,
    sample_grid,
    tensorboard_dir,
)

# experiment: (settings of a few-step run, generated image shape)
CASES = {
    # Narrow networks (n_G, n_D; the camel's widths) keep the conv nets fast on CPU.
    "dcgan_pokemon": ({"batch_size": 8, "n_G": 8, "n_D": 8}, (64, 64, 3)),
    "quickdraw_camel": (
        {
            "batch_size": 8,
            "sample_every_epochs": 2,
            "g_widths": (8, 8, 4, 4),
            "d_widths": (4, 4, 8, 8),
        },
        (28, 28, 1),
    ),
}
EPOCHS = {"dcgan_pokemon": 1, "quickdraw_camel": 4}  # 4 steps each (32 sprites / 8)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> str:
    """A TFDS data dir with 32 generated sprites (D2L's zip layout) and 64 camel bitmaps."""
    root = tmp_path_factory.mktemp("image_data")
    data_dir = str(root / "tfds")
    prepare_sprites(root, data_dir)
    rng = np.random.default_rng(0)
    bitmaps = np.zeros((64, 28, 28), np.uint8)
    for bitmap in bitmaps:  # a horizontal and a vertical stroke each
        bitmap[rng.integers(4, 24), 4:24] = 255
        bitmap[4:24, rng.integers(4, 24)] = 255
    np.save(root / "camel.npy", bitmaps.reshape(64, 784))
    quickdraw.prepare(data_dir, manual_path=str(root / "camel.npy"))
    return data_dir


def run_experiment(name: str, workdir: str, data_dir: str, num_epochs: int):
    flags = [
        f"--{setting}={','.join(map(str, value)) if isinstance(value, tuple) else value}"
        for setting, value in CASES[name][0].items()
    ]
    return subprocess.run(
        [
            sys.executable,
            os.path.join(REPO, "experiments", f"{name}.py"),
            f"--workdir={workdir}",
            f"--data_dir={data_dir}",
            f"--num_epochs={num_epochs}",
            "--checkpoint_every_steps=2",
            *flags,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=900,
    )


def read_records(workdir) -> list[dict]:
    with open(metrics_file(workdir)) as f:
        return [json.loads(line) for line in f]


@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.slow
def test_few_steps_write_outputs_and_resume_exactly(name, data_dir, tmp_path, monkeypatch, caplog):
    epochs = EPOCHS[name]
    resumed = str(tmp_path / "resumed")
    for num_epochs in (epochs, 2 * epochs):
        result = run_experiment(name, resumed, data_dir, num_epochs)
        assert result.returncode == 0, result.stderr[-3000:]
    assert "resumed from step 4" in result.stderr
    # The same run unbroken, trained in-process from the experiment's own config.
    unbroken = str(tmp_path / "unbroken")
    config = importlib.import_module(f"experiments.{name}").config(
        **CASES[name][0], data_dir=data_dir, num_epochs=2 * epochs, checkpoint_every_steps=2
    )
    train_and_evaluate(config, unbroken)

    records = read_records(unbroken)
    assert [r["step"] for r in records] == [4 * (i + 1) // epochs for i in range(2 * epochs)]
    assert all(np.isfinite([r["loss_d"], r["loss_g"], r["d_real"]]).all() for r in records)
    assert read_records(resumed) == [
        {**r, "examples_per_sec": mine["examples_per_sec"]}
        for r, mine in zip(records, read_records(resumed), strict=True)
    ]
    _, resumed_state, step = restore_gan(resumed)
    _, unbroken_state, _ = restore_gan(unbroken)
    assert step == 8
    assert_states_equal(resumed_state, unbroken_state)

    last_epoch = 2 * epochs
    grid = Image.open(sample_grid(resumed, last_epoch))
    assert grid.size[0] > 8 * CASES[name][1][1]  # an 8x8 grid of samples
    assert os.path.exists(loss_plot(resumed))
    assert os.listdir(tensorboard_dir(resumed))
    if name == "quickdraw_camel":
        assert "memorisation check: mean L1 to the nearest training image" in result.stdout
        assert os.path.exists(memorisation_plot(resumed))
    else:  # a colour grid from `sample` (tests/sample_test.py covers grayscale and points)
        out = str(tmp_path / "samples.png")
        sampled = subprocess.run(
            [sys.executable, "-m", "gan_jax.sample", f"--workdir={resumed}", f"--out={out}"],
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert sampled.returncode == 0, sampled.stderr[-3000:]
        image = np.asarray(Image.open(out))
        assert image.ndim == 3 and image.shape[-1] == 3
        assert image.shape[0] >= 8 * 64 and image.shape[1] >= 8 * 64
        _assert_scored_in_inceptions_features(resumed, data_dir, tmp_path, monkeypatch, caplog)


def _assert_scored_in_inceptions_features(
    workdir: str, data_dir: str, tmp_path, monkeypatch, caplog
) -> None:
    """An Inception weights file (seeded random weights, as a user's converted .npz would
    be given) adds every score in Inception's features.

    Scored in-process, 16 images a call: the command pads each pass to 50 images, and on
    CPU each 299x299 Inception pass costs about 0.15 s an image, padding included. The
    command's own flag is checked below, on a file that is not there.
    """
    weights = str(tmp_path / "inception.npz")
    np.savez(weights, **inception.random_state_dict(0))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(evaluation, "_INCEPTION_BATCH", 16)
    gan, state, _ = restore_gan(workdir)
    evaluator = evaluation.Evaluator(
        gan.config,
        num_samples=16,
        data_dir=data_dir,
        inception_weights=weights,
        memorisation_queries=4,
    )
    with caplog.at_level(logging.WARNING):
        scores, _ = evaluator.scores_and_pairs(gan, state)
    for name in ("fid", "kid", "precision", "recall", "density", "coverage", "is"):
        assert np.isfinite(scores[f"inception_{name}"]), name
    assert 1.0 <= scores["inception_is"] <= 1008
    # 32 labelled sprites are too few for a classifier of their own: said in one line.
    assert "fid" not in scores and "fewer than the 1000 a classifier" in caplog.text
    # A weights file named but not there is the user's mistake, not a score to skip.
    missing = subprocess.run(
        [
            sys.executable,
            "-m",
            "gan_jax.evaluate",
            f"--workdir={workdir}",
            f"--inception_weights={weights}x",
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert_one_line_error(missing, "error: no Inception weights file")


def test_missing_data_names_the_prepare_command(tmp_path):
    result = run_experiment("quickdraw_camel", str(tmp_path / "w"), str(tmp_path), 1)
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error:") and "python -m gan_jax.data.prepare quickdraw_camel" in last


@pytest.fixture(scope="module")
def own_images(tmp_path_factory) -> str:
    """A data dir holding 'blobs': 40 of the user's own RGB PNGs, prepared at 28x28x1."""
    root = tmp_path_factory.mktemp("own")
    rng = np.random.default_rng(0)
    folder = root / "pictures"
    (folder / "nested").mkdir(parents=True)
    for i in range(40):  # images at the top: one unlabelled set, not class folders
        (folder / ("nested" if i % 2 else "") / f"{i}.png").write_bytes(sprite_png(rng))
    data_dir = str(root / "tfds")
    image_folder.prepare(
        data_dir,
        path=str(root / "pictures"),
        name="blobs",
        options=FitOptions(image_size=28, channels=1),
        num_workers=1,
    )
    return data_dir


@pytest.mark.slow
def test_an_experiment_trains_on_the_users_own_images(own_images, tmp_path):
    workdir = str(tmp_path / "run")
    result = run_module(
        os.path.join("experiments", "mlp_gan_mnist.py"),
        f"--workdir={workdir}",
        f"--data_dir={own_images}",
        "--dataset=blobs",
        "--batch_size=8",
        "--num_epochs=2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    records = read_records(workdir)
    assert [r["step"] for r in records] == [5, 10]  # 40 images, batch 8
    assert os.path.exists(sample_grid(workdir, 2))


@pytest.mark.parametrize(
    "experiment, message",
    [
        ("dcgan_pokemon", "this experiment makes 64x64x3 images but 'blobs' holds 28x28x1"),
        ("cgan_mnist", "a conditional GAN needs labels; 'blobs' has none"),
    ],
)
@pytest.mark.slow
def test_a_set_that_does_not_fit_is_one_line(own_images, tmp_path, experiment, message):
    result = run_module(
        os.path.join("experiments", f"{experiment}.py"),
        f"--workdir={tmp_path / 'run'}",
        f"--data_dir={own_images}",
        "--dataset=blobs",
        "--batch_size=8",
    )
    line = assert_one_line_error(result, f"error: {message}")
    if experiment == "dcgan_pokemon":
        assert "image_folder --path=DIR --name=NAME --image_size=64 --channels=3" in line
    assert not os.path.exists(checkpoints_dir(tmp_path / "run"))
