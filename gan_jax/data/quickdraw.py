"""Quick, Draw! camels (Foster's GAN chapter): TFDS builder `quickdraw_camel`.

The source is Google's `camel.npy`: an (N, 784) uint8 array of 28x28 bitmaps, strokes bright
on black. It is only on the web, so the builder downloads it when Google Cloud Storage
answers and otherwise takes a local copy (`manual_path`). Images are (28, 28, 1); no labels.
"""

import os
from collections.abc import Iterator

import numpy as np
import tensorflow_datasets as tfds

from gan_jax.data import fetch

CAMEL_URL = "https://storage.googleapis.com/quickdraw_dataset/full/numpy_bitmap/camel.npy"
SOURCES = ("auto",)


def read_bitmaps(path: str) -> np.ndarray:
    """Reads a QuickDraw `numpy_bitmap` file.

    Args:
      path: an `.npy` of shape (N, 784), uint8.

    Returns:
      uint8 (N, 28, 28, 1).

    Raises:
      ValueError: if the file is not such an array.
    """
    try:
        # No pickles: a .npy of numbers never needs them, and they could run code.
        bitmaps = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise ValueError(f"{path} is not a readable .npy file: {e}") from e
    if bitmaps.dtype != np.uint8 or bitmaps.ndim != 2 or bitmaps.shape[1] != 28 * 28:
        raise ValueError(
            f"{path}: expected an (N, 784) uint8 array, got {bitmaps.shape} {bitmaps.dtype}"
        )
    if len(bitmaps) == 0:
        raise ValueError(f"{path} holds no bitmaps")
    return bitmaps.reshape(-1, 28, 28, 1)


class QuickdrawCamel(tfds.core.GeneratorBasedBuilder):
    """Quick, Draw! camel bitmaps, 28x28x1, unlabelled."""

    VERSION = tfds.core.Version("1.0.0")
    MANUAL_DOWNLOAD_INSTRUCTIONS = f"Download {CAMEL_URL} and pass it as manual_path."

    def __init__(self, *, manual_path: str | None = None, **kwargs):
        """Initializes the builder.

        Args:
          manual_path: a local camel.npy; None downloads it.
          **kwargs: for `tfds.core.GeneratorBasedBuilder` (data_dir, file_format, ...).
        """
        self._manual_path = manual_path
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="Quick, Draw! camel drawings as 28x28 grayscale bitmaps.",
            features=tfds.features.FeaturesDict({"image": tfds.features.Image(shape=(28, 28, 1))}),
            homepage="https://github.com/googlecreativelab/quickdraw-dataset",
            # Unshuffled records: record i is row i of camel.npy.
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        path = self._manual_path
        if path is None:
            if not fetch.url_is_reachable(CAMEL_URL):
                raise RuntimeError(f"{CAMEL_URL} is unreachable: pass a local camel.npy")
            path = os.fspath(dl_manager.download(CAMEL_URL))
        return {"train": self._generate_examples(read_bitmaps(path))}

    def _generate_examples(self, images: np.ndarray) -> Iterator[tuple[int, dict]]:
        for index, image in enumerate(images):
            yield index, {"image": fetch.encode_png(image)}


def prepare(
    data_dir: str | None = None, *, manual_path: str | None = None
) -> tfds.core.DatasetBuilder:
    """Builds `quickdraw_camel` in `data_dir` unless it is already prepared there.

    Args:
      data_dir: TFDS data dir; None for TFDS's default.
      manual_path: a local camel.npy; None downloads it.

    Returns:
      The builder; `builder.data_dir` is the prepared directory.
    """
    builder = QuickdrawCamel(data_dir=data_dir, file_format="array_record", manual_path=manual_path)
    return fetch.prepare_once(builder)
