"""QuickDraw camel builder, from a tiny generated camel.npy."""

import numpy as np
import pytest
from cli_runs import prepare as prepare_cli

from gan_jax.data import quickdraw, source


def test_prepare_and_load_keep_rows_in_order(tmp_path):
    bitmaps = np.random.default_rng(0).integers(0, 256, (7, 784), dtype=np.uint8)
    np.save(tmp_path / "camel.npy", bitmaps)
    quickdraw.prepare(str(tmp_path / "tfds"), manual_path=str(tmp_path / "camel.npy"))
    data = source.load("quickdraw_camel", data_dir=str(tmp_path / "tfds"))
    assert data.labels is None
    assert data.images.shape == (7, 28, 28, 1) and data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.images.reshape(7, 784), bitmaps)


@pytest.mark.parametrize(
    ("array", "message"),
    [
        (np.zeros((3, 784), np.float32), "expected an"),
        (np.zeros((3, 28, 28), np.uint8), "expected an"),
        (np.zeros((0, 784), np.uint8), "no bitmaps"),
        (np.array([{"a": 1}], dtype=object), "not a readable"),  # would need pickle
    ],
)
def test_bad_arrays_are_refused(tmp_path, array, message):
    np.save(tmp_path / "camel.npy", array, allow_pickle=True)
    with pytest.raises(ValueError, match=message):
        quickdraw.read_bitmaps(str(tmp_path / "camel.npy"))


def test_cli_corrupt_npy_is_one_line(tmp_path):
    corrupt = tmp_path / "camel.npy"
    corrupt.write_bytes(b"\x93NUMPY garbage")
    result = prepare_cli("quickdraw_camel", f"--data_dir={tmp_path}", f"--manual_path={corrupt}")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith(f"error: prepare: quickdraw_camel: {corrupt} is not a readable")


def test_cli_prints_what_it_built(tmp_path):
    np.save(tmp_path / "camel.npy", np.zeros((3, 784), np.uint8))
    data_dir = tmp_path / "tfds"
    result = prepare_cli(
        "quickdraw_camel", f"--data_dir={data_dir}", f"--manual_path={tmp_path / 'camel.npy'}"
    )
    assert result.returncode == 0, result.stderr
    assert f"quickdraw_camel ready in {data_dir}/quickdraw_camel/1.0.0 (" in result.stdout
    assert "train: 3 images (28, 28, 1), no labels" in result.stdout
