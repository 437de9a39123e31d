"""A run's folder and a sweep's: every name in them, created with a clear error, held
by one writer at a time, and moved aside to start over.

Nothing else in gan_jax spells a file name of a run: it asks this module for the path.
A run's folder holds

    metrics.jsonl         one record per epoch (and `diverged`, `eval/...` records)
    tensorboard/          the same scalars and the sample grids, for TensorBoard
    config.json           the settings of the newest training call
    config_changes.jsonl  settings changed on resume, one line per resume
    checkpoints/<step>/   Orbax checkpoints (checkpoints_damaged/<step>-<time>/: those
                          that failed verification, moved aside)
    samples/epoch_NNNN.png, losses.png   the pictures
    memorisation.png      an experiment's memorisation check (QuickDraw camels)
    eval_<step>.json      what `gan_jax.evaluate` measured
    replaced_<time>/      a run moved aside by --start_over
    .lock                 held by the process training in it

and a sweep's folder holds sweep.json, one run folder per member and the summary files.

The lock is an advisory `flock` on `<workdir>/.lock`. The kernel drops it when its
holder exits in any way (SIGKILL and crashes included), so a stale lock from a dead
process is simply taken over. The file records who holds it, for the error message.
`flock` is per host on some network file systems (old NFS): there it only keeps out
writers on the same host.
"""

import datetime
import fcntl
import glob
import json
import os
import shutil
import socket

from gan_jax.errors import UserError

LOCK_NAME = ".lock"
REPLACED_PREFIX = "replaced_"


def metrics_file(workdir: str) -> str:
    return os.path.join(workdir, "metrics.jsonl")


def tensorboard_dir(workdir: str) -> str:
    return os.path.join(workdir, "tensorboard")


def config_file(workdir: str) -> str:
    return os.path.join(workdir, "config.json")


def config_changes_file(workdir: str) -> str:
    return os.path.join(workdir, "config_changes.jsonl")


def checkpoints_dir(workdir: str) -> str:
    """Where a run's checkpoints live, one folder per step."""
    return os.path.join(os.path.abspath(workdir), "checkpoints")


def checkpoint_step_dir(workdir: str, step: int) -> str:
    """One step's checkpoint folder (Orbax names it by the step alone)."""
    return os.path.join(checkpoints_dir(workdir), str(step))


def damaged_checkpoints_dir(workdir: str) -> str:
    """Where a writer moves the checkpoint steps that failed verification."""
    return os.path.join(os.path.abspath(workdir), "checkpoints_damaged")


def damaged_checkpoint_dir(workdir: str, step: int, stamp: str) -> str:
    """Where one damaged step goes; the time keeps a step damaged twice apart."""
    return os.path.join(damaged_checkpoints_dir(workdir), f"{step}-{stamp}")


def checkpoint_steps(workdir: str) -> list[int]:
    """The finished checkpoint steps on disk, oldest first (Orbax writes a step under a
    temporary name and renames it when complete)."""
    directory = checkpoints_dir(workdir)
    if not os.path.isdir(directory):
        return []
    return sorted(int(name) for name in os.listdir(directory) if name.isdigit())


def lock_file(workdir: str) -> str:
    """The file that `WorkdirLock` holds (named `LOCK_NAME`)."""
    return os.path.join(workdir, LOCK_NAME)


def sample_grid(workdir: str, epoch: int) -> str:
    return os.path.join(workdir, "samples", f"epoch_{epoch:04d}.png")


def sample_grids(workdir: str) -> list[str]:
    """The sample grids written so far, oldest first."""
    return sorted(glob.glob(os.path.join(workdir, "samples", "epoch_*.png")))


def loss_plot(workdir: str) -> str:
    return os.path.join(workdir, "losses.png")


def eval_file(workdir: str, step: int) -> str:
    return os.path.join(workdir, f"eval_{step}.json")


def gaussian_fit_file(workdir: str) -> str:
    """The Gaussian experiment's learned fit against its target."""
    return os.path.join(workdir, "gaussian_fit.json")


def memorisation_plot(workdir: str) -> str:
    return os.path.join(workdir, "memorisation.png")


def replaced_dir(workdir: str, stamp: str) -> str:
    return os.path.join(workdir, f"{REPLACED_PREFIX}{stamp}")


def time_stamp() -> str:
    """The time as the names of moved-aside folders carry it: UTC, to the second."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y%m%dT%H%M%S")


def sweep_file(root: str) -> str:
    """The sweep's members and their settings."""
    return os.path.join(root, "sweep.json")


def member_dir(root: str, name: str) -> str:
    return os.path.join(root, name)


def summary_file(root: str, suffix: str = ".json") -> str:
    """summary.json, or with `suffix=".csv"` the same as a table."""
    return os.path.join(root, f"summary{suffix}")


def summary_plot(root: str, *settings: str) -> str:
    """The score against one swept setting, or a map over two."""
    return os.path.join(root, "summary_" + "_".join(settings) + ".png")


def best_of_k_plot(root: str) -> str:
    return os.path.join(root, "best_of_k.png")


def lineage_plot(root: str) -> str:
    """A population-based search's copies between members and their settings over time."""
    return os.path.join(root, "lineage.png")


def move_run_aside(workdir: str, keep: tuple[str, ...]) -> str | None:
    """Moves a workdir's contents (except `keep` and earlier replaced runs) into
    `replaced_<time>/`.

    Returns:
      The folder they went to, or None if there was nothing to move.
    """
    names = [n for n in os.listdir(workdir) if n not in keep and not n.startswith(REPLACED_PREFIX)]
    if not names:
        return None
    target = replaced_dir(workdir, time_stamp())
    os.makedirs(target)
    for name in names:
        shutil.move(os.path.join(workdir, name), os.path.join(target, name))
    return target


def prepare(workdir: str) -> str:
    """Creates `workdir` if needed; returns its absolute path. One-line error if it cannot."""
    path = os.path.abspath(workdir)
    if os.path.exists(path) and not os.path.isdir(path):
        raise UserError(f"--workdir {path} exists and is not a directory")
    try:
        os.makedirs(path, exist_ok=True)
    except OSError as error:
        raise UserError(f"cannot create --workdir {path}: {error.strerror}") from error
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"--workdir {path} is not writable")
    return path


class WorkdirLock:
    """Held by the one process that trains in a workdir; `with WorkdirLock(path):`."""

    def __init__(self, workdir: str):
        self.path = lock_file(workdir)
        self._fd: int | None = None

    def acquire(self) -> None:
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as error:
            raise UserError(f"cannot write the lock file {self.path}: {error.strerror}") from error
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise UserError(
                f"{os.path.dirname(self.path)} is in use by another run ({holder}); "
                "wait for it to finish or choose another --workdir"
            ) from None
        holder = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None

    def __enter__(self) -> "WorkdirLock":
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        holder = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {holder['pid']} on host {holder['host']}, since {holder['since']}"
    except (ValueError, KeyError, OSError):
        return "holder unknown"


def ensure_writable(path: str, hint: str = "") -> None:
    """Raises a one-line `UserError` unless a file can be written at `path`.

    Creates the missing directories, as the writers do. Checked by opening the file, the
    only test that ACLs, read-only mounts and root (who ignores mode bits) all answer
    truthfully; a file that did not exist is removed again.

    Args:
      path: the file to be written.
      hint: appended to the message (e.g. which flag chooses another path).
    """
    path = os.path.abspath(path)
    if os.path.isdir(path):
        raise UserError(f"cannot write {path}: it is a directory{hint}")
    parent = os.path.dirname(path)
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise UserError(f"cannot write {path}: {parent} is a file, not a directory{hint}")
    existed = os.path.exists(path)
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "ab"):
            pass
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror}{hint}") from error
    if not existed:
        os.remove(path)
