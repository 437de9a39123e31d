"""Helpers the dataset builders share: fetching a source
with a package manager, a fast reachability check, preparing a builder once, PNG
encoding without TensorFlow, and decoding over several processes."""

import concurrent.futures
import io
import multiprocessing
import os
import subprocess
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
from absl import logging
from PIL import Image

_In = TypeVar("_In")
_Out = TypeVar("_Out")


def fetch_with(command: list[str], description: str, expected_path: str) -> str:
    """Runs a package manager's fetch command (`pip download`, `npm pack`) that should
    write `expected_path`, and returns that path.

    Raises:
      RuntimeError: naming `description`, if the command fails, writes nothing there,
        or runs for over 10 minutes.
    """
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)
    except subprocess.TimeoutExpired as e:
        raise RuntimeError(f"`{description}` took over 10 minutes") from e
    if result.returncode != 0 or not os.path.exists(expected_path):
        last_line = (result.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"`{description}` failed: {last_line}")
    return expected_path


def prepare_once(builder: Any) -> Any:
    """Runs a TFDS builder's `download_and_prepare` unless its data dir is already prepared.

    Returns:
      The builder; `builder.data_dir` is the prepared directory.
    """
    if builder.is_prepared():
        logging.info("%s is already prepared in %s; left as it is", builder.name, builder.data_dir)
    else:
        builder.download_and_prepare()
    return builder


def url_is_reachable(url: str, timeout_s: float = 5.0) -> bool:
    """Whether `url` answers a HEAD request within `timeout_s`.

    Used before handing a URL to TFDS's downloader, which retries an unreachable host for
    minutes; without DNS or a route this returns False in milliseconds.

    Args:
      url: an http(s) URL.
      timeout_s: socket timeout.

    Returns:
      True if the server answered (any 2xx/3xx status).
    """
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout_s):
            return True
    except (OSError, ValueError):  # URLError, HTTPError, timeouts are OSErrors.
        return False


def encode_png(image: np.ndarray, compress_level: int = 6) -> bytes:
    """Encodes an image as PNG with PIL, for a builder to yield.

    TFDS encodes an array it is given with TensorFlow, which is not installed; encoded bytes
    it stores as they are.

    Args:
      image: uint8 (H, W, C) with C in {1, 3, 4}.
      compress_level: zlib level, 0-9; lower is faster and larger.

    Returns:
      The PNG file's bytes.
    """
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(
        buffer, format="png", compress_level=compress_level
    )
    return buffer.getvalue()


def parallel_map(
    fn: Callable[[_In], _Out], items: Sequence[_In], num_workers: int | None
) -> Iterator[_Out]:
    """`map(fn, items)` in order, over `num_workers` processes (default: all cores)."""
    num_workers = num_workers or os.cpu_count() or 1
    if num_workers == 1 or len(items) < 2:
        yield from map(fn, items)
        return
    # spawn, not fork: the parent may have started threads (JAX, TFDS) that fork would copy
    # mid-lock.
    context = multiprocessing.get_context("spawn")
    with concurrent.futures.ProcessPoolExecutor(num_workers, mp_context=context) as pool:
        yield from pool.map(fn, items, chunksize=8)
