"""Building a test fixture's files once per session, shared by all pytest-xdist workers."""

import contextlib
import fcntl
import os
import pathlib
from collections.abc import Iterator

import pytest


@contextlib.contextmanager
def built_once(
    tmp_path_factory: pytest.TempPathFactory, name: str
) -> Iterator[pathlib.Path | None]:
    """Yields the shared directory `name` to build, or None when it is already built.

    The first worker to get here builds (holding a lock the others wait on); the
    directory counts as built once the `with` block has ended without an error.
    """
    root = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        root = root.parent  # The directory all workers of this run share.
    path, done = root / name, root / f"{name}.done"
    with open(root / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # Released when the file closes.
        if done.exists():
            yield None
            return
        yield path
        done.touch()


def shared_path(tmp_path_factory: pytest.TempPathFactory, name: str) -> pathlib.Path:
    """Where `built_once(tmp_path_factory, name)` builds."""
    root = tmp_path_factory.getbasetemp()
    return (root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root) / name
