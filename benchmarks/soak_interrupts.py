"""Soak test: interrupt one training run at random moments, resume it, compare with an unbroken run.

  python benchmarks/soak_interrupts.py [--interrupts=20] [--seed=0] [--experiment=mlp_gan_mnist]
      [--workdir=/tmp/soak] [-- extra experiment flags]

Trains the experiment once without a break, then again in a second workdir where
each of `--interrupts` attempts is stopped with SIGTERM, SIGINT or SIGKILL (in
turn) and restarted with the same command: about a quarter at a random moment of
start-up (imports, data loading, compilation), the rest when the run reaches a
random checkpoint step, most of them while that save is in flight (the default
flags save every 50 steps). Finally it lets the run finish and checks that the final parameters, the
whole `metrics.jsonl` (wall-clock `examples_per_sec` aside) and every sample grid
equal the unbroken run's. Prints one JSON line per interruption and a summary;
exits 1 if anything differs. Needs MNIST prepared for the MNIST experiments.
"""

import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, _REPO)

from gan_jax import workdir as workdir_lib  # noqa: E402
from gan_jax.checkpoint import restore_gan, state_digest  # noqa: E402
from gan_jax.metric_writer import read_metrics  # noqa: E402

# 9,600 steps of the Udacity MLP GAN (16 epochs of 600), a save every 50 steps.
DEFAULT_FLAGS = [
    "--num_epochs=16",
    "--checkpoint_every_steps=50",
    "--steps_per_dispatch=50",
    "--keep_checkpoints=3",
]
SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGKILL)


def _parse(argv: list[str]) -> dict:
    options = {"interrupts": 20, "seed": 0, "experiment": "mlp_gan_mnist", "workdir": "/tmp/soak"}
    extra = []
    for i, arg in enumerate(argv):
        if arg == "--":
            extra = argv[i + 1 :]
            break
        name, _, value = arg.lstrip("-").partition("=")
        if name not in options:
            sys.exit(f"error: unknown flag {arg}")
        options[name] = type(options[name])(value)
    options["flags"] = DEFAULT_FLAGS + extra
    return options


def _command(experiment: str, workdir: str, flags: list[str]) -> list[str]:
    script = os.path.join(_REPO, "experiments", f"{experiment}.py")
    return [sys.executable, script, f"--workdir={workdir}", *flags]


def _records(workdir: str) -> list[dict]:
    records = read_metrics(workdir_lib.metrics_file(workdir))
    return [{k: v for k, v in r.items() if k != "examples_per_sec"} for r in records]


def _grids(workdir: str) -> dict[str, bytes]:
    return {os.path.basename(p): open(p, "rb").read() for p in workdir_lib.sample_grids(workdir)}


def _steps_on_disk(workdir: str) -> list[int]:
    return workdir_lib.checkpoint_steps(workdir)


def _newest_step(workdir: str) -> int:
    """The newest step being saved or saved (temporary folders count): -1 if none."""
    folder = workdir_lib.checkpoints_dir(workdir)
    if not os.path.isdir(folder):
        return -1
    steps = [int(n.split(".")[0]) for n in os.listdir(folder) if n.split(".")[0].isdigit()]
    return max(steps, default=-1)


def _saving(workdir: str) -> bool:
    folder = workdir_lib.checkpoints_dir(workdir)
    return os.path.isdir(folder) and any("tmp" in n for n in os.listdir(folder))


def main(argv: list[str]) -> int:
    options = _parse(argv)
    rng = random.Random(options["seed"])
    unbroken = os.path.join(options["workdir"], "unbroken")
    interrupted = os.path.join(options["workdir"], "interrupted")
    for path in (unbroken, interrupted):
        shutil.rmtree(path, ignore_errors=True)
    started = time.perf_counter()
    process = subprocess.Popen(
        _command(options["experiment"], unbroken, options["flags"]),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    checkpoints = workdir_lib.checkpoints_dir(unbroken)
    while process.poll() is None and not (os.path.isdir(checkpoints) and os.listdir(checkpoints)):
        time.sleep(0.05)
    start_up_seconds = time.perf_counter() - started  # to the first checkpoint
    if process.wait():
        sys.exit("error: the unbroken run failed")
    unbroken_seconds = time.perf_counter() - started
    total_steps = _steps_on_disk(unbroken)[-1]
    # A quarter of the attempts end during start-up (imports, data, compilation); the
    # rest when the run reaches a random checkpoint step, the moment that save starts
    # (its temporary folder appears) or, if we look too late, just after it.
    targets = sorted(rng.sample(range(1, total_steps // 50), options["interrupts"]))
    targets = [50 * t if rng.random() >= 0.25 else None for t in targets]

    started = time.perf_counter()
    outcomes = []
    for i, target in enumerate(targets):
        signum = SIGNALS[i % len(SIGNALS)]
        process = subprocess.Popen(
            _command(options["experiment"], interrupted, options["flags"]),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        if target is None:
            time.sleep(rng.uniform(0.3, start_up_seconds))
        else:
            while process.poll() is None and _newest_step(interrupted) < target:
                time.sleep(0.002)
        saving = _saving(interrupted)
        finished = process.poll() is not None
        if not finished:
            process.send_signal(signum)
        _, stderr = process.communicate(timeout=600)
        expected = {signal.SIGKILL: -signal.SIGKILL}.get(signum, 128 + signum)
        ok = process.returncode in (0, expected) and "Traceback" not in stderr
        message = [x for x in stderr.splitlines() if x.startswith(("interrupted", "error"))]
        outcome = {
            "attempt": i + 1,
            "signal": signal.Signals(signum).name,
            "target_step": target if target is not None else "start-up",
            "while_saving": saving,
            "finished_first": finished,
            "returncode": process.returncode,
            "message": message[-1] if message else "",
            "ok": ok,
        }
        outcomes.append(outcome)
        print(json.dumps(outcome), flush=True)
        if not ok:
            print(stderr[-3000:], file=sys.stderr)
    final = subprocess.run(
        _command(options["experiment"], interrupted, options["flags"]),
        capture_output=True,
        text=True,
    )
    soak_seconds = time.perf_counter() - started

    _, a, step_a = restore_gan(unbroken)
    _, b, step_b = restore_gan(interrupted)
    same_params = step_a == step_b and state_digest(a) == state_digest(b)
    summary = {
        "experiment": options["experiment"],
        "flags": options["flags"],
        "interruptions": len(outcomes),
        "by_signal": {
            s.name: sum(o["signal"] == s.name for o in outcomes if not o["finished_first"])
            for s in SIGNALS
        },
        "while_saving": sum(o["while_saving"] for o in outcomes),
        "survived": sum(o["ok"] for o in outcomes),
        "final_returncode": final.returncode,
        "final_step": step_b,
        "params_identical": bool(same_params),
        "metrics_identical": _records(unbroken) == _records(interrupted),
        "metrics_records": len(_records(interrupted)),
        "grids_identical": _grids(unbroken) == _grids(interrupted),
        "unbroken_seconds": round(unbroken_seconds, 1),
        "start_up_seconds": round(start_up_seconds, 1),
        "soak_seconds": round(soak_seconds, 1),
    }
    print(json.dumps(summary, indent=2))
    passed = (
        summary["survived"] == len(outcomes)
        and final.returncode == 0
        and same_params
        and summary["metrics_identical"]
        and summary["grids_identical"]
    )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
