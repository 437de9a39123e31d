"""Sweeps that search: successive halving and PBT inside one vmapped program."""

import json
import os

import jax
import numpy as np
import pytest
from cli_runs import GAUSSIAN, assert_one_line_error, run
from states import assert_states_equal, leaves
from testing_configs import gaussian_config

from gan_jax import search, sweep_summary
from gan_jax.checkpoint import restore_gan
from gan_jax.config import replace
from gan_jax.errors import ConfigError
from gan_jax.evaluation import Evaluator
from gan_jax.metric_writer import read_metrics
from gan_jax.state import build_gan, create_states, member_state, stack_states
from gan_jax.sweep_summary import settings_schedule
from gan_jax.train import train_group
from gan_jax.workdir import checkpoint_steps, lineage_plot, member_dir, metrics_file, summary_file

NUM_MEMBERS = 4


def members(num_epochs: int = 4, num_members: int = NUM_MEMBERS):
    """Gaussian members 20 steps an epoch, differing in seed and G's learning rate."""
    base = gaussian_config(num_points=160, num_epochs=num_epochs, checkpoint_every_steps=1000)
    rates = np.geomspace(0.001, 0.03, num_members)
    return [
        replace(base, seed=i, **{"g_optimizer.learning_rate": float(rate)})
        for i, rate in enumerate(rates)
    ]


def searching(kind: str, every_epochs: int, **settings) -> search.Searching:
    evaluator = Evaluator(members()[0], memorisation_queries=0)
    return search.Searching(
        search.Search(kind, every_epochs, **settings),
        "w2",
        lambda gan, state: evaluator.ranking_score(gan, state, 500),
    )


def test_ranking_puts_non_finite_scores_last_and_halving_keeps_the_best():
    scores = [3.0, float("nan"), 1.0, 2.0, float("inf"), 0.5]
    assert search.ranking(scores) == [5, 2, 3, 0, 1, 4]
    assert search.halving_survivors(scores, 2) == [2, 3, 5]  # in slot order
    assert search.halving_survivors(scores, 4) == [5]
    assert search.halving_survivors([1.0], 2) == [0]  # one member always goes on


def test_the_summary_ranks_members_halving_stopped_by_their_rung_score_after_the_rest():
    def member(name, stopped=None, **scores):
        return {"name": name, "diverged": None, "stopped": stopped, "scores": scores}

    members = [
        member("a", fid=5.0, precision=0.5, recall=0.4),
        member("b", fid=4.0, precision=0.6, recall=0.3),
        member("c", stopped="stopped at rung 1", fid=1.0),  # its rung score alone
    ]
    assert sweep_summary.ranking(members, "fid") == [
        {"name": "b", "fid": 4.0, "precision": 0.6, "recall": 0.3},
        {"name": "a", "fid": 5.0, "precision": 0.5, "recall": 0.4},
        {"name": "c", "fid": 1.0, "stopped": "stopped at rung 1"},
    ]


def test_pbt_replaces_the_worst_by_copies_of_the_best_from_a_fixed_draw():
    settings = search.Search("pbt", 1, pbt_fraction=0.25, pbt_factors=(0.5, 2.0))
    scores = [float(s) for s in [7, 0, 5, 1, 6, 2, 4, 3]]
    copies = search.pbt_copies(settings, scores, rung=3)
    assert [c.target for c in copies] == [0, 4]  # the two worst
    assert {c.source for c in copies} <= {1, 3}  # from the two best
    assert all(c.factors["learning_rate"] in (0.5, 2.0) for c in copies)
    assert copies == search.pbt_copies(settings, scores, rung=3)  # a pure function
    draws = {
        tuple(
            (c.source, c.factors["learning_rate"])
            for c in search.pbt_copies(settings, scores, rung)
        )
        for rung in range(1, 9)
    }
    assert len(draws) > 1  # each rung draws anew


def test_exploit_copies_the_whole_member_but_its_key_and_perturbs_its_settings():
    configs = [
        replace(gaussian_config(g_ema_decay=0.9), seed=i, **{"d_optimizer.b1": 0.1 * (i + 1)})
        for i in range(3)
    ]
    gans = [build_gan(c) for c in configs]
    state = stack_states(create_states(gans, [c.seed for c in configs]))
    copy = search.Copy(target=2, source=0, factors={"learning_rate": 2.0, "d_b1": 4.0})
    after = search.exploit(state, [copy], configs[0])
    before_settings, after_settings = search.settings_of(state), search.settings_of(after)
    source, target = member_state(state, 0), member_state(after, 2)
    # Every array the same as the source's (parameters, optimizer moments, G's average,
    # the step), but the key and the in-state settings.
    for path_value, (a, b) in zip(
        jax.tree_util.tree_leaves_with_path(source),
        zip(leaves(source), leaves(target), strict=True),
        strict=True,
    ):
        name = jax.tree_util.keystr(path_value[0])
        if name == ".key" or "hyperparams" in name:
            continue
        np.testing.assert_array_equal(a, b, err_msg=name)
    np.testing.assert_array_equal(leaves(target.key), leaves(member_state(state, 2).key))
    assert after_settings["g_learning_rate"][2] == pytest.approx(
        2 * before_settings["g_learning_rate"][0]
    )
    assert after_settings["d_learning_rate"][2] == pytest.approx(
        2 * before_settings["d_learning_rate"][0]
    )
    # D's b1 of the source (0.1) times 4, G's b1 copied as it was.
    assert after_settings["d_b1"][2] == pytest.approx(0.4)
    assert after_settings["g_b1"][2] == before_settings["g_b1"][0]
    # The other members are untouched.
    for m in (0, 1):
        assert_states_equal(member_state(after, m), member_state(state, m))
    # A decay rate stays below one.
    big = search.exploit(state, [search.Copy(1, 0, {"d_b1": 100.0})], configs[0])
    assert search.settings_of(big)["d_b1"][1] < 1


@pytest.mark.parametrize(
    "change, message",
    [
        ({"kind": "random"}, "--search must be one of grid, halving, pbt"),
        ({"every_epochs": 4}, "leaves no rung before the last"),
        ({"halving_eta": 1}, "--halving_eta must be at least 2"),
        ({"kind": "pbt", "pbt_fraction": 0.1}, "replaces none at a rung"),
        ({"kind": "pbt", "pbt_fraction": 0.75}, "it must be in (0, 0.5]"),
        ({"kind": "pbt", "pbt_factors": (1.2, -1.0)}, "--pbt_factors must be positive"),
        ({"kind": "pbt", "pbt_settings": ("momentum",)}, "'momentum' is not an optimizer"),
        ({"kind": "pbt", "pbt_settings": ("d_decay",)}, "discriminator's adam has no 'decay'"),
    ],
)
def test_bad_searches_are_refused_in_one_line(change, message):
    settings = {"kind": "halving", "every_epochs": 1, **change}
    with pytest.raises(ConfigError) as error:
        search.check(search.Search(**settings), members(), num_epochs=4)
    assert message in str(error.value) and "\n" not in str(error.value)


def stopped_step(workdir: str) -> int | None:
    stopped = [r for r in read_metrics(metrics_file(workdir)) if "stopped" in r]
    return stopped[0]["step"] if stopped else None


@pytest.mark.slow
def test_halving_stops_the_worst_at_each_rung_and_keeps_their_last_state(tmp_path):
    configs = members(num_epochs=3)
    workdirs = [str(tmp_path / f"m{i}") for i in range(NUM_MEMBERS)]
    states = train_group(configs, workdirs, search=searching("halving", 1))
    records = [read_metrics(metrics_file(w)) for w in workdirs]
    for rung, step in ((1, 20), (2, 40)):
        scored = {
            m: r["rung_w2"] for m, rs in enumerate(records) for r in rs if r.get("rung") == rung
        }
        stopped = {
            m
            for m, rs in enumerate(records)
            for r in rs
            if r.get("rung") == rung and "stopped" in r
        }
        going = set(scored) - stopped
        assert len(going) == len(scored) // 2
        assert max(scored[m] for m in going) <= min(scored[m] for m in stopped)
        for m in stopped:  # its last checkpoint is the rung's, and so is its state
            assert stopped_step(workdirs[m]) == step
            assert checkpoint_steps(workdirs[m])[-1] == step
            assert int(states[m].step) == step
    (winner,) = [m for m in range(NUM_MEMBERS) if stopped_step(workdirs[m]) is None]
    assert int(states[winner].step) == 60 and checkpoint_steps(workdirs[winner])[-1] == 60


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["halving", "pbt"])
def test_a_resumed_search_equals_the_unbroken_one(kind, tmp_path):
    """Stopped at a rung, which the resumed search decides from the saved states, after
    crossing one (resuming between rungs is the grid sweep's resume, tested there)."""
    every_epochs, first_epochs = 1, 2
    configs = members(num_epochs=5)
    resumed = [str(tmp_path / "resumed" / f"m{i}") for i in range(NUM_MEMBERS)]
    unbroken = [str(tmp_path / "unbroken" / f"m{i}") for i in range(NUM_MEMBERS)]
    first = [replace(c, num_epochs=first_epochs) for c in configs]
    train_group(first, resumed, search=searching(kind, every_epochs))
    a = train_group(configs, resumed, search=searching(kind, every_epochs))
    b = train_group(configs, unbroken, search=searching(kind, every_epochs))
    for state_a, state_b, dir_a, dir_b in zip(a, b, resumed, unbroken, strict=True):
        assert_states_equal(state_a, state_b)
        assert_states_equal(restore_gan(dir_a)[1], restore_gan(dir_b)[1])
        records = [
            [
                {k: v for k, v in r.items() if k != "examples_per_sec"}
                for r in read_metrics(metrics_file(w))
            ]
            for w in (dir_a, dir_b)
        ]
        assert records[0] == records[1]
    copies = [r for w in unbroken for r in read_metrics(metrics_file(w)) if "exploit" in r]
    stops = [r for w in unbroken for r in read_metrics(metrics_file(w)) if "stopped" in r]
    assert (len(copies), len(stops)) == ((4 // every_epochs, 0) if kind == "pbt" else (0, 3))


@pytest.mark.slow
def test_the_pbt_command_records_each_copy_and_draws_the_lineage(tmp_path):
    spec = "lr_g=0.001,0.003,0.01,0.03"
    flags = (
        f"--workdir={tmp_path}",
        f"--sweep={spec}",
        "--search=pbt",
        "--search_every_epochs=1",
        "--num_epochs=3",
        "--num_points=160",
        "--num_fit_samples=500",
        "--search_num_samples=500",
    )
    result = run(GAUSSIAN, *flags)
    assert result.returncode == 0, result.stderr[-3000:]
    with open(summary_file(tmp_path)) as f:
        summary = json.load(f)
    assert summary["search"] == "pbt" and summary["score"] == "w2"
    assert len(summary["lineage"]) == 2  # a quarter of 4 members at each of 2 rungs
    for copy in summary["lineage"]:
        target = member_dir(tmp_path, copy["to"])
        (record,) = [
            r
            for r in read_metrics(metrics_file(target))
            if r.get("step") == copy["step"] and "exploit" in r
        ]
        assert record["exploit"]["from"] == copy["from"] != copy["to"]
        old, new = record["exploit"]["settings"]["g_learning_rate"]
        assert old != new
    assert summary["best_settings"] == settings_schedule(summary["best"], summary["members"])
    assert summary["best_settings"][0]["from_step"] == 0
    assert os.path.getsize(lineage_plot(tmp_path)) > 0
    assert "best member's settings from step 0" in result.stdout
    best = member_dir(tmp_path, summary["best"])
    sampled = run("gan_jax.sample", f"--workdir={best}", f"--out={tmp_path}/s.png")
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    copied = member_dir(tmp_path, summary["lineage"][-1]["to"])
    evaluated = run("gan_jax.evaluate", f"--workdir={copied}", "--num_samples=500")
    assert evaluated.returncode == 0, evaluated.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize(
    "flags, message",
    [
        (("--search=halving",), "--search=halving searches a --sweep"),
        (("--sweep=seed=0:2", "--search=pbt"), "replaces none at a rung"),
        (("--sweep=seed=0:4", "--search=pbt", "--pbt_factors=1,x"), "--pbt_factors='1,x'"),
        (("--sweep=d_hidden=[4],[5]", "--search=halving"), "differ in structure"),
        (("--sweep=seed=0:4", "--search=halving", "--sweep_chunk=2"), "drop --sweep_chunk"),
    ],
)
def test_bad_search_flags_are_one_line(flags, message, tmp_path):
    result = run(GAUSSIAN, f"--workdir={tmp_path}", "--num_epochs=4", *flags)
    line = assert_one_line_error(result, "error:")
    assert message in line
