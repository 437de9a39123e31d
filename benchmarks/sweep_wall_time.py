"""Wall time of a sweep against one run, end to end through the experiment's command.

  python benchmarks/sweep_wall_time.py [--experiment=gaussian_2d] [--members=64]
      [--sweep='seed=0:64'] [--repeats=3] [experiment flags ...]

Runs `python experiments/<experiment>.py` (seed 0) and the same with `--sweep` (by
default `seed=0:<members>`), each in a fresh workdir, `--repeats` times in turn, and
prints one JSON line: the median wall times (process start to exit: compilation,
training, pictures, checkpoints, the final scores), their ratio, and the ratio per
member. Other arguments go to both commands (e.g. `--num_epochs=5`; with
`--compilation_cache=` both compile everything, as on a first start).
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

from gan_jax.workdir import sweep_file

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _parse(argv: list[str]) -> tuple[str, int, str | None, int, list[str]]:
    experiment, members, sweep, repeats, rest = "gaussian_2d", 64, None, 3, []
    for arg in argv:
        if arg.startswith("--experiment="):
            experiment = arg.split("=", 1)[1]
        elif arg.startswith("--members="):
            members = int(arg.split("=", 1)[1])
        elif arg.startswith("--sweep="):
            sweep = arg.split("=", 1)[1]
        elif arg.startswith("--repeats="):
            repeats = int(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    if members <= 0 or repeats <= 0:
        sys.exit("error: --members and --repeats must be positive")
    if not os.path.exists(os.path.join(_REPO, "experiments", f"{experiment}.py")):
        sys.exit(f"error: no experiment {experiment!r} in experiments/")
    return experiment, members, sweep, repeats, rest


def _timed(command: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(command, cwd=_REPO, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"error: {' '.join(command)} failed:\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    experiment, members, sweep, repeats, rest = _parse(sys.argv[1:])
    sweep = sweep or f"seed=0:{members}"
    script = os.path.join("experiments", f"{experiment}.py")
    ones, manys = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as tmp:
            ones.append(_timed([sys.executable, script, f"--workdir={tmp}/one", *rest]))
            sweep_command = [sys.executable, script, f"--workdir={tmp}/sweep", f"--sweep={sweep}"]
            manys.append(_timed([*sweep_command, *rest]))
            with open(sweep_file(os.path.join(tmp, "sweep"))) as f:
                count = len(json.load(f)["members"])
    one, many = statistics.median(ones), statistics.median(manys)
    print(
        json.dumps(
            {
                "experiment": experiment,
                "sweep": sweep,
                "flags": rest,
                "members": count,
                "repeats": repeats,
                "one_run_s": round(one, 2),
                "sweep_s": round(many, 2),
                "one_run_each_s": [round(t, 2) for t in ones],
                "sweep_each_s": [round(t, 2) for t in manys],
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
