"""Damaged checkpoints on disk: detected, skipped, re-saved.

Each case damages the newest of three steps of a short Gaussian run the way disks
and crashes do (truncation, deletion, random bytes, three flipped bytes, missing or
corrupt config or manifest), then checks that readers fall back to the
newest good step with one warning line, and that training resumes from it, moves
the damaged step aside, saves it anew, and ends bit for bit where an undamaged
run ends.
"""

import glob
import os
import shutil

import numpy as np
import pytest
from cli_runs import run
from states import assert_states_equal
from testing_configs import gaussian_config

from gan_jax.checkpoint import Checkpoints, DamagedCheckpointError, restore_gan
from gan_jax.train import train_and_evaluate
from gan_jax.workdir import checkpoint_step_dir, checkpoints_dir, damaged_checkpoints_dir

CONFIG = dict(num_epochs=3, checkpoint_every_steps=10, keep_checkpoints=3)  # steps 10, 20, 30


def data_files(step_dir):
    """The state's OCDBT data files (B-tree nodes and array chunks; tiny states are inline)."""
    return sorted(glob.glob(os.path.join(step_dir, "state", "**", "d", "*"), recursive=True))


def truncate(step_dir):
    for path in data_files(step_dir):
        with open(path, "r+b") as f:
            f.truncate(os.path.getsize(path) // 2)


def delete_data(step_dir):
    for path in data_files(step_dir):
        os.remove(path)


def random_bytes(step_dir):
    for i, path in enumerate(data_files(step_dir)):
        with open(path, "wb") as f:
            f.write(np.random.default_rng(i).bytes(os.path.getsize(path)))


def flip_three_bytes(step_dir):
    # In the largest chunk of each data file: the bytes of the arrays themselves.
    for path in data_files(step_dir):
        with open(path, "r+b") as f:
            data = bytearray(f.read())
            for offset in (len(data) // 4, len(data) // 2, 3 * len(data) // 4):
                data[offset] ^= 0x5A
            f.seek(0)
            f.write(data)


def delete_metadata(step_dir):
    os.remove(os.path.join(step_dir, "state", "_METADATA"))


def delete_config(step_dir):
    shutil.rmtree(os.path.join(step_dir, "config"))


def corrupt_config(step_dir):
    with open(os.path.join(step_dir, "config", "metadata"), "r+b") as f:
        f.seek(20)
        f.write(b"#garbage#")


def edit_config_value(step_dir):
    # Still valid JSON, but not the config that was saved.
    path = os.path.join(step_dir, "config", "metadata")
    with open(path) as f:
        text = f.read()
    with open(path, "w") as f:
        f.write(text.replace('"seed": 0', '"seed": 7'))


def delete_manifest(step_dir):
    shutil.rmtree(os.path.join(step_dir, "manifest"))


DAMAGE = [
    truncate,
    delete_data,
    random_bytes,
    flip_three_bytes,
    delete_config,
    corrupt_config,
    edit_config_value,
    delete_manifest,
]


@pytest.fixture(scope="module")
def unbroken(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("unbroken"))
    train_and_evaluate(gaussian_config(**CONFIG), workdir)
    return workdir


@pytest.mark.parametrize("damage", DAMAGE, ids=lambda f: f.__name__)
@pytest.mark.slow
def test_damaged_newest_step_is_skipped_then_resaved(tmp_path, unbroken, damage):
    workdir = str(tmp_path / "run")
    shutil.copytree(unbroken, workdir)
    damage(checkpoint_step_dir(workdir, 30))

    # A reader falls back to step 20 and leaves the damaged step where it is.
    with Checkpoints(checkpoints_dir(workdir), read_only=True) as checkpoints:
        with pytest.raises(DamagedCheckpointError, match="step 30"):
            checkpoints.restore_latest(step=30)
        assert checkpoints.restore_latest().step == 20
    _, _, step = restore_gan(workdir)
    assert step == 20
    assert os.path.isdir(checkpoint_step_dir(workdir, 30))

    # Training moves it aside, retrains 20 -> 30 and saves 30 again, identically.
    resumed = train_and_evaluate(gaussian_config(**CONFIG), workdir)
    assert len(os.listdir(damaged_checkpoints_dir(workdir))) == 1
    _, expected, _ = restore_gan(unbroken)
    assert_states_equal(resumed, expected)
    with Checkpoints(checkpoints_dir(workdir), read_only=True) as checkpoints:
        assert checkpoints.all_steps() == [10, 20, 30]
        assert checkpoints.restore_latest().step == 30


@pytest.mark.slow
def test_a_step_without_orbaxs_metadata_file_still_restores_verified(tmp_path, unbroken):
    # The packed state's few arrays are read by the names the manifest's layout gives;
    # the digest check says they are the very bits that were saved.
    workdir = str(tmp_path / "run")
    shutil.copytree(unbroken, workdir)
    delete_metadata(checkpoint_step_dir(workdir, 30))
    _, state, step = restore_gan(workdir)
    _, expected, _ = restore_gan(unbroken)
    assert step == 30
    assert_states_equal(state, expected)


@pytest.mark.slow
def test_sample_cli_warns_in_one_line_and_uses_the_older_step(tmp_path, unbroken):
    workdir = str(tmp_path / "run")
    shutil.copytree(unbroken, workdir)
    flip_three_bytes(checkpoint_step_dir(workdir, 30))
    result = run("gan_jax.sample", f"--workdir={workdir}", f"--out={tmp_path}/s.png")
    assert result.returncode == 0, result.stderr[-2000:]
    assert "of step 20" in result.stdout
    warnings = [x for x in result.stderr.splitlines() if "damaged checkpoint" in x]
    assert len(warnings) == 1 and "step 30" in warnings[0]
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_every_step_damaged_is_a_one_line_error(tmp_path, unbroken):
    workdir = str(tmp_path / "run")
    shutil.copytree(unbroken, workdir)
    for step in (10, 20, 30):
        delete_config(checkpoint_step_dir(workdir, step))
    result = run("gan_jax.sample", f"--workdir={workdir}", f"--out={tmp_path}/s.png")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: no readable checkpoint")
