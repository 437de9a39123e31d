"""The layering of the code (import-linter contracts in pyproject.toml) and each command's flags."""

import ast
import os
import pathlib
import re
import subprocess
import sys

import pytest
from cli_runs import REPO

# Modules that may read flags: the commands.
COMMANDS = {
    "gan_jax/command.py",
    "gan_jax/run_experiment.py",
    "gan_jax/sample.py",
    "gan_jax/evaluate.py",
    "gan_jax/data/prepare.py",
    "gan_jax/metrics/train_classifier.py",
}


def test_import_contracts_hold():
    lint_imports = os.path.join(os.path.dirname(sys.executable), "lint-imports")
    result = subprocess.run(
        [lint_imports, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def _imports_absl_flags(path: pathlib.Path) -> bool:
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            names = {f"{node.module}.{alias.name}" for alias in node.names} | {node.module}
        elif isinstance(node, ast.Import):
            names = {alias.name for alias in node.names}
        else:
            continue
        if "absl.flags" in names:
            return True
    return False


def test_only_commands_read_flags():
    root = pathlib.Path(REPO)
    readers = {
        str(path.relative_to(root))
        for path in (root / "gan_jax").rglob("*.py")
        if _imports_absl_flags(path)
    }
    assert readers <= COMMANDS, sorted(readers - COMMANDS)


def _flags_listed(*command: str) -> set[str]:
    """The flag names `--helpfull` lists."""
    result = subprocess.run(
        [sys.executable, *command, "--helpfull"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "helpfull" in result.stdout, result.stderr[-2000:]  # absl exits 1 after help
    return set(re.findall(r"^\s+--(?:\[no\])?(\w+):", result.stdout, re.MULTILINE))


# A flag of each other command that must not show up.
_EXPERIMENT = ("eval_every_epochs", "start_over", "num_grid_samples", "lr")
_SAMPLE = ("interpolation_steps", "label")
_EVALUATE = ("real_floor",)
_PREPARE = ("manual_path", "source", "cache_dir")
_CLASSIFIER = ("min_accuracy", "max_shift", "out_dir")
_RESTORE = ("step",)


@pytest.mark.parametrize(
    ("command", "own", "foreign"),
    [
        (
            ("-m", "gan_jax.data.prepare"),
            ("manual_path", "data_dir"),
            _EXPERIMENT + _SAMPLE + _EVALUATE + _CLASSIFIER + _RESTORE + ("workdir",),
        ),
        (
            ("-m", "gan_jax.sample"),
            ("workdir", "step", "label"),
            _EXPERIMENT + _EVALUATE + _PREPARE + _CLASSIFIER + ("data_dir",),
        ),
        (
            ("-m", "gan_jax.evaluate"),
            ("workdir", "step", "real_floor", "classifier_dir"),
            _EXPERIMENT + _SAMPLE + _PREPARE + _CLASSIFIER,
        ),
        (
            ("-m", "gan_jax.metrics.train_classifier"),
            ("min_accuracy", "num_epochs"),
            _EXPERIMENT + _SAMPLE + _EVALUATE + _PREPARE + _RESTORE + ("workdir",),
        ),
        (
            ("experiments/mlp_gan_mnist.py",),
            ("lr", "smooth", "eval_every_epochs", "workdir"),
            _SAMPLE + _EVALUATE + _PREPARE + _CLASSIFIER + _RESTORE,
        ),
    ],
)
@pytest.mark.slow
def test_each_command_lists_only_its_own_flags(command, own, foreign):
    listed = _flags_listed(*command)
    assert set(own) <= listed, set(own) - listed
    assert not set(foreign) & listed
