"""NumPy archives written whole or not at all: the caches several processes may fill."""

import os

import numpy as np


def save_npz(path: str, **arrays: np.ndarray) -> None:
    """Writes `arrays` to the `.npz` file `path` through a temporary file and a rename, so
    a reader (or a crash) never sees half a file; two processes writing the same path each
    write their own temporary file, and the last rename wins."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
