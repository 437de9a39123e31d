"""One metrics record per epoch, cut from the per-step metrics of dispatches, and the
log lines that show them."""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from absl import logging

from gan_jax.schedule import Schedule

# Per-step seconds travel with the metrics, under a name no objective reports.
_SECONDS = "_seconds"


class EpochRecords:
    """Cuts the per-step metrics of dispatches into one record per epoch.

    The values of the epoch in progress (`pending`) go into every checkpoint, so a
    run resumed mid-epoch averages exactly the values an unbroken run averages.
    """

    def __init__(
        self,
        schedule: Schedule,
        batch_size: int,
        step: int,
        pending: Mapping[str, np.ndarray] | None = None,
    ):
        self.schedule = schedule
        self.batch_size = batch_size
        pending = dict(pending or {})
        expected = step % schedule.steps_per_epoch
        if pending and len(pending.get(_SECONDS, ())) != expected:
            logging.warning(
                "the checkpoint's partial-epoch metrics do not fit step %d; "
                "this epoch's record will average the resumed steps only",
                step,
            )
            pending = {}
        # The step that the first pending value belongs after.
        self.start_step = step - len(pending.get(_SECONDS, ()))
        self.pending: dict[str, np.ndarray] = pending

    def add(self, metrics: Mapping[str, np.ndarray], seconds: float) -> list[dict[str, Any]]:
        """Adds one dispatch's metrics; returns the records of the epochs it completed."""
        num_steps = len(next(iter(metrics.values())))
        metrics = {**metrics, _SECONDS: np.full(num_steps, seconds / num_steps)}
        for name, values in metrics.items():
            self.pending[name] = np.concatenate([self.pending.get(name, values[:0]), values])
        records = []
        spe = self.schedule.steps_per_epoch
        while self.pending:
            epoch_end = (self.start_step // spe + 1) * spe
            count = epoch_end - self.start_step
            if len(self.pending[_SECONDS]) < count:
                break
            chunk = {k: v[:count] for k, v in self.pending.items()}
            self.pending = {k: v[count:] for k, v in self.pending.items() if len(v) > count}
            record: dict[str, Any] = {"epoch": epoch_end // spe, "step": epoch_end}
            record.update({k: float(v.mean()) for k, v in chunk.items() if k != _SECONDS})
            record["examples_per_sec"] = count * self.batch_size / max(chunk[_SECONDS].sum(), 1e-9)
            records.append(record)
            self.start_step = epoch_end
        return records


# Each objective reports its own diagnostics (BCE: D(x), D(G(z))); the logs show these.
_LOGGED = {
    "loss_d": "loss_D",
    "loss_g": "loss_G",
    "d_real": "D(x)",
    "d_fake": "D(G(z))",
    "wasserstein": "W estimate",
    "gradient_penalty": "GP",
    "loss_d_supervised": "CE",
    "eval/test_accuracy": "test accuracy",
}


def log_record(record: Mapping[str, Any], num_epochs: int) -> None:
    """One line for one run's epoch."""
    values = ", ".join(f"{label} {record[k]:.3f}" for k, label in _LOGGED.items() if k in record)
    logging.info(
        "epoch %d/%d step %d: %s, %.1f examples/sec",
        record["epoch"],
        num_epochs,
        record["step"],
        values,
        record["examples_per_sec"],
    )


def log_members(
    member_records: Sequence[list[dict[str, Any]]], num_epochs: int, total: int
) -> None:
    """One line per epoch for a sweep group: each value's median and range over members."""
    for records in zip(*member_records, strict=True):
        last = records[0]
        values = []
        for key, label in _LOGGED.items():
            if key in last:
                v = np.array([r[key] for r in records])
                values.append(f"{label} {np.median(v):.3f} [{v.min():.3f}, {v.max():.3f}]")
        logging.info(
            "epoch %d/%d step %d, %d of %d members training, median [range]: %s",
            last["epoch"],
            num_epochs,
            last["step"],
            len(records),
            total,
            ", ".join(values),
        )
