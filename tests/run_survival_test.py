"""What a training run survives, tried as a user would: real processes and real signals.

A reader beside a writer, metrics after an
interruption, SIGTERM/SIGINT at any moment, and two trainers on one workdir. The
runs are the D2L Gaussian experiment (no data set needed) with short dispatches
and frequent checkpoints, so that saves are often in flight.
"""

import glob
import json
import os
import signal
import time

import pytest
from cli_runs import GAUSSIAN, interrupt, run, start, wait_for
from states import assert_states_equal

from gan_jax.checkpoint import restore_gan
from gan_jax.metric_writer import read_metrics
from gan_jax.workdir import checkpoint_steps, checkpoints_dir, lock_file, metrics_file, sample_grids

# 1,000 points, batch 8: 125 steps an epoch; checkpoints fall mid-epoch.
FAST = ("--steps_per_dispatch=25", "--checkpoint_every_steps=50", "--num_fit_samples=1000")


def gaussian_args(workdir, *extra):
    return (f"--workdir={workdir}", *FAST, *extra)


def without_wall_clock(records):
    return [{k: v for k, v in r.items() if k != "examples_per_sec"} for r in records]


def assert_same_final_state(workdir_a, workdir_b):
    _, a, step_a = restore_gan(str(workdir_a))
    _, b, step_b = restore_gan(str(workdir_b))
    assert step_a == step_b
    assert_states_equal(a, b)


def leftover_temporaries(workdir):
    return glob.glob(os.path.join(checkpoints_dir(workdir), "*tmp*"))


@pytest.mark.slow
def test_sigterm_saves_the_last_completed_step_and_exits_143(tmp_path):
    trainer = start(GAUSSIAN, *gaussian_args(tmp_path, "--num_epochs=400"))
    wait_for(lambda: checkpoint_steps(tmp_path))
    returncode, _, stderr = interrupt(trainer, signal.SIGTERM)
    assert returncode == 128 + signal.SIGTERM, stderr[-2000:]
    assert "Traceback" not in stderr
    (line,) = [x for x in stderr.splitlines() if x.startswith("interrupted by SIGTERM")]
    step = int(line.split("at step ")[1].split(":")[0])
    assert f"checkpoint {step} is saved" in line
    assert checkpoint_steps(tmp_path)[-1] == step
    assert not leftover_temporaries(tmp_path)
    # The metrics hold every epoch up to the saved step, and nothing past it.
    epochs = [r["epoch"] for r in read_metrics(metrics_file(tmp_path))]
    assert epochs == list(range(1, step // 125 + 1))


@pytest.mark.parametrize("delay", [1.0, 2.5, 4.0])
@pytest.mark.slow
def test_sigint_during_start_up_is_one_line_and_no_crash(tmp_path, delay):
    trainer = start(GAUSSIAN, *gaussian_args(tmp_path, "--num_epochs=400"))
    time.sleep(delay)
    returncode, _, stderr = interrupt(trainer, signal.SIGINT)
    # 130 (128 + SIGINT), never a segfault (-11) or an abort.
    assert returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    (line,) = [x for x in stderr.splitlines() if x.startswith("interrupted by SIGINT")]
    steps = checkpoint_steps(tmp_path)
    if "nothing to save" in line:
        assert not steps or "checkpoint" not in line
    else:
        assert f"checkpoint {steps[-1]} is saved" in line
    assert not leftover_temporaries(tmp_path)


@pytest.mark.slow
def test_a_second_sigint_during_the_save_does_not_break_it(tmp_path):
    trainer = start(GAUSSIAN, *gaussian_args(tmp_path, "--num_epochs=400"))
    wait_for(lambda: checkpoint_steps(tmp_path))
    trainer.send_signal(signal.SIGINT)
    time.sleep(0.05)
    returncode, _, stderr = interrupt(trainer, signal.SIGINT)
    assert returncode == 130, stderr[-2000:]
    assert "Traceback" not in stderr
    assert len([x for x in stderr.splitlines() if "checkpoint" in x and "saved" in x]) == 1
    assert not leftover_temporaries(tmp_path)
    # The checkpoint written under the second signal restores.
    _, state, step = restore_gan(str(tmp_path))
    assert step == checkpoint_steps(tmp_path)[-1] == int(state.step)


@pytest.mark.slow
def test_interrupted_and_resumed_run_writes_the_unbroken_records(tmp_path):
    args = ("--num_epochs=6",)  # 750 steps
    unbroken = tmp_path / "unbroken"
    assert run(GAUSSIAN, *gaussian_args(unbroken, *args)).returncode == 0
    resumed = tmp_path / "resumed"
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Interrupt once this attempt has saved a step of its own (so it has trained).
        newest = max(checkpoint_steps(resumed), default=0)
        trainer = start(GAUSSIAN, *gaussian_args(resumed, *args))
        wait_for(lambda n=newest: max(checkpoint_steps(resumed), default=0) > n)
        returncode, _, stderr = interrupt(trainer, signum)
        assert returncode in (0, 128 + signum), stderr[-2000:]
    final = run(GAUSSIAN, *gaussian_args(resumed, *args))
    assert final.returncode == 0, final.stderr[-2000:]
    records = read_metrics(metrics_file(resumed))
    assert [r["epoch"] for r in records] == list(range(1, 7))
    assert without_wall_clock(records) == without_wall_clock(read_metrics(metrics_file(unbroken)))
    grids = [os.path.basename(path) for path in sample_grids(resumed)]
    assert grids == [os.path.basename(path) for path in sample_grids(unbroken)]
    assert_same_final_state(unbroken, resumed)


@pytest.mark.slow
def test_reading_beside_a_training_run_never_disturbs_it(tmp_path):
    # Saves every 10 steps, so most reads overlap a save in flight.
    trainer = start(
        GAUSSIAN,
        f"--workdir={tmp_path}",
        "--num_epochs=400",
        "--steps_per_dispatch=10",
        "--checkpoint_every_steps=10",
    )
    wait_for(lambda: checkpoint_steps(tmp_path))
    seen = []
    for i in range(3):
        sample = run("gan_jax.sample", f"--workdir={tmp_path}", f"--out={tmp_path}/s{i}.png")
        assert sample.returncode == 0, sample.stderr[-2000:]
        seen.append(int(sample.stdout.split("of step ")[1].split()[0]))
        assert trainer.poll() is None, trainer.communicate()[1][-3000:]
    assert seen == sorted(seen) and seen[-1] > seen[0]
    returncode, _, stderr = interrupt(trainer, signal.SIGTERM)
    assert returncode == 143, stderr[-2000:]
    assert "Traceback" not in stderr


@pytest.mark.slow
def test_readers_create_nothing(tmp_path):
    missing = tmp_path / "no_run"
    result = run("gan_jax.sample", f"--workdir={missing}", f"--out={tmp_path}/s.png")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert not missing.exists()
    empty = tmp_path / "empty"
    os.makedirs(checkpoints_dir(empty))
    result = run("gan_jax.sample", f"--workdir={empty}", f"--out={tmp_path}/s.png")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: no checkpoint")
    assert os.listdir(checkpoints_dir(empty)) == []


@pytest.mark.slow
def test_a_second_trainer_on_a_workdir_is_refused(tmp_path):
    first = start(GAUSSIAN, *gaussian_args(tmp_path, "--num_epochs=400"))
    wait_for(lambda: checkpoint_steps(tmp_path))
    second = run(GAUSSIAN, *gaussian_args(tmp_path, "--num_epochs=400"))
    assert second.returncode == 1
    assert "Traceback" not in second.stderr
    last = second.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and f"pid {first.pid} on host" in last
    assert first.poll() is None
    returncode, _, _ = interrupt(first, signal.SIGTERM)
    assert returncode == 143
    # One writer: the records are one run's, in order.
    epochs = [r["epoch"] for r in read_metrics(metrics_file(tmp_path))]
    assert epochs == list(range(1, len(epochs) + 1))


@pytest.mark.slow
def test_a_lock_left_by_a_killed_trainer_is_taken_over(tmp_path):
    trainer = start(GAUSSIAN, *gaussian_args(tmp_path, "--num_epochs=400"))
    wait_for(lambda: checkpoint_steps(tmp_path))
    trainer.kill()
    trainer.communicate()
    with open(lock_file(tmp_path)) as f:
        assert json.load(f)["pid"] == trainer.pid  # stale, left behind
    again = run(GAUSSIAN, *gaussian_args(tmp_path, "--num_epochs=1"))
    assert again.returncode == 0, again.stderr[-2000:]
