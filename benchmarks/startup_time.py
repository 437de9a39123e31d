"""First and second start-up of each experiment: XLA's persistent compilation cache at work.

  python benchmarks/startup_time.py [--data_dir=DIR] [--experiments=a,b]

Each experiment runs twice as a user runs it, one epoch of a small data set
(`--num_examples`), with a compilation cache folder that starts empty: the first run
compiles everything and fills it, the second reads it. One JSON line per experiment
with both wall times (process start to exit, training included; the training is a few
steps, so start-up dominates). Foster's camel GAN trains on MNIST (`--dataset=mnist`);
the DCGAN is left out (it needs prepared 64x64x3 images).
"""

import json
import os
import subprocess
import sys
import tempfile
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# experiment: flags of a short run
RUNS = {
    "gaussian_2d": ["--num_points=256", "--batch_size=64"],
    "mlp_gan_mnist": ["--num_examples=1000"],
    "mlp_gan_mnist_deep": ["--num_examples=1000"],
    "cgan_mnist": ["--num_examples=200"],
    "sgan_mnist": ["--num_examples=1000"],
    "quickdraw_camel": ["--dataset=mnist", "--num_examples=256"],
}


def _wall(command: list[str]) -> float:
    start = time.perf_counter()
    result = subprocess.run(command, cwd=_REPO, capture_output=True, text=True, check=False)
    if result.returncode:
        sys.exit(f"error: {' '.join(command)} failed:\n{result.stderr[-2000:]}")
    return time.perf_counter() - start


def main() -> None:
    extra, names = [], list(RUNS)
    for arg in sys.argv[1:]:
        if arg.startswith("--experiments="):
            names = arg.split("=", 1)[1].split(",")
        elif arg.startswith("--data_dir="):
            extra.append(arg)
        else:
            sys.exit(__doc__)
    for name in names:
        with tempfile.TemporaryDirectory() as scratch:
            cache = os.path.join(scratch, "xla")
            walls = []
            for attempt in ("first", "second"):
                command = [
                    sys.executable,
                    os.path.join("experiments", f"{name}.py"),
                    f"--workdir={os.path.join(scratch, attempt)}",
                    f"--compilation_cache={cache}",
                    "--num_epochs=1",
                    *RUNS[name],
                    *extra,
                ]
                walls.append(_wall(command))
        record = {"experiment": name, "first_s": round(walls[0], 1), "second_s": round(walls[1], 1)}
        print(json.dumps(record), flush=True)


if __name__ == "__main__":
    main()
