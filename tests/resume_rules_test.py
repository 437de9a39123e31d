"""Rerunning in a workdir: exact records, and changed flags.

Settings that can change mid-run (optimizer hyperparameters, schedule length,
cadences) are applied and recorded; settings that define the checkpoint (models,
batch size, data, objective, experiment) are refused before anything is written,
unless the run starts over.
"""

import glob
import json
import shutil

import numpy as np
import pytest
from cli_runs import GAUSSIAN, run
from testing_configs import gaussian_config

from gan_jax.checkpoint import Checkpoints, restore_gan
from gan_jax.config import replace
from gan_jax.metric_writer import read_metrics
from gan_jax.resume import IncompatibleResumeError
from gan_jax.train import train_and_evaluate
from gan_jax.workdir import (
    checkpoint_step_dir,
    checkpoint_steps,
    checkpoints_dir,
    config_changes_file,
    config_file,
    metrics_file,
    replaced_dir,
)


def records_without_wall_clock(workdir):
    return [
        {k: v for k, v in r.items() if k != "examples_per_sec"}
        for r in read_metrics(metrics_file(workdir))
    ]


def read(path):
    with open(path) as f:
        return f.read()


@pytest.mark.slow
def test_resuming_mid_epoch_writes_exactly_the_unbroken_records(tmp_path):
    # 10 steps an epoch, checkpoints every 7 steps: every resume point is mid-epoch.
    config = gaussian_config(num_epochs=4, checkpoint_every_steps=7, keep_checkpoints=10)
    train_and_evaluate(config, str(tmp_path / "unbroken"))
    expected = records_without_wall_clock(tmp_path / "unbroken")
    for resume_step in (7, 14, 21, 35):
        workdir = tmp_path / f"from_{resume_step}"
        shutil.copytree(tmp_path / "unbroken", workdir)
        for step in checkpoint_steps(workdir):
            if step > resume_step:
                shutil.rmtree(checkpoint_step_dir(workdir, step))
        train_and_evaluate(config, str(workdir))
        assert records_without_wall_clock(workdir) == expected, resume_step


@pytest.mark.slow
def test_a_changed_learning_rate_is_applied_and_recorded(tmp_path):
    workdir = str(tmp_path)
    train_and_evaluate(gaussian_config(num_epochs=1), workdir)
    changed = replace(gaussian_config(num_epochs=2), **{"d_optimizer.learning_rate": 0.01})
    state = train_and_evaluate(changed, workdir)
    hyperparams = state.discriminator.opt_state.hyperparams
    assert float(hyperparams["learning_rate"]) == pytest.approx(0.01)
    assert float(state.generator.opt_state.hyperparams["learning_rate"]) == pytest.approx(0.005)
    with open(config_changes_file(workdir)) as f:
        (line,) = [json.loads(x) for x in f]
    assert line["step"] == 10
    assert line["changes"]["d_optimizer.learning_rate"] == {"from": 0.05, "to": 0.01}
    assert line["changes"]["num_epochs"] == {"from": 1, "to": 2}
    # The new value is what the checkpoint and config.json now hold, and what a
    # restored state trains with.
    with Checkpoints(checkpoints_dir(workdir), read_only=True) as checkpoints:
        assert checkpoints.restore_config(20).d_optimizer.learning_rate == 0.01
    with open(config_file(workdir)) as f:
        assert json.load(f)["d_optimizer"]["learning_rate"] == 0.01
    _, restored, _ = restore_gan(workdir)
    assert float(restored.discriminator.opt_state.hyperparams["learning_rate"]) == (
        pytest.approx(0.01)
    )


@pytest.mark.parametrize(
    "change",
    [
        {"discriminator.kwargs": {"hidden_sizes": [4], "activation": "tanh"}},
        {"batch_size": 4},
        {"experiment": "another_experiment"},
        {"loss.label_smoothing": 0.1},
    ],
    ids=["architecture", "batch_size", "experiment", "objective"],
)
@pytest.mark.slow
def test_a_structural_change_is_refused_before_anything_is_written(tmp_path, change):
    workdir = str(tmp_path)
    train_and_evaluate(gaussian_config(num_epochs=1), workdir)
    before = {path: read(path) for path in (config_file(workdir), metrics_file(workdir))}
    with pytest.raises(IncompatibleResumeError, match="cannot change mid-run"):
        train_and_evaluate(replace(gaussian_config(num_epochs=2), **change), workdir)
    for path, text in before.items():
        assert read(path) == text
    # Starting over moves the old run aside and trains the new settings from scratch.
    state = train_and_evaluate(
        replace(gaussian_config(num_epochs=2), **change), workdir, start_over=True
    )
    assert int(state.step) > 0
    (replaced,) = glob.glob(replaced_dir(workdir, "*"))
    assert 10 in checkpoint_steps(replaced)


@pytest.mark.slow
def test_changed_architecture_on_the_command_line_is_one_line(tmp_path):
    args = (f"--workdir={tmp_path}", "--num_epochs=1", "--num_fit_samples=1000")
    assert run(GAUSSIAN, *args).returncode == 0
    with open(config_file(tmp_path)) as f:
        before = f.read()
    result = run(GAUSSIAN, *args, "--d_hidden=4")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and "discriminator.kwargs" in last
    assert "--start_over" in last
    with open(config_file(tmp_path)) as f:
        assert f.read() == before
    again = run(GAUSSIAN, *args, "--d_hidden=4", "--start_over")
    assert again.returncode == 0, again.stderr[-2000:]


def test_metrics_are_strict_json(tmp_path):
    train_and_evaluate(gaussian_config(num_epochs=1), str(tmp_path))
    with open(metrics_file(tmp_path)) as f:
        for line in f:
            json.loads(line, parse_constant=lambda name: pytest.fail(f"non-JSON {name}"))
    from gan_jax.metric_writer import MetricWriter

    writer = MetricWriter(str(tmp_path), resume_step=10**9)
    writer.write({"step": 99, "epoch": 99, "fid": float("nan"), "norm": np.float32("inf")})
    writer.close()
    assert read_metrics(metrics_file(tmp_path))[-1] == {
        "step": 99,
        "epoch": 99,
        "fid": None,
        "norm": None,
    }


def test_print_config_prints_json_and_trains_nothing(tmp_path):
    workdir = tmp_path / "run"
    result = run(GAUSSIAN, f"--workdir={workdir}", "--lr_d=0.01", "--print_config")
    assert result.returncode == 0, result.stderr[-2000:]
    config = json.loads(result.stdout)
    assert config["experiment"] == "gaussian_2d"
    assert config["d_optimizer"]["learning_rate"] == 0.01
    assert config["batch_size"] == 8  # the document's value
    assert not workdir.exists()
