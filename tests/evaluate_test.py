"""The `gan_jax.evaluate` command and training-time scoring, run as a user runs them."""

import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from cli_runs import REPO, assert_one_line_error
from once import built_once, shared_path
from PIL import Image
from testing_configs import gaussian_config

from experiments import mlp_gan_mnist
from gan_jax import evaluation
from gan_jax.config import DataConfig, replace
from gan_jax.data import catalog
from gan_jax.evaluation import Evaluator
from gan_jax.metrics import domain_classifier, mnist_classifier
from gan_jax.metrics.feature_scores import FeatureNetwork
from gan_jax.metrics.gaussian import wasserstein2_gaussian
from gan_jax.state import build_gan, create_state
from gan_jax.train import train_and_evaluate
from gan_jax.workdir import eval_file, metrics_file

pytestmark = pytest.mark.slow  # the real MNIST (prepared once per session, about 20 s)


def run_module(module: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, *module.split(), *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )


def read_json(path: str) -> dict:
    with open(path) as f:
        return json.load(f)


def run_evaluate(*args: str) -> subprocess.CompletedProcess:
    return run_module("-m gan_jax.evaluate", *args)


@pytest.fixture(scope="module")
def gaussian_workdir(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("gaussian"))
    train_and_evaluate(gaussian_config(num_points=400, num_epochs=3), workdir)
    return workdir


@pytest.fixture(scope="session")
def mnist_workdirs(tmp_path_factory, mnist_data_dir, mnist_classifier_dir):
    """Two briefly trained MNIST runs (built once, shared by the xdist workers); the
    unconditional one scored during training every epoch, on 200 samples: KID's kernels
    grow with the square of the count, and these scores are checked only for range."""
    scored = ["--eval_every_epochs=1", "--eval_num_samples=200"]
    runs = {
        "mlp_gan_mnist": ["--num_examples=1000", "--num_epochs=2", *scored],
        "cgan_mnist": ["--num_examples=200", "--num_epochs=2"],
    }
    with built_once(tmp_path_factory, "mnist_workdirs") as root:
        if root is not None:
            for name, flags in runs.items():
                result = run_module(
                    os.path.join("experiments", f"{name}.py"),
                    f"--workdir={root / name}",
                    f"--data_dir={mnist_data_dir}",
                    f"--classifier_dir={mnist_classifier_dir}",
                    *flags,
                )
                assert result.returncode == 0, result.stderr[-3000:]
    root = shared_path(tmp_path_factory, "mnist_workdirs")
    return {name: str(root / name) for name in runs}


def test_gaussian_checkpoint_scores_w2(gaussian_workdir, tmp_path):
    outs = [str(tmp_path / f"{name}.json") for name in "ab"]
    for out in outs:
        result = run_evaluate(f"--workdir={gaussian_workdir}", "--num_samples=2000", f"--out={out}")
        assert result.returncode == 0, result.stderr
    scores = read_json(outs[0])
    assert scores["step"] == 150 and scores["num_samples"] == 2000
    assert np.array(scores["cov"]).shape == (2, 2)
    np.testing.assert_allclose(scores["target_mean"], [1.0, 2.0])
    expected = wasserstein2_gaussian(
        np.array(scores["mean"]),
        np.array(scores["cov"]),
        np.array(scores["target_mean"]),
        np.array(scores["target_cov"]),
    )
    assert scores["w2"] == pytest.approx(expected, rel=1e-6)
    assert scores == read_json(outs[1])  # a fixed sampling key: same score every time


@pytest.mark.parametrize("name", [*catalog.DATA_SETS, "pokemon/sprites", "my_folder"])
def test_scores_are_those_the_catalog_names(name, monkeypatch, caplog):
    # Stand-ins that are always found: which networks are looked for is the table's call.
    for network in ("classifier", "inception"):
        stand_in = FeatureNetwork(network, network, lambda images: None)
        monkeypatch.setattr(evaluation, f"{network}_network", lambda *_, n=stand_in: n)
    evaluator = Evaluator(replace(gaussian_config(), data=DataConfig(name)))
    fits = catalog.kind_of(name).scores
    prefixes = [prefix for prefix, _ in evaluator.feature_networks()]
    networks = ((catalog.CLASSIFIER, ""), (catalog.INCEPTION, "inception_"))
    assert prefixes == [prefix for family, prefix in networks if family in fits]
    assert evaluator.checks_memorisation == (catalog.MEMORISATION in fits)
    # An image set the table knows has no labels is not read to find that out.
    unlabelled = catalog.INCEPTION in fits and catalog.CLASSIFIER not in fits
    assert ("has no class labels" in caplog.text) == unlabelled


def test_the_gaussian_gets_its_w2_and_nothing_else():
    config = gaussian_config()
    gan = build_gan(config)
    scores, pairs = Evaluator(config, num_samples=100).scores_and_pairs(gan, create_state(gan, 0))
    assert pairs is None
    assert set(scores) == {"mean", "cov", "target_mean", "target_cov", "w2", "num_samples"}
    # The real floor is MNIST's alone (`evaluation.real_mnist_floor`).
    floors = [n for n, kind in catalog.DATA_SETS.items() if catalog.REAL_FLOOR in kind.scores]
    assert floors == ["mnist"]


def test_mnist_checkpoint_scores(mnist_workdirs, mnist_classifier_dir, mnist_data_dir):
    workdir = mnist_workdirs["mlp_gan_mnist"]
    result = run_evaluate(
        f"--workdir={workdir}",
        "--num_samples=1000",
        f"--classifier_dir={mnist_classifier_dir}",
        f"--data_dir={mnist_data_dir}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scores = read_json(eval_file(workdir, 20))
    assert scores["experiment"] == "mlp_gan_mnist" and scores["step"] == 20
    # Twenty steps in, G is far from MNIST: a large distance, but every value in range.
    # Seeds 0-7 (GAN and a whole-set classifier alike) on an AMD EPYC (Zen 4, AVX-512),
    # natively and without FMA: FID 533-769; with the fixture's half-set classifier (seed
    # 0), 481. A bound of 10 leaves a margin of over 40x.
    assert scores["fid"] > 10
    assert 1.0 <= scores["inception_score"] <= 10.0
    assert sum(scores["class_histogram"]) == pytest.approx(1.0, abs=1e-3)
    assert 0 <= scores["covered_classes"] <= 10
    assert 0.0 < scores["nn_l1_min"] <= scores["nn_l1_mean"] < 1.0
    assert "label_accuracy" not in scores
    # The same features' KID, precision, recall, density and coverage, all in range: a
    # G twenty steps in is far from every digit (small precision and coverage).
    assert scores["kid"] > 0 and scores["kid_std"] >= 0
    for name in ("precision", "recall", "coverage"):
        assert 0.0 <= scores[name] <= 1.0, name
    assert scores["precision"] < 0.5 and scores["coverage"] < 0.5
    assert scores["density"] >= 0.0
    # Named after the JSON file, beside it (`--out` chooses both).
    grid = Image.open(os.path.splitext(eval_file(workdir, 20))[0] + "_nearest.png")
    assert grid.size[0] > grid.size[1] > 0  # 64 pairs: 16 columns, 8 rows


def test_conditional_checkpoint_scores_label_accuracy(mnist_workdirs, mnist_classifier_dir):
    workdir = mnist_workdirs["cgan_mnist"]
    out = os.path.join(workdir, "scores.json")
    result = run_evaluate(
        f"--workdir={workdir}",
        "--num_samples=200",
        f"--classifier_dir={mnist_classifier_dir}",
        f"--out={out}",
        "--memorisation_queries=0",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    scores = read_json(out)
    assert 0.0 <= scores["label_accuracy"] <= 1.0
    assert "nn_l1_mean" not in scores


def test_training_logs_scores_every_epoch(mnist_workdirs):
    with open(metrics_file(mnist_workdirs["mlp_gan_mnist"])) as f:
        records = [json.loads(line) for line in f]
    assert [r["epoch"] for r in records] == [1, 2]
    for record in records:
        assert record["eval/fid"] > 0
        assert 1.0 <= record["eval/inception_score"] <= 10.0
        assert 0.0 < record["eval/nn_l1_mean"] < 1.0


def test_real_floor(mnist_classifier_dir, mnist_data_dir, tmp_path):
    out = str(tmp_path / "floor.json")
    result = run_evaluate(
        "--real_floor",
        f"--classifier_dir={mnist_classifier_dir}",
        f"--data_dir={mnist_data_dir}",
        f"--out={out}",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    floor = read_json(out)
    # With the fixture's classifier (one epoch over 30,000 examples) of seeds 0-7 on an
    # AMD EPYC (Zen 4, AVX-512): FID 0.37-0.47 (bound 10: 21x), inception score
    # 9.062-9.179 (bound 8.5: 5x the 0.117 spread below the worst), all 10 digits,
    # accuracy 0.9806-0.9831 (bound 0.97, as in metrics_mnist_classifier_test).
    assert floor["fid_train_vs_test"] < 10
    assert floor["inception_score"] > 8.5
    assert floor["covered_classes"] == 10
    assert floor["label_accuracy_test"] >= 0.97


def test_errors_are_one_line(mnist_workdirs, tmp_path):
    result = run_evaluate()
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last == "error: --workdir is required (or --real_floor)"
    result = run_evaluate(
        f"--workdir={mnist_workdirs['mlp_gan_mnist']}", f"--classifier_dir={tmp_path}"
    )
    assert result.returncode == 1
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("error: no MNIST classifier") and "train_classifier" in last


def test_large_num_samples_is_scored_in_batches(gaussian_workdir, tmp_path):
    # 2,000,000 points: 400 generator calls; before streaming, one array of them all.
    out = str(tmp_path / "many.json")
    result = run_evaluate(f"--workdir={gaussian_workdir}", "--num_samples=2000000", f"--out={out}")
    assert result.returncode == 0, result.stderr[-3000:]
    scores = read_json(out)
    assert scores["num_samples"] == 2_000_000
    assert np.all(np.linalg.eigvalsh(np.array(scores["cov"])) > 0)
    assert np.isfinite(scores["w2"]) and scores["w2"] > 0


def test_unwritable_out_fails_before_scoring(gaussian_workdir, tmp_path):
    regular = tmp_path / "file.txt"
    regular.write_text("")
    # Paths that fail even for root (whom permission bits do not stop).
    for out, reason in [
        (regular / "scores.json", "is a file, not a directory"),
        (tmp_path, "it is a directory"),
    ]:
        result = run_evaluate(f"--workdir={gaussian_workdir}", f"--out={out}")
        assert reason in assert_one_line_error(result, f"error: cannot write {out}")
        assert result.stdout == ""  # refused before any scoring
    # The default path, <workdir>/eval_<step>.json, blocked: the message names --out.
    workdir = shutil.copytree(gaussian_workdir, tmp_path / "run")
    os.mkdir(eval_file(workdir, 150))
    line = assert_one_line_error(run_evaluate(f"--workdir={workdir}"), "error: cannot write")
    assert "eval_150.json" in line and "--out" in line


def test_scores_are_printed_when_the_json_cannot_be_written(gaussian_workdir, tmp_path):
    # A write that fails after the up-front check passed (a disk filling up, a directory
    # removed meanwhile), simulated by turning the check off.
    code = (
        "from gan_jax import command, evaluate, workdir; "
        "workdir.ensure_writable = lambda *args: None; "
        "command.run(evaluate.main)"
    )
    regular = tmp_path / "file.txt"
    regular.write_text("")
    out = regular / "scores.json"
    result = subprocess.run(
        [sys.executable, "-c", code, f"--workdir={gaussian_workdir}", f"--out={out}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    line = assert_one_line_error(result, f"error: cannot write {out}")
    assert "printed on stdout" in line
    summary, full = result.stdout.strip().splitlines()
    assert summary.startswith("gaussian_2d step 150: w2 ")
    printed = json.loads(full)
    assert printed["num_samples"] == 10_000 and np.array(printed["cov"]).shape == (2, 2)


def test_scoring_mnist_without_a_classifier_trains_one_first(
    mnist_data_dir, tmp_path, monkeypatch, caplog
):
    # An empty cache: the default place holds no classifier. A short training stands in
    # for the 8-epoch default (the same code path, fewer epochs and examples).
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(
        domain_classifier,
        "DEFAULT_TRAINING",
        mnist_classifier.TrainingSettings(num_epochs=1, num_examples=4000),
    )
    config = mlp_gan_mnist.config(data_dir=mnist_data_dir)
    Evaluator(config, data_dir=mnist_data_dir, inception_weights="none").feature_networks()
    directory = mnist_classifier.default_classifier_dir()
    assert directory.startswith(str(tmp_path))
    _, info = mnist_classifier.load_classifier(directory)
    assert info["num_examples"] == 4000 and info["test_accuracy"] > 0.8  # chance: 0.1
    assert "training one for the scores" in caplog.text
    # Found, not trained again.
    caplog.clear()
    Evaluator(config, data_dir=mnist_data_dir, inception_weights="none").feature_networks()
    assert "training one" not in caplog.text
