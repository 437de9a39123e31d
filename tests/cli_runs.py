"""Running the project's commands as a user does: real subprocesses, real signals."""

import os
import signal
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GAUSSIAN = os.path.join(REPO, "experiments", "gaussian_2d.py")
MLP_MNIST = os.path.join(REPO, "experiments", "mlp_gan_mnist.py")


def command(target: str, *args: str) -> list[str]:
    """argv for an experiment file or a `-m` module name (e.g. 'gan_jax.sample')."""
    if target.endswith(".py"):
        return [sys.executable, target, *args]
    return [sys.executable, "-m", target, *args]


def run(target: str, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        command(target, *args), cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def prepare(*args: str) -> subprocess.CompletedProcess:
    """Runs `python -m gan_jax.data.prepare ARGS` as a user would."""
    command = [sys.executable, "-m", "gan_jax.data.prepare", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def start(target: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        command(target, *args),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_for(predicate, timeout: float = 120, interval: float = 0.05) -> None:
    """Polls `predicate()` until it is true; fails the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {predicate}")
        time.sleep(interval)


def interrupt(process: subprocess.Popen, signum: int = signal.SIGTERM, timeout: float = 120):
    """Sends `signum`; returns (returncode, stdout, stderr)."""
    process.send_signal(signum)
    out, err = process.communicate(timeout=timeout)
    return process.returncode, out, err


def assert_one_line_error(result: subprocess.CompletedProcess, start: str) -> str:
    """rc 1, no traceback, and one `error:` line, the last on stderr; returns that line."""
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and result.stderr.strip().splitlines()[-1] == errors[0]
    assert errors[0].startswith(start), errors[0]
    return errors[0]
