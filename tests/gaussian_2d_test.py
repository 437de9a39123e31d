"""experiments/gaussian_2d.py end to end with the document's defaults."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from cli_runs import REPO

from gan_jax.workdir import gaussian_fit_file, metrics_file

SCRIPT = os.path.join(REPO, "experiments", "gaussian_2d.py")


@pytest.mark.slow
def test_defaults_reach_equilibrium_and_fit_the_gaussian(tmp_path):
    result = subprocess.run(
        [sys.executable, SCRIPT, f"--workdir={tmp_path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "W2 to the target Gaussian" in result.stdout
    # The run ends by saying where its outputs are and how to use them.
    last = result.stdout.strip().splitlines()[-6:]
    assert last[0].startswith("finished in ") and "at step 2500: loss_d" in last[0]
    assert f"{tmp_path}/samples/epoch_0020.png" in last[1]
    assert f"{tmp_path}/checkpoints/2500" in last[3]
    assert last[4].split() == [
        "sample",
        "it",
        "python",
        "-m",
        "gan_jax.sample",
        f"--workdir={tmp_path}",
        "--out=samples.png",
    ]
    with open(metrics_file(tmp_path)) as f:
        records = [json.loads(line) for line in f]
    assert [r["epoch"] for r in records] == list(range(1, 21))
    assert records[-1]["step"] == 2500
    # D2L reports loss_D 0.693, loss_G 0.693. Over seeds 0-7 on an AMD EPYC (Zen 4,
    # AVX-512), natively and with XLA_FLAGS=--xla_cpu_max_isa=AVX (no FMA: other float
    # rounding), the last epoch's |loss - log 2| is at most 0.0011 (loss_D) and 0.0081
    # (loss_G; single epochs near the end spike to 0.016). Bound 0.03: 3.7x the largest
    # final deviation; epoch 1 is at loss_D 0.44, loss_G 1.41, and a D that wins is far below.
    assert records[-1]["loss_d"] == pytest.approx(np.log(2), abs=0.03)
    assert records[-1]["loss_g"] == pytest.approx(np.log(2), abs=0.03)
    with open(gaussian_fit_file(str(tmp_path))) as f:
        fit = json.load(f)
    np.testing.assert_allclose(fit["target_cov"], [[1.01, 1.95], [1.95, 4.25]], atol=1e-9)
    # W2 after 2,500 steps is chaotic in the seed and in the CPU's float rounding: seed 0
    # gives 0.222 on AVX-512 (Intel Xeon, AMD EPYC Zen 4), 0.195 without FMA, 0.547 on an
    # AVX2-only AMD EPYC. Seeds 0-7 on the Zen 4 EPYC, both roundings: 0.144-0.910, median
    # 0.23 (seed 2 sticks at 0.910 in both; D2L's own code reaches 1.09). Bound 1.5: 1.65x
    # the largest W2 measured, and still below every broken outcome: an untrained G scores
    # 3.15-3.20, a point mass at the target mean 2.29, the target's shape at mean 0 2.24.
    assert fit["w2"] < 1.5
    # The run folder's layout as the README documents it, spelled out on purpose: every
    # other test asks gan_jax.workdir for these paths, so this one pins the names.
    for name in ("losses.png", "config.json", "samples/epoch_0020.png", "checkpoints/2500"):
        assert os.path.exists(tmp_path / name), name
    assert os.listdir(tmp_path / "tensorboard")
    # Rerunning a finished run resumes at its end and trains nothing more.
    again = subprocess.run(
        [sys.executable, SCRIPT, f"--workdir={tmp_path}"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resuming at step 2500" in again.stderr


@pytest.mark.slow
def test_bad_flag_is_one_line_error(tmp_path):
    result = subprocess.run(
        [sys.executable, SCRIPT, f"--workdir={tmp_path}", "--lr_d=-1"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "--lr_d must be positive" in result.stderr
    assert "Traceback" not in result.stderr
