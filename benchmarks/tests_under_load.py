"""Runs the multi-device tests again and again while other processes keep every core busy.

Several CPU devices in one process are threads that meet at each collective; on a loaded
machine one of them can fall far behind. This shows that the tests wait for it instead
of aborting: it starts one busy process per core, runs the tests `--rounds` times, and
prints each round's exit status and wall time, then one JSON line.

Usage: python benchmarks/tests_under_load.py [--rounds=10] [--busy=2] [pytest args...]
(default pytest args: tests/parallel_test.py tests/xla_flags_test.py -n 2)
"""

import json
import multiprocessing
import os
import platform
import subprocess
import sys
import time

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_DEFAULT_TESTS = ["tests/parallel_test.py", "tests/xla_flags_test.py", "-n", "2"]


def _spin() -> None:
    value = 0
    while True:  # pure Python: one core, no memory traffic
        value = (value * 1103515245 + 12345) % 2147483648


def _parse(argv: list[str]) -> tuple[int, int, list[str]]:
    rounds, busy, rest = 10, os.cpu_count() or 2, []
    for arg in argv:
        if arg.startswith("--rounds="):
            rounds = int(arg.split("=", 1)[1])
        elif arg.startswith("--busy="):
            busy = int(arg.split("=", 1)[1])
        else:
            rest.append(arg)
    return rounds, busy, rest or _DEFAULT_TESTS


def main() -> int:
    rounds, busy, tests = _parse(sys.argv[1:])
    burners = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(busy)]
    for burner in burners:
        burner.start()
    results = []
    try:
        for index in range(rounds):
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
                cwd=_REPO,
                capture_output=True,
                text=True,
            )
            seconds = time.perf_counter() - started
            load = os.getloadavg()[0]
            results.append({"rc": done.returncode, "seconds": round(seconds, 1), "load": load})
            print(f"round {index + 1}: rc {done.returncode}, {seconds:.0f} s, load {load:.1f}")
            if done.returncode:
                print(done.stdout[-3000:], done.stderr[-3000:])
    finally:
        for burner in burners:
            burner.terminate()
    failed = sum(r["rc"] != 0 for r in results)
    summary = {
        "machine": platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "busy_processes": busy,
        "tests": tests,
        "rounds": results,
        "failed": failed,
    }
    print(json.dumps(summary))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
