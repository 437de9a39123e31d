"""Sweeps end to end: member workdirs equal solo runs, divergence, resume, the command."""

import itertools
import json
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from cli_runs import GAUSSIAN, assert_one_line_error, run
from PIL import Image
from states import assert_states_equal, leaves
from testing_configs import gaussian_config

from gan_jax import sweep_summary, viz
from gan_jax.checkpoint import Checkpoints, restore_gan
from gan_jax.config import replace
from gan_jax.data.pipeline import TrainingData, load_training_data
from gan_jax.drawing import drawing_for
from gan_jax.loop import make_run_steps
from gan_jax.metric_writer import read_metrics
from gan_jax.run_experiment import _train_in_chunks
from gan_jax.state import build_gan, create_state
from gan_jax.sweep_summary import expected_best_of_k
from gan_jax.train import train_and_evaluate, train_group
from gan_jax.workdir import (
    best_of_k_plot,
    checkpoints_dir,
    config_file,
    eval_file,
    gaussian_fit_file,
    loss_plot,
    member_dir,
    metrics_file,
    sample_grid,
    sample_grids,
    summary_file,
    summary_plot,
    sweep_file,
)


def members(**changes):
    base = gaussian_config(num_epochs=2, **changes)
    return [
        replace(base, seed=0),
        replace(base, seed=1, **{"d_optimizer.learning_rate": 0.02}),
        replace(base, seed=2, **{"g_optimizer.b1": 0.5}),
    ]


def largest_difference(a, b) -> float:
    return max(
        float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))))
        for x, y in zip(leaves(a), leaves(b), strict=True)
    )


def without_wall_clock(records):
    return [{k: v for k, v in r.items() if k != "examples_per_sec"} for r in records]


@pytest.mark.slow
def test_each_member_is_an_ordinary_run_equal_to_its_solo_run(tmp_path):
    configs = members()
    workdirs = [str(tmp_path / "sweep" / f"m{i}") for i in range(3)]
    states = train_group(configs, workdirs)
    for config, workdir, state in zip(configs, workdirs, states, strict=True):
        solo_dir = str(tmp_path / "solo" / os.path.basename(workdir))
        solo = train_and_evaluate(config, solo_dir)
        _, restored, step = restore_gan(workdir)  # as `sample` and `evaluate` restore it
        assert step == 20 and restored.step == 20
        assert_states_equal(restored, state)
        assert largest_difference(restored, solo) < 1e-5
        with open(config_file(workdir)) as f:
            assert json.load(f)["seed"] == config.seed
        mine, theirs = (read_metrics(metrics_file(w)) for w in (workdir, solo_dir))
        assert [r["epoch"] for r in mine] == [r["epoch"] for r in theirs] == [1, 2]
        np.testing.assert_allclose(
            [r["loss_d"] for r in mine], [r["loss_d"] for r in theirs], rtol=1e-4
        )
        # A member draws its pictures once, at the end.
        assert sample_grids(workdir) == [sample_grid(workdir, 2)]
        assert os.path.exists(loss_plot(workdir))


@pytest.mark.parametrize("groups", [[16], [8, 8]], ids=["its_own", "the_callers"])
@pytest.mark.slow
def test_a_large_sweep_draws_every_members_pictures_in_another_process(
    tmp_path, monkeypatch, groups
):
    drawn = []
    real_draw = viz.DrawingProcess.draw
    monkeypatch.setattr(
        viz.DrawingProcess, "draw", lambda self, *args: drawn.append(real_draw(self, *args))
    )
    configs = [gaussian_config(seed=seed, num_points=16) for seed in range(16)]  # 16: enough
    workdirs = [str(tmp_path / f"m{i}") for i in range(16)]
    if groups == [16]:  # a group of 16 draws in a process of its own
        train_group(configs, workdirs)
    else:  # two groups of 8, as the sweep command runs them: one process for both
        with drawing_for(len(configs)) as drawing:
            assert isinstance(drawing, viz.DrawingProcess)
            for start in (0, 8):
                members = slice(start, start + 8)
                train_group(configs[members], workdirs[members], drawing=drawing)
        with drawing_for(15) as none:
            assert none is None  # fewer members draw in this process
    assert len(drawn) == 2 * 16  # each member's scatter and loss plot went to the process
    for workdir in workdirs:
        for picture in (sample_grid(workdir, 1), loss_plot(workdir)):
            with Image.open(picture) as image:
                assert image.format == "PNG" and image.size[0] >= 500


@pytest.mark.slow
def test_a_diverged_member_is_frozen_and_marked(tmp_path):
    configs = members()
    absurd = {"g_optimizer.learning_rate": 1e38}  # non-finite after a few steps
    configs[1] = replace(configs[1], **absurd)
    workdirs = [str(tmp_path / f"m{i}") for i in range(3)]
    states = train_group(configs, workdirs)
    records = read_metrics(metrics_file(workdirs[1]))
    assert "diverged" in records[-1] and records[-1]["diverged"].startswith("training diverged")
    frozen_at = int(states[1].step)
    assert 0 < frozen_at < 20
    # Kept: the member's last finite state, as a solo run of that many steps has it.
    assert all(np.isfinite(x).all() for x in leaves(states[1]) if x.dtype.kind == "f")
    gan = build_gan(configs[1])
    solo_steps = make_run_steps(gan, 80, 10, frozen_at)
    data = TrainingData(jnp.asarray(load_training_data(configs[1].data, 1).examples), None)
    expected, _ = solo_steps(create_state(gan, 1), data, jnp.int32(frozen_at))
    for kept, solo_leaf in zip(leaves(states[1]), leaves(expected), strict=True):
        np.testing.assert_allclose(kept, solo_leaf, rtol=1e-5, atol=1e-5)  # G's are ~1e38
    with Checkpoints(checkpoints_dir(workdirs[1]), read_only=True) as checkpoints:
        assert all(step <= frozen_at for step in checkpoints.all_steps())
    for m in (0, 2):
        solo = train_and_evaluate(configs[m], str(tmp_path / f"solo{m}"))
        assert largest_difference(states[m], solo) < 1e-5
    # Rerunning the finished sweep leaves the diverged member as it was.
    again = train_group(configs, workdirs)
    assert int(again[1].step) <= frozen_at and int(again[0].step) == 20
    assert read_metrics(metrics_file(workdirs[1])) == records


@pytest.mark.slow
def test_a_resumed_sweep_equals_an_unbroken_one(tmp_path):
    configs = members()
    first = [replace(c, num_epochs=1) for c in configs]
    resumed = [str(tmp_path / "resumed" / f"m{i}") for i in range(3)]
    unbroken = [str(tmp_path / "unbroken" / f"m{i}") for i in range(3)]
    train_group(first, resumed)
    train_group(configs, resumed)
    train_group(configs, unbroken)
    for a, b in zip(resumed, unbroken, strict=True):
        assert_states_equal(restore_gan(a)[1], restore_gan(b)[1])
        records = (read_metrics(metrics_file(w)) for w in (a, b))
        assert without_wall_clock(next(records)) == without_wall_clock(next(records))


FAST = ("--num_points=80", "--num_epochs=1", "--num_fit_samples=1000")


@pytest.mark.slow
def test_the_sweep_command_writes_member_workdirs_in_groups(tmp_path):
    spec = "d_hidden=[5,3],[4];lr_d=0.05,0.02;seed=0:2"
    # Chunks of 3 split each group of 4 into 3 + 1 members. With G's moving average on,
    # members are scored (and sampled) from it, as single runs are.
    flags = (f"--workdir={tmp_path}", f"--sweep={spec}", "--sweep_chunk=3", "--g_ema_decay=0.9")
    result = run(GAUSSIAN, *flags, *FAST)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stderr.count("(3 at a time)") == 4
    with open(sweep_file(tmp_path)) as f:
        sweep = json.load(f)
    names = [m["name"] for m in sweep["members"]]
    assert len(names) == 8 and names[0] == "d_hidden=5-3_lr_d=0.05_seed=0"
    assert sweep["groups"] == [[0, 1, 2, 3], [4, 5, 6, 7]]  # one per D architecture
    assert result.stdout.count("W2 to the target Gaussian") == 8
    for name in names:
        assert os.path.exists(gaussian_fit_file(member_dir(tmp_path, name))), name
    member = member_dir(tmp_path, names[5])
    sampled = run("gan_jax.sample", f"--workdir={member}", f"--out={tmp_path}/s.png")
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    evaluated = run("gan_jax.evaluate", f"--workdir={member}")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]
    # The summary: every member's final W2, statistics per setting, best-of-k.
    with open(summary_file(tmp_path)) as f:
        summary = json.load(f)
    assert summary["score"] == "w2" and not summary["diverged"]
    w2 = [m["scores"]["w2"] for m in summary["members"]]
    assert summary["best"] == names[int(np.argmin(w2))]
    assert summary["best_of_k"][0] == pytest.approx(np.mean(w2))
    assert summary["best_of_k"][-1] == pytest.approx(min(w2))
    assert [row["count"] for row in summary["by_setting"]["lr_d"]] == [4, 4]
    assert "seed" not in summary["by_setting"]
    with open(summary_file(tmp_path, ".csv")) as f:
        assert len(f.read().splitlines()) == 9
    configurations = summary["by_configuration"]
    assert [row["count"] for row in configurations] == [2, 2, 2, 2]
    assert configurations[0]["settings"] == {"d_hidden": [5, 3], "lr_d": 0.05}
    assert configurations[0]["mean"] == pytest.approx(np.mean(w2[:2]))
    within = sum(np.var(w2[i : i + 2]) * 2 for i in range(0, 8, 2))
    assert summary["seed_share"] == pytest.approx(within / (8 * np.var(w2)))
    for plot in (
        summary_plot(tmp_path, "d_hidden"),
        summary_plot(tmp_path, "lr_d"),
        summary_plot(tmp_path, "d_hidden", "lr_d"),
        best_of_k_plot(tmp_path),
    ):
        assert os.path.exists(plot), plot
    # The end of the output names the ranking score and lists the best members first.
    assert "ranked by w2 (2-Wasserstein distance" in result.stdout
    ranked = sorted(range(8), key=lambda i: w2[i])
    assert [row["name"] for row in summary["ranking"]] == [names[i] for i in ranked]
    assert f"  {names[ranked[0]]}  w2 {min(w2):.4g}" in result.stdout
    # `evaluate` on a member scores it as the sweep did (same samples, same seed, G's
    # moving average).
    with open(eval_file(member, 10)) as f:
        assert json.load(f)["w2"] == pytest.approx(w2[5], rel=1e-6)


def test_a_chunk_out_of_device_memory_is_halved():
    tried = []

    def train(chunk, first_try):
        tried.append((list(chunk), first_try))
        if len(chunk) > 2:
            raise jax.errors.JaxRuntimeError("RESOURCE_EXHAUSTED: Out of memory allocating")
        return [f"state{i}" for i in chunk]

    trained = _train_in_chunks(list(range(7)), 5, train)
    assert trained == [(i, f"state{i}") for i in range(7)]
    assert tried == [
        ([0, 1, 2, 3, 4], True),
        ([0, 1, 2], False),  # a retry resumes: it does not start over
        ([0, 1], False),
        ([2, 3], True),
        ([4, 5], True),
        ([6], True),
    ]

    def broken(chunk, first_try):
        raise ValueError("not about memory")

    with pytest.raises(ValueError):
        _train_in_chunks([0, 1], 2, broken)


def test_expected_best_of_k_equals_the_average_over_all_draws():
    values = [0.3, 1.2, 0.7, 2.0, 0.9]
    expected = expected_best_of_k(values)
    for k in range(1, 6):
        draws = list(itertools.combinations(values, k))
        assert expected[k - 1] == pytest.approx(np.mean([min(d) for d in draws]))


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("lr=0.1", "'lr' is not a setting of this experiment"),
        ("seed=3:3", "empty range"),
        ("lr_d=-1", "lr_d=-1.0 must be positive"),
    ],
)
def test_bad_sweeps_are_one_line_errors(tmp_path, spec, message):
    result = run(GAUSSIAN, f"--workdir={tmp_path}", f"--sweep={spec}", *FAST)
    assert message in assert_one_line_error(result, "error: ")


def test_a_summary_ranks_by_the_best_score_every_member_has(tmp_path):
    def member(name, **scores):
        return {"name": name, "overrides": {"lr": 0.1}, "scores": scores, "diverged": None}

    classifier_scores = {"precision": 0.5, "recall": 0.25, "density": 0.75, "coverage": 0.5}
    members = [
        member("a", fid=3.0, inception_fid=30.0, **classifier_scores),
        member("b", fid=1.0, **classifier_scores),  # no Inception weights when it was scored
        member("c", fid=2.0, nn_l1_mean=0.1, **classifier_scores),
    ]
    summary = sweep_summary.write(str(tmp_path), "lr=0.1", members)
    assert summary["score"] == "fid"
    assert "classifier" in summary["score_means"]
    assert [row["name"] for row in summary["ranking"]] == ["b", "c", "a"]
    assert summary["ranking"][0] == {"name": "b", "fid": 1.0, **classifier_scores}
    with open(summary_file(tmp_path, ".csv")) as f:
        header = f.read().splitlines()[0].split(",")
    assert header[:7] == ["name", "lr", "fid", "precision", "recall", "density", "coverage"]
    assert sweep_summary.companions("inception_fid")[0] == "inception_precision"
    assert sweep_summary.primary_score([{"w2": 1.0}]) == "w2"
