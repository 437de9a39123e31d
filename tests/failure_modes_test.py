"""Divergence and bad surroundings: one line, nothing lost."""

import json
import os
import subprocess
import uuid

import pytest
from cli_runs import GAUSSIAN, run

from gan_jax.checkpoint import restore_gan
from gan_jax.workdir import checkpoint_steps, checkpoints_dir, metrics_file

FAST = ("--num_fit_samples=1000", "--checkpoint_every_steps=50")


def last_line(result):
    return result.stderr.strip().splitlines()[-1]


@pytest.mark.slow
def test_divergence_stops_without_saving_a_non_finite_state(tmp_path):
    args = (f"--workdir={tmp_path}", *FAST)
    assert run(GAUSSIAN, *args, "--num_epochs=1").returncode == 0  # steps 50, 100, 125
    good = checkpoint_steps(tmp_path)
    # Resuming with an absurd learning rate (a change that is allowed) blows up.
    result = run(GAUSSIAN, *args, "--num_epochs=3", "--lr_d=1e38", "--lr_g=1e38")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    line = last_line(result)
    # The first step whose metrics (losses, gradient norms) are non-finite: at most a
    # few steps after the parameters blow up.
    assert line.startswith("error: training diverged at step ")
    assert 126 <= int(line.split("at step ")[1].split(":")[0]) <= 150
    assert "nothing past step 125 was saved" in line
    assert checkpoint_steps(tmp_path) == good
    _, state, step = restore_gan(str(tmp_path))
    assert step == int(state.step) == 125
    with open(metrics_file(tmp_path)) as f:
        records = [json.loads(x, parse_constant=pytest.fail) for x in f]
    assert [r["epoch"] for r in records] == [1]


@pytest.mark.slow
def test_divergence_before_any_checkpoint(tmp_path):
    result = run(GAUSSIAN, f"--workdir={tmp_path}", *FAST, "--lr_d=1e38", "--lr_g=1e38")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert last_line(result).startswith("error: training diverged at step 1: ")
    assert "no checkpoint was saved" in last_line(result)
    assert checkpoint_steps(tmp_path) == []


@pytest.mark.slow
def test_workdir_that_is_a_file_or_under_a_file(tmp_path):
    path = tmp_path / "a_file"
    path.write_text("not a directory")
    for workdir in (path, path / "run"):
        result = run(GAUSSIAN, f"--workdir={workdir}", *FAST)
        assert result.returncode == 1
        assert "Traceback" not in result.stderr
        assert last_line(result).startswith("error: ") and "--workdir" in last_line(result)
    assert path.read_text() == "not a directory"


@pytest.fixture
def small_disk(tmp_path):
    """A 3 MB tmpfs (root only: skipped where mounting is not allowed)."""
    mount_point = tmp_path / f"disk_{uuid.uuid4().hex[:6]}"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mount_point)],
        capture_output=True,
    )
    if mounted.returncode:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    yield mount_point
    subprocess.run(["umount", "-l", str(mount_point)], check=False)


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_the_run_resumes_after(small_disk):
    workdir = small_disk / "run"
    # Saves every 10 steps (about 100 KB each) fill 3 MB within 4 epochs (500 steps).
    args = (f"--workdir={workdir}", "--num_epochs=4", "--num_fit_samples=1000")
    args += ("--checkpoint_every_steps=10",)
    args += ("--keep_checkpoints=1000", "--steps_per_dispatch=10")
    result = run(GAUSSIAN, *args)
    assert result.returncode == 1, result.stderr[-2000:]
    assert "Traceback" not in result.stderr
    line = last_line(result)
    assert line.startswith("error: out of disk space"), line
    steps = checkpoint_steps(workdir)
    assert steps and f"step {steps[-1]}" in line
    _, _, step = restore_gan(str(workdir))  # the newest complete checkpoint restores
    assert step == steps[-1]
    # With room again, rerunning resumes and finishes.
    subprocess.run(["mount", "-o", "remount,size=64m", str(small_disk)], check=True)
    again = run(GAUSSIAN, *args)
    assert again.returncode == 0, again.stderr[-2000:]
    assert "W2 to the target Gaussian" in again.stdout
    assert not [n for n in os.listdir(checkpoints_dir(workdir)) if "tmp" in n]
