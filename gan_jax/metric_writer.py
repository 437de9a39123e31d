"""Training metrics to `metrics.jsonl` (one JSON object per line) and TensorBoard.

Every line is strict JSON: a non-finite number (NaN, +-Infinity; a score such as
an FID can be one) is written as null. TensorBoard event files are written with
tensorboardX, which needs no TensorFlow (flax.metrics.tensorboard and clu import it).
"""

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from tensorboardX import SummaryWriter

from gan_jax import workdir as workdir_lib

# Seconds within which TensorBoard's event file has every record and image.
_TENSORBOARD_FLUSH_SECS = 10


def read_metrics(path: str) -> list[dict[str, Any]]:
    """The records of a metrics.jsonl file (empty if it does not exist)."""
    if not os.path.exists(path):
        return []
    records = []
    with open(path) as f:
        for line in f:
            if not line.endswith("\n"):
                break  # The last line of a process killed while writing it.
            if line.strip():
                records.append(json.loads(line))
    return records


def epoch_records(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The records of epochs (their losses), without a divergence's or a search rung's."""
    return [r for r in records if "epoch" in r and "loss_d" in r]


class MetricWriter:
    """Appends records to the run's metrics.jsonl and scalars to its tensorboard/ folder.

    On a resumed run, records past the restored step are dropped first: they
    belong to training that the checkpoint does not contain and will be redone.
    That rewrite goes through a temporary file and a rename, so a kill cannot
    truncate the file.
    """

    def __init__(self, workdir: str, *, resume_step: int):
        os.makedirs(workdir, exist_ok=True)
        self.path = workdir_lib.metrics_file(workdir)
        kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= resume_step]
        temporary = self.path + ".tmp"
        with open(temporary, "w") as f:
            f.writelines(_dumps(r) + "\n" for r in kept)
        os.replace(temporary, self.path)
        self.records = kept
        # Kept open: opening the file for each record cost a 64-member sweep a second.
        self._file = open(self.path, "a")  # noqa: SIM115 (closed by `close`)
        # Flushed on the writer's own timer, not at every record: a 64-member sweep writes
        # 1,280 records, and a flush each cost a second of its loop. metrics.jsonl, the
        # record a resumed run reads, is written at once.
        self._tensorboard = SummaryWriter(
            workdir_lib.tensorboard_dir(workdir), flush_secs=_TENSORBOARD_FLUSH_SECS
        )

    def write(self, record: Mapping[str, Any], *, prefix: str = "train") -> None:
        """Writes one record; it must hold an integer 'step'. Numbers also go to TensorBoard."""
        record = {k: _plain(v) for k, v in record.items()}
        self.records.append(record)
        self._file.write(_dumps(record) + "\n")
        self._file.flush()  # whole lines for a reader beside the run, and after a kill
        for name, value in record.items():
            if name not in ("step", "epoch") and isinstance(value, int | float):
                # Names that carry their own prefix ('eval/fid') keep it.
                tag = name if "/" in name else f"{prefix}/{name}"
                self._tensorboard.add_scalar(tag, value, record["step"])

    def write_images(self, tag: str, step: int, images: np.ndarray) -> None:
        """Writes (N, H, W, C) images with values in [0, 1]."""
        self._tensorboard.add_images(tag, images, step, dataformats="NHWC")

    def close(self) -> None:
        self._file.close()
        self._tensorboard.close()


def _plain(value: Any) -> Any:
    # JSON needs Python numbers, not NumPy/JAX scalars, and has no NaN or Infinity.
    if isinstance(value, np.ndarray | np.generic) or hasattr(value, "item"):
        value = np.asarray(value)
        value = value.item() if value.ndim == 0 else value.tolist()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _dumps(record: Mapping[str, Any]) -> str:
    return json.dumps({k: _plain(v) for k, v in record.items()}, allow_nan=False)
