"""Prepared datasets as in-memory NumPy arrays: the one entry point training code uses.

`load(name, split)` returns every image (and label) of a split, in example-index order.
Preparing is a separate, explicit step (`python -m gan_jax.data.prepare NAME`), so `load`
never downloads: a dataset that is not prepared raises `DatasetNotPreparedError` at once.
(An offline TFDS download attempt retries for minutes instead of failing.)

Reading a split through `tfds.data_source` decodes one PNG per record, about 7 s for MNIST's
60,000 on one core, so the first `load` also writes the decoded arrays to a `.npz` beside
the TFDS files, and later loads read that in well under a second without importing TFDS.
A machine without TFDS can therefore train from a copied data dir whose caches were built.
"""

import hashlib
import json
import os
from typing import NamedTuple

import numpy as np
from absl import logging

from gan_jax.errors import UserError

# Each dataset's TFDS variant directories (relative to the data dir), in order of preference.
# They must match the builders' names, configs and versions (checked by the tests).
VARIANTS: dict[str, tuple[str, ...]] = {
    "mnist": ("mnist/3.0.1",),
    # D2L's sprite set is the one the DCGAN chapter trains on; the npm sprites are the
    # offline stand-in. See gan_jax.data.pokemon.
    "pokemon": ("pokemon/d2l/1.0.0", "pokemon/sprites/1.0.0"),
    "quickdraw_camel": ("quickdraw_camel/1.0.0",),
}
# What TFDS's `is_prepared()` looks for in a variant directory.
_METADATA_FILES = ("dataset_info.json", "features.json")
# Prefix of the decoded-array caches written into a variant directory.
_CACHE_PREFIX = "gan_jax_arrays"
# How many records `tfds` decodes per call while filling a cache.
_READ_CHUNK = 8192


class ArrayData(NamedTuple):
    """All examples of one split, in example-index order.

    Attributes:
      images: uint8 (N, H, W, C).
      labels: int32 (N,), or None where the dataset has no labels.
    """

    images: np.ndarray
    labels: np.ndarray | None


class DatasetNotPreparedError(UserError, RuntimeError):
    """The dataset has not been prepared in the data dir; the message names the command."""


def default_data_dir() -> str:
    """TFDS's default data dir: `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def _variants(name: str) -> tuple[str, ...]:
    """The variant dirs for `name`: a dataset ('pokemon') or one of its configs ('pokemon/d2l')."""
    dataset = name.split("/")[0]
    if dataset not in VARIANTS:
        raise ValueError(f"unknown dataset {name!r}; expected one of {sorted(VARIANTS)}")
    variants = tuple(v for v in VARIANTS[dataset] if (v + "/").startswith(name + "/"))
    if not variants:
        raise ValueError(f"unknown config {name!r}; expected one of {VARIANTS[dataset]}")
    return variants


def prepared_variant_dir(name: str, data_dir: str | None = None) -> str | None:
    """The first prepared variant directory of `name`, or None.

    Prepared means what TFDS's `builder.is_prepared()` checks: both metadata files exist.

    Args:
      name: 'mnist', 'pokemon', 'pokemon/sprites', ...
      data_dir: TFDS data dir; None for `default_data_dir()`.

    Returns:
      The absolute path of e.g. `<data_dir>/mnist/3.0.1`, or None if none is prepared.
    """
    root = os.path.abspath(os.path.expanduser(data_dir or default_data_dir()))
    for variant in _variants(name):
        path = os.path.join(root, variant)
        if all(os.path.exists(os.path.join(path, f)) for f in _METADATA_FILES):
            return path
    return None


def _fingerprint(variant_dir: str) -> str:
    # dataset_info.json lists every split's shard lengths and byte sizes, so re-preparing
    # different data changes it and invalidates the cache.
    with open(os.path.join(variant_dir, "dataset_info.json"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _cache_path(variant_dir: str, split: str) -> str:
    return os.path.join(variant_dir, f"{_CACHE_PREFIX}-{split}.npz")


def _read_cache(path: str, fingerprint: str) -> ArrayData | None:
    try:
        with np.load(path, allow_pickle=False) as cache:
            if str(cache["fingerprint"]) != fingerprint:
                return None
            labels = cache["labels"] if "labels" in cache.files else None
            return ArrayData(cache["images"], labels)
    except (OSError, KeyError, ValueError):  # missing, partial or foreign file
        return None


def _write_cache(path: str, data: ArrayData, fingerprint: str) -> None:
    arrays = {"images": data.images, "fingerprint": np.array(fingerprint)}
    if data.labels is not None:
        arrays["labels"] = data.labels
    # Write then rename, so a reader (or a crash) never sees half a file.
    # (A per-process name: two processes filling one cache each write their own file.)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _read_records(variant_dir: str, split: str) -> ArrayData:
    """Decodes every record of a split with TFDS, in record order."""
    import tensorflow_datasets as tfds  # Here, not at the top: cached loads skip TFDS.

    # Reads the files as written, without the builder class that wrote them.
    records = tfds.builder_from_directory(variant_dir).as_data_source(split=split)
    images, labels = [], []
    for start in range(0, len(records), _READ_CHUNK):
        chunk = records.__getitems__(range(start, min(start + _READ_CHUNK, len(records))))
        images.extend(r["image"] for r in chunk)
        labels.extend(r["label"] for r in chunk if "label" in r)
    return ArrayData(
        np.stack(images).astype(np.uint8, copy=False),
        np.asarray(labels, dtype=np.int32) if labels else None,
    )


def load(name: str, split: str = "train", data_dir: str | None = None) -> ArrayData:
    """Loads a prepared split as in-memory arrays.

    The order is the example index order in which the builder generated the examples (our
    builders write records unshuffled), so two calls return identical arrays.

    Args:
      name: 'mnist', 'pokemon' or 'quickdraw_camel'. 'pokemon' takes D2L's set if it is
        prepared, else the npm sprite set; 'pokemon/d2l' or 'pokemon/sprites' picks one.
      split: 'train' or 'test' (MNIST); the other datasets have only 'train'.
      data_dir: TFDS data dir; None means `$TFDS_DATA_DIR` or `~/tensorflow_datasets`.

    Returns:
      ArrayData(images uint8 (N, H, W, C), labels int32 (N,) or None).

    Raises:
      DatasetNotPreparedError: if no variant of the dataset is prepared in `data_dir` (or it
        is in TFDS's default tfrecord format, unreadable without TensorFlow).
      ValueError: for an unknown dataset or split.
    """
    variant_dir = prepared_variant_dir(name, data_dir)
    if variant_dir is None:
        root = os.path.abspath(os.path.expanduser(data_dir or default_data_dir()))
        dataset, _, config = name.partition("/")
        command = f"python -m gan_jax.data.prepare {dataset}"
        if config:
            command += f" --source={config}"
        if root != os.path.abspath(default_data_dir()):
            command += f" --data_dir={root}"
        raise DatasetNotPreparedError(f"dataset {name!r} is not prepared in {root}: run {command}")
    with open(os.path.join(variant_dir, "dataset_info.json")) as f:
        info = json.load(f)
    # TFDS itself writes tfrecord by default (e.g. `tfds.load` where TensorFlow is installed),
    # which random access without TensorFlow cannot read.
    file_format = info.get("fileFormat", "tfrecord")
    if file_format != "array_record":
        raise DatasetNotPreparedError(
            f"{variant_dir} holds {file_format} files, which need TensorFlow: prepare {name!r} "
            "in another data dir with python -m gan_jax.data.prepare"
        )
    splits = [s["name"] for s in info.get("splits", [])]
    if split not in splits:
        raise ValueError(f"dataset {name!r} has no split {split!r}; it has {splits}")

    fingerprint = _fingerprint(variant_dir)
    cache = _cache_path(variant_dir, split)
    data = _read_cache(cache, fingerprint)
    if data is None:
        data = _read_records(variant_dir, split)
        try:
            _write_cache(cache, data, fingerprint)
        except OSError as e:  # A read-only data dir still loads, just slowly every time.
            logging.warning("could not write the array cache %s: %s", cache, e)
    return data
