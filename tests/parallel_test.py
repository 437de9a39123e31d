"""Data parallelism over local devices: a run on 4 (fake CPU) devices equals the run on
one, a sweep splits its members over them, and device counts that cannot work are
one-line errors."""

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable

import jax
import pytest
from cli_runs import MLP_MNIST, REPO, assert_one_line_error, run, wait_for
from generated_images import prepare_sprites

from gan_jax import parallel
from gan_jax.checkpoint import restore_gan, state_digest
from gan_jax.errors import UserError
from gan_jax.workdir import checkpoints_dir, metrics_file
from gan_jax.xla_flags import with_patient_collectives

pytestmark = pytest.mark.slow  # several CPU devices and processes, each a subprocess

# Four device threads on two busy cores can arrive far apart at a collective: the same
# patience the commands take, so a slow thread waits instead of aborting the process.
FOUR_DEVICES = {
    **os.environ,
    "XLA_FLAGS": with_patient_collectives("--xla_force_host_platform_device_count=4"),
}


@pytest.fixture(scope="module")
def sprites_dir(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("sprites")
    prepare_sprites(root, str(root / "tfds"), count=8)
    return str(root / "tfds")


def test_four_devices_train_as_one_does(mnist_data_dir, sprites_dir):
    script = os.path.join(REPO, "tests", "data_parallel_runs.py")
    result = subprocess.run(
        [sys.executable, script, mnist_data_dir, sprites_dir],
        cwd=REPO,
        env={**FOUR_DEVICES, "PYTHONPATH": REPO},
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["devices"] == 4
    for name in ("mlp_gan_mnist_deep", "dcgan_pokemon"):
        run = report[name]
        assert run["mesh_devices"] == 4, name
        # Same batches, same random draws, BatchNorm statistics over the global batch:
        # a step's losses and D's outputs agree to float32 rounding (per-device
        # statistics would move them by percents), and so do the running statistics.
        assert run["metrics"] < 1e-5, (name, run)
        assert run["batch_stats"] < 1e-5, (name, run)
        # Adam's first update is about +-lr per parameter whatever the gradient's size,
        # so rounding in a near-zero gradient can move a parameter by up to 2 lr (the
        # DCGAN's lr is 0.005); parameters agree less closely than losses.
        assert run["state"] < 1e-3, (name, run)
        # Its checkpoint restores on one device, to the very bits it trained.
        assert run["restored"] == 0 and run["restored_devices"] == 1, (name, run)
    # Members split over the devices, 1 each, train 20 steps as they do together on one.
    assert report["sweep"]["difference"] < 1e-5, report["sweep"]


def test_a_batch_that_does_not_split_over_the_devices_is_one_line(mnist_data_dir, tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            MLP_MNIST,
            f"--workdir={tmp_path}",
            f"--data_dir={mnist_data_dir}",
            "--num_devices=3",
        ],
        cwd=REPO,
        env=FOUR_DEVICES,
        capture_output=True,
        text=True,
        timeout=300,
    )
    line = assert_one_line_error(result, "error:")
    assert "batch_size 100 does not split over num_devices=3" in line
    assert not os.path.exists(checkpoints_dir(tmp_path))


def test_device_counts():
    assert jax.local_device_count() == 1  # the test process has the one CPU device
    assert parallel.device_count(0, 100, "batch_size 100") == 1
    assert parallel.device_count(1, 7, "batch_size 7") == 1
    with pytest.raises(UserError, match="num_devices=2, but the run has 1 CPU device"):
        parallel.device_count(2, 100, "batch_size 100")
    with pytest.raises(UserError, match="must be 0"):
        parallel.device_count(-1, 100, "batch_size 100")
    assert parallel.plan(0, 100, "batch_size 100").mesh is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_two_processes(argv: Callable[[int], list[str]]) -> list[subprocess.Popen]:
    """Processes 0 and 1 of a run on this machine, 2 fake CPU devices each; `argv(i)` is
    process i's command line after the interpreter."""
    env = {
        **os.environ,
        "XLA_FLAGS": with_patient_collectives("--xla_force_host_platform_device_count=2"),
    }
    env["PYTHONPATH"] = REPO
    return [
        subprocess.Popen(
            [sys.executable, *argv(i)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in (0, 1)
    ]


def test_two_processes_train_one_run_and_one_cpu_restores_it(mnist_data_dir, tmp_path):
    """Two processes on this machine (2 fake CPU devices each) through jax.distributed:
    one run over their 4 devices, one set of files, restorable by a single process."""
    workdir = str(tmp_path / "run")
    address = f"127.0.0.1:{_free_port()}"
    script = os.path.join(REPO, "tests", "multi_process_run.py")
    processes = _start_two_processes(lambda i: [script, address, str(i), mnist_data_dir, workdir])
    outputs = [p.communicate(timeout=600) for p in processes]
    for process, (_, err) in zip(processes, outputs, strict=True):
        assert process.returncode == 0, err[-3000:]
        assert "Traceback" not in err  # nor at exit, where each process leaves the run
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    # Each process read only the examples its own 2 devices hold: its half of the 400.
    assert reports[0].pop("rows_read") == list(range(200))
    assert reports[1].pop("rows_read") == list(range(200, 400))
    assert reports[0] == reports[1]  # the same parameters and optimizer states in both
    assert reports[0]["devices"] == 4 and reports[0]["step"] == 8
    # One writer: each epoch's record once, one checkpoint of the last step.
    with open(metrics_file(workdir)) as f:
        assert [json.loads(line)["step"] for line in f] == [4, 8]
    assert os.listdir(checkpoints_dir(workdir)) == ["8"]
    _, restored, step = restore_gan(workdir)  # this process: one CPU device
    assert step == 8 and state_digest(restored) == reports[0]["digest"]
    out = str(tmp_path / "samples.png")
    sampled = run("gan_jax.sample", f"--workdir={workdir}", f"--out={out}")
    assert sampled.returncode == 0, sampled.stderr[-2000:]
    assert os.path.exists(out)


def _start_endless_run(mnist_data_dir: str, workdir: str, *flags: str) -> list[subprocess.Popen]:
    """Both processes of a long deep-MLP run over 4 devices; returns once the first epoch's
    record is written."""
    address = f"127.0.0.1:{_free_port()}"
    processes = _start_two_processes(
        lambda i: [
            os.path.join(REPO, "experiments", "mlp_gan_mnist_deep.py"),
            f"--coordinator_address={address}",
            "--num_processes=2",
            f"--process_id={i}",
            f"--workdir={workdir}",
            f"--data_dir={mnist_data_dir}",
            "--num_examples=400",
            "--num_epochs=100000",
            *flags,
        ]
    )
    metrics = metrics_file(workdir)
    wait_for(lambda: os.path.exists(metrics) and os.path.getsize(metrics) > 0, timeout=300)
    return processes


def test_a_signal_to_one_process_stops_both_at_one_step_with_one_checkpoint(
    mnist_data_dir, tmp_path
):
    workdir = str(tmp_path)
    processes = _start_endless_run(mnist_data_dir, workdir)
    processes[1].send_signal(signal.SIGTERM)  # process 0 gets no signal
    outputs = [p.communicate(timeout=120) for p in processes]
    assert [p.returncode for p in processes] == [143, 143], outputs[0][1][-2000:]
    messages = [err.strip().splitlines()[-1] for _, err in outputs]
    assert messages[0] == messages[1], messages
    step = int(messages[0].split(" at step ")[1].split(":")[0])
    assert os.listdir(checkpoints_dir(workdir)) == [str(step)]


@pytest.mark.parametrize(
    ("victim", "how", "expected"),
    [
        # Its connections close: the next step's collective fails at once.
        (1, signal.SIGKILL, "error: a step shared with the run's other processes failed"),
        # The coordinator hangs, connections open: only the silence gives it away.
        (0, signal.SIGSTOP, "error: process 0, the run's coordinator, has been silent for 5 s"),
    ],
    ids=["killed", "frozen_coordinator"],
)
def test_a_peer_lost_mid_run_stops_the_other_with_one_line(
    mnist_data_dir, tmp_path, victim, how, expected
):
    processes = _start_endless_run(mnist_data_dir, str(tmp_path), "--peer_silence=5")
    survivor = processes[1 - victim]
    processes[victim].send_signal(how)
    try:
        out, err = survivor.communicate(timeout=60)  # JAX's own abort comes after 100 s
        result = subprocess.CompletedProcess(survivor.args, survivor.returncode, out, err)
    finally:
        processes[victim].kill()
        processes[victim].communicate()
    line = assert_one_line_error(result, expected)
    assert line.endswith("start the run again on every process to resume from it")
    assert os.listdir(checkpoints_dir(tmp_path)) == []  # none was due


def test_a_process_whose_peer_never_starts_stops_with_one_line(tmp_path):
    result = run(
        os.path.join(REPO, "experiments", "mlp_gan_mnist_deep.py"),
        f"--coordinator_address=127.0.0.1:{_free_port()}",
        "--num_processes=2",
        "--process_id=0",
        "--peer_timeout=5",
        f"--workdir={tmp_path}",
        timeout=60,
    )
    line = assert_one_line_error(result, "error: the run of 2 processes at 127.0.0.1:")
    assert "did not start within 5 s" in line
