"""metrics.jsonl records: plain JSON numbers, null for non-finite, resume truncation."""

import json
import os

import jax.numpy as jnp
import numpy as np

from gan_jax.metric_writer import MetricWriter, read_metrics
from gan_jax.workdir import metrics_file, tensorboard_dir


def lines(workdir) -> list[dict]:
    with open(metrics_file(workdir)) as f:
        return [json.loads(line) for line in f]


def test_records_are_appended(tmp_path):
    writer = MetricWriter(str(tmp_path), resume_step=0)
    writer.write({"step": 1, "loss_d": 0.5})
    writer.write({"step": 2, "loss_d": 0.25, "epoch": 1})
    writer.close()
    want = [{"step": 1, "loss_d": 0.5}, {"step": 2, "loss_d": 0.25, "epoch": 1}]
    assert lines(tmp_path) == want
    assert writer.records == want
    assert read_metrics(metrics_file(tmp_path)) == want


def test_numpy_and_jax_scalars_become_json_numbers(tmp_path):
    writer = MetricWriter(str(tmp_path), resume_step=0)
    writer.write(
        {"step": np.int64(3), "a": np.float32(0.5), "b": jnp.float32(1.5), "c": np.array([1, 2])}
    )
    writer.close()
    with open(metrics_file(tmp_path)) as f:
        text = f.read()
    record = json.loads(text)
    assert record == {"step": 3, "a": 0.5, "b": 1.5, "c": [1, 2]}
    assert type(record["step"]) is int and type(record["a"]) is float


def test_non_finite_values_become_null(tmp_path):
    writer = MetricWriter(str(tmp_path), resume_step=0)
    writer.write({"step": 1, "nan": float("nan"), "inf": np.float32(np.inf), "ninf": -np.inf})
    writer.close()
    with open(metrics_file(tmp_path)) as f:
        line = f.readline()
    assert "NaN" not in line and "Infinity" not in line
    assert json.loads(line) == {"step": 1, "nan": None, "inf": None, "ninf": None}


def test_resume_drops_records_past_the_restored_step(tmp_path):
    writer = MetricWriter(str(tmp_path), resume_step=0)
    for step in (10, 20, 30, 40):
        writer.write({"step": step, "loss_g": step / 10})
    writer.close()
    resumed = MetricWriter(str(tmp_path), resume_step=20)
    assert [r["step"] for r in resumed.records] == [10, 20]
    assert [r["step"] for r in lines(tmp_path)] == [10, 20]
    resumed.write({"step": 30, "loss_g": 9.0})
    resumed.close()
    assert lines(tmp_path)[-1] == {"step": 30, "loss_g": 9.0}
    assert not os.path.exists(metrics_file(tmp_path) + ".tmp")


def test_read_metrics_ignores_a_truncated_last_line(tmp_path):
    path = metrics_file(tmp_path)
    with open(path, "w") as f:
        f.write('{"step": 1, "x": 1.0}\n\n{"step": 2, "x": 2.0}\n{"step": 3, "x"')
    assert read_metrics(path) == [{"step": 1, "x": 1.0}, {"step": 2, "x": 2.0}]
    # A writer reopened on such a file keeps the complete records only.
    writer = MetricWriter(str(tmp_path), resume_step=100)
    writer.close()
    assert [r["step"] for r in lines(tmp_path)] == [1, 2]


def test_read_metrics_of_missing_file_is_empty(tmp_path):
    assert read_metrics(metrics_file(tmp_path)) == []


def test_tensorboard_event_files_are_written(tmp_path):
    writer = MetricWriter(str(tmp_path), resume_step=0)
    writer.write({"step": 1, "loss_d": 0.5, "eval/fid": 12.0})
    writer.write_images("samples", 1, np.zeros((2, 4, 4, 1), np.float32))
    writer.close()
    directory = tensorboard_dir(tmp_path)
    events = os.listdir(directory)
    assert any(name.startswith("events.out.tfevents") for name in events)
    assert all(os.path.getsize(os.path.join(directory, name)) > 0 for name in events)
