"""A run's directory: created with a clear error, and held by one writer at a time.

The lock is an advisory `flock` on `<workdir>/.lock`. The kernel drops it when its
holder exits in any way (SIGKILL and crashes included), so a stale lock from a dead
process is simply taken over. The file records who holds it, for the error message.
`flock` is per host on some network file systems (old NFS): there it only keeps out
writers on the same host.
"""

import datetime
import fcntl
import json
import os
import socket

from gan_jax.errors import UserError

LOCK_NAME = ".lock"


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
        self.path = os.path.join(workdir, LOCK_NAME)
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
