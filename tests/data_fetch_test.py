"""Fetching a data source with a package manager's command."""

import sys

import pytest

from gan_jax.data import fetch


def test_returns_the_path_the_command_wrote(tmp_path):
    target = tmp_path / "source.tgz"
    command = [sys.executable, "-c", f"open({str(target)!r}, 'w').write('x')"]
    assert fetch.fetch_with(command, "npm pack x", str(target)) == str(target)


def test_failure_names_the_command_and_its_last_error_line(tmp_path):
    command = [sys.executable, "-c", "import sys; sys.exit('first\\nno route to host')"]
    with pytest.raises(RuntimeError, match=r"^`pip download x` failed: no route to host$"):
        fetch.fetch_with(command, "pip download x", str(tmp_path / "x.whl"))


def test_success_without_the_file_is_a_failure(tmp_path):
    with pytest.raises(RuntimeError, match="failed: no output"):
        fetch.fetch_with([sys.executable, "-c", "pass"], "npm pack x", str(tmp_path / "x.tgz"))
