"""Training metrics to `metrics.jsonl` (one JSON object per line) and TensorBoard.

TensorBoard event files are written with tensorboardX, which needs no
TensorFlow (flax.metrics.tensorboard and clu import it).
"""

import json
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from tensorboardX import SummaryWriter


def read_metrics(path: str) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl file (empty if it does not exist)."""
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


class MetricWriter:
    """Appends records to `<workdir>/metrics.jsonl` and scalars to `<workdir>/tensorboard`.

    On a resumed run, records past the restored step are dropped first: they
    belong to training that the checkpoint does not contain and will be redone.
    """

    def __init__(self, workdir: str, *, resume_step: int):
        os.makedirs(workdir, exist_ok=True)
        self.path = os.path.join(workdir, "metrics.jsonl")
        kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
        with open(self.path, "w") as f:
            f.writelines(json.dumps(r) + "\n" for r in kept)
        self.records = kept
        self._tensorboard = SummaryWriter(os.path.join(workdir, "tensorboard"))

    def write(self, record: Mapping[str, Any], *, prefix: str = "train") -> None:
        """Writes one record; it must hold an integer 'step'. Numbers also go to TensorBoard."""
        record = {k: _plain(v) for k, v in record.items()}
        self.records.append(record)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
        for name, value in record.items():
            if name not in ("step", "epoch") and isinstance(value, int | float):
                # Names that carry their own prefix ('eval/fid') keep it.
                tag = name if "/" in name else f"{prefix}/{name}"
                self._tensorboard.add_scalar(tag, value, record["step"])
        self._tensorboard.flush()

    def write_images(self, tag: str, step: int, images: np.ndarray) -> None:
        """Writes (N, H, W, C) images with values in [0, 1]."""
        self._tensorboard.add_images(tag, images, step, dataformats="NHWC")
        self._tensorboard.flush()

    def close(self) -> None:
        self._tensorboard.close()


def _plain(value: Any) -> Any:
    # JSON needs Python numbers, not NumPy/JAX scalars.
    if isinstance(value, np.ndarray | np.generic) or hasattr(value, "item"):
        return np.asarray(value).item()
    return value
