"""Wall time of a sweep against one run, end to end through the experiment's command.

  python benchmarks/sweep_wall_time.py [--experiment=gaussian_2d] [--members=64]
      [--sweep='seed=0:64'] [experiment flags ...]

Runs `python experiments/<experiment>.py` once (seed 0) and once with `--sweep`
(by default `seed=0:<members>`), each in a fresh workdir, and prints one JSON line:
both wall times (process start to exit: compilation, training, pictures,
checkpoints, the final scores), their ratio, and the ratio per member. Other
arguments go to both commands (e.g. `--num_epochs=5`).
"""

import json
import os
import platform
import subprocess
import sys
import tempfile
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parse(argv: list[str]) -> tuple[str, int, str | None, list[str]]:
    experiment, members, sweep, rest = "gaussian_2d", 64, None, []
    for arg in argv:
        if arg.startswith("--experiment="):
            experiment = arg.split("=", 1)[1]
        elif arg.startswith("--members="):
            members = int(arg.split("=", 1)[1])
        elif arg.startswith("--sweep="):
            sweep = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    if members <= 0:
        sys.exit("error: --members must be positive")
    if not os.path.exists(os.path.join(_REPO, "experiments", f"{experiment}.py")):
        sys.exit(f"error: no experiment {experiment!r} in experiments/")
    return experiment, members, sweep, rest


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=_REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"error: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    experiment, members, sweep, rest = _parse(sys.argv[1:])
    sweep = sweep or f"seed=0:{members}"
    script = os.path.join("experiments", f"{experiment}.py")
    with tempfile.TemporaryDirectory() as tmp:
        one = _timed([sys.executable, script, f"--workdir={tmp}/one", *rest])
        many = _timed([sys.executable, script, f"--workdir={tmp}/sweep", f"--sweep={sweep}", *rest])
        with open(os.path.join(tmp, "sweep", "sweep.json")) as f:
            count = len(json.load(f)["members"])
    print(
        json.dumps(
            {
                "experiment": experiment,
                "sweep": sweep,
                "flags": rest,
                "members": count,
                "one_run_s": round(one, 2),
                "sweep_s": round(many, 2),
                "sweep_over_one_run": round(many / one, 2),
                "seconds_per_member": round(many / count, 3),
                "cpu": platform.processor() or platform.machine(),
                "cores": os.cpu_count(),
            }
        ),
        flush=True,
    )


if __name__ == "__main__":
    main()
