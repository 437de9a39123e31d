"""Grid against successive halving against PBT, at the same member-epochs.

  python benchmarks/search_study.py --experiment=mlp_gan_mnist --out=runs/search_study_mnist
      --sweep='lr=loguniform(1e-4,1e-2,16)' --epochs=4 --rung_epochs=2 [--repeats=3]
      [experiment flags ...]

For each repeat r (the members' seed) and each search, runs the experiment's command
with `--sweep='<sweep>;seed=r'` in `<out>/<search>_r<r>/` and reads its summary:

- grid: every member `--epochs` epochs;
- halving (eta 2): `--rung_epochs` epochs between rungs, four rungs (16 -> 8 -> 4 -> 2
  -> 1 members): 31 x rung_epochs member-epochs, against the grid's 16 x epochs;
- pbt: every member `--epochs` epochs, a rung every `--epochs / 4` epochs.

Writes `<out>/study.json` (per search and repeat: the best member's score, its name,
member-epochs and wall time) and `<out>/study.png` (the best score per search, each
repeat a point), and prints one line a search: mean ± std of the best score and of the
wall time. Other arguments go to every command (e.g. `--num_examples=12000`).
"""

import json
import os
import platform
import statistics
import subprocess
import sys
import time

import numpy as np

from gan_jax import viz
from gan_jax.workdir import summary_file

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_HALVING_RUNGS = 4
_PBT_RUNGS = 4  # rungs (and the end) every quarter of the run


def _flag(argv: list[str], name: str, default: str | None = None) -> str:
    for arg in argv:
        if arg.startswith(f"--{name}="):
            argv.remove(arg)
            return arg.split("=", 1)[1]
    if default is None:
        sys.exit(f"error: --{name} is needed")
    return default


def _searches(epochs: int, rung_epochs: int, members: int) -> dict[str, tuple[list[str], int]]:
    """Each search's flags and member-epochs."""
    halving_members = sum(max(1, members // 2**k) for k in range(_HALVING_RUNGS + 1))
    return {
        "grid": ([f"--num_epochs={epochs}"], members * epochs),
        "halving": (
            [
                "--search=halving",
                f"--num_epochs={rung_epochs * (_HALVING_RUNGS + 1)}",
                f"--search_every_epochs={rung_epochs}",
                "--halving_eta=2",
            ],
            halving_members * rung_epochs,
        ),
        "pbt": (
            [
                "--search=pbt",
                f"--num_epochs={epochs}",
                f"--search_every_epochs={max(1, epochs // _PBT_RUNGS)}",
            ],
            members * epochs,
        ),
    }


def main(argv: list[str]) -> None:
    experiment = _flag(argv, "experiment")
    out = os.path.abspath(_flag(argv, "out"))
    sweep = _flag(argv, "sweep")
    epochs = int(_flag(argv, "epochs"))
    rung_epochs = int(_flag(argv, "rung_epochs"))
    repeats = int(_flag(argv, "repeats", "3"))
    only = _flag(argv, "searches", "grid,halving,pbt").split(",")
    members = 16
    study_path = os.path.join(out, "study.json")
    study = {"runs": []}
    if os.path.exists(study_path):
        with open(study_path) as f:
            study = json.load(f)
    done = {(r["search"], r["repeat"]) for r in study["runs"]}
    study.update(
        experiment=experiment,
        sweep=sweep,
        flags=argv,
        machine=platform.processor() or platform.machine(),
        date=time.strftime("%Y-%m-%d"),
    )
    for repeat in range(repeats):
        for search, (flags, member_epochs) in _searches(epochs, rung_epochs, members).items():
            if search not in only or (search, repeat) in done:
                continue
            workdir = os.path.join(out, f"{search}_r{repeat}")
            command = [
                sys.executable,
                os.path.join(_REPO, "experiments", f"{experiment}.py"),
                f"--workdir={workdir}",
                f"--sweep={sweep};seed={repeat}",
                "--start_over",
                *flags,
                *argv,
            ]
            start = time.perf_counter()
            result = subprocess.run(command, cwd=_REPO, capture_output=True, text=True)
            seconds = time.perf_counter() - start
            if result.returncode:
                sys.exit(f"{search} repeat {repeat} failed:\n{result.stderr[-3000:]}")
            with open(summary_file(workdir)) as f:
                summary = json.load(f)
            best = summary["ranking"][0]
            study["runs"].append(
                {
                    "search": search,
                    "repeat": repeat,
                    "score": summary["score"],
                    "best": best[summary["score"]],
                    "best_member": best["name"],
                    "member_epochs": member_epochs,
                    "seconds": seconds,
                    "command": " ".join(command[1:]),
                }
            )
            print(json.dumps(study["runs"][-1]), flush=True)
            with open(study_path, "w") as f:
                json.dump(study, f, indent=2)
    _report(study, out)


def _report(study: dict, out: str) -> None:
    searches = list(dict.fromkeys(r["search"] for r in study["runs"]))
    points, means, stds = [], [], []
    for i, search in enumerate(searches):
        runs = [r for r in study["runs"] if r["search"] == search]
        best = [r["best"] for r in runs]
        seconds = [r["seconds"] for r in runs]
        points += [(i, b) for b in best]
        means.append(statistics.mean(best))
        stds.append(statistics.pstdev(best))
        print(
            f"{search:8s} best {runs[0]['score']} {np.mean(best):.4g} ± {np.std(best):.2g} "
            f"({len(runs)} repeats), {runs[0]['member_epochs']} member-epochs, "
            f"{np.mean(seconds):.0f} ± {np.std(seconds):.0f} s"
        )
    viz.save_setting_plot(
        os.path.join(out, "study.png"),
        searches,
        means,
        stds,
        points,
        xlabel="search (same member-epochs)",
        ylabel=f"best member's {study['runs'][0]['score']}",
    )


if __name__ == "__main__":
    main(sys.argv[1:])
