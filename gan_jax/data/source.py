"""Prepared datasets as in-memory NumPy arrays: the one entry point training code uses.

`load(name, split)` returns every image (and label) of a split, in example-index order.
Preparing is a separate, explicit step (`python -m gan_jax.data.prepare NAME`), so `load`
never downloads: a dataset that is not prepared raises `DatasetNotPreparedError` at once.
(An offline TFDS download attempt retries for minutes instead of failing.)

A name is looked up in this order: the project's own datasets (`VARIANTS`, from the table
in `gan_jax.data.catalog`); a folder of images the user prepared under that name (`prepare
image_folder --name=NAME`); any other TFDS dataset prepared in the data dir in
array_record format (`fashion_mnist`, `cifar10`, `NAME/CONFIG`), whose newest prepared
version is read, taking the feature 'image' and, if there is one, the class label 'label'.

Reading a split through `tfds.data_source` decodes one PNG per record, about 7 s for MNIST's
60,000 on one core, so the first `load` also writes the decoded arrays to a `.npz` beside
the TFDS files, and later loads read that in well under a second without importing TFDS.
A machine without TFDS can therefore train from a copied data dir whose caches were built.
"""

import hashlib
import json
import os
import re
import struct
import zipfile
from typing import NamedTuple

import numpy as np
from absl import logging

from gan_jax.data.catalog import DATA_SETS
from gan_jax.errors import UserError
from gan_jax.npz_files import save_npz

# The project's prepared datasets and their TFDS variant directories (relative to the data
# dir), in order of preference: the `variants` of `catalog.DATA_SETS`.
VARIANTS: dict[str, tuple[str, ...]] = {
    name: kind.variants for name, kind in DATA_SETS.items() if kind.variants
}
# Where `prepare image_folder --name=NAME` writes: `<data_dir>/image_folder/NAME/<version>`.
# A directory of its own, so that a user's name never overwrites a TFDS dataset's files.
IMAGE_FOLDER_DIR = "image_folder"
# What TFDS's `is_prepared()` looks for in a variant directory.
_METADATA_FILES = ("dataset_info.json", "features.json")
# A TFDS version directory, `1.0.0`; TFDS's own `incomplete.*` work directories are not.
_VERSION_PATTERN = re.compile(r"\d+\.\d+\.\d+")
# A dataset name or `dataset/config`; no path tricks (`..`, absolute paths).
_NAME_PATTERN = re.compile(r"\w[\w.+-]*(/\w[\w.+-]*)?")
# Directories of a data dir that hold no datasets.
_NOT_DATASETS = ("downloads",)
# How many prepared datasets an unknown name's error lists.
_LISTED_NAMES = 8
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


class UnknownDatasetError(DatasetNotPreparedError, ValueError):
    """Nothing of this name is prepared, and it is none of the project's own datasets.

    Also a ValueError: for all `load` can tell, the name may be a typo.
    """


def default_data_dir() -> str:
    """TFDS's default data dir: `$TFDS_DATA_DIR`, else `~/tensorflow_datasets`."""
    return os.environ.get("TFDS_DATA_DIR") or os.path.expanduser("~/tensorflow_datasets")


def _data_root(data_dir: str | None) -> str:
    return os.path.abspath(os.path.expanduser(data_dir or default_data_dir()))


def _is_prepared(path: str) -> bool:
    return all(os.path.exists(os.path.join(path, f)) for f in _METADATA_FILES)


def _subdirs(path: str) -> list[str]:
    try:
        return sorted(e for e in os.listdir(path) if os.path.isdir(os.path.join(path, e)))
    except OSError:  # missing, or not a directory
        return []


def _newest_version_dir(path: str) -> str | None:
    """The prepared `path/<version>` with the highest version, or None."""
    versions = [
        v
        for v in _subdirs(path)
        if _VERSION_PATTERN.fullmatch(v) and _is_prepared(os.path.join(path, v))
    ]
    if not versions:
        return None
    return os.path.join(path, max(versions, key=lambda v: tuple(map(int, v.split(".")))))


def _tfds_dir(root: str, name: str) -> str | None:
    """The newest prepared version of a TFDS dataset: `name/<version>` or `name/<config>/...`.

    Raises:
      ValueError: if `name` has no config and several of its configs are prepared.
    """
    path = os.path.join(root, name)
    found = _newest_version_dir(path)
    if found or "/" in name:
        return found
    configs = {c: d for c in _subdirs(path) if (d := _newest_version_dir(os.path.join(path, c)))}
    if len(configs) > 1:
        raise ValueError(
            f"dataset {name!r} has several prepared configs in {root}: name one, "
            f"e.g. {name}/{next(iter(configs))} (configs: {', '.join(configs)})"
        )
    return next(iter(configs.values()), None)


def prepared_datasets(data_dir: str | None = None) -> list[str]:
    """The names `load` finds prepared in a data dir, sorted.

    Args:
      data_dir: TFDS data dir; None for `default_data_dir()`.

    Returns:
      Names such as 'mnist', 'pokemon/sprites', a prepared image folder's name, 'cifar10'.
    """
    root, names = _data_root(data_dir), set()
    for dataset in _subdirs(root):
        if dataset in _NOT_DATASETS:
            continue
        if _newest_version_dir(os.path.join(root, dataset)):
            names.add(dataset)
        for config in _subdirs(os.path.join(root, dataset)):
            if _newest_version_dir(os.path.join(root, dataset, config)):
                names.add(config if dataset == IMAGE_FOLDER_DIR else f"{dataset}/{config}")
    return sorted(names)


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
    """The directory `load(name)` reads, or None if nothing of that name is prepared.

    Prepared means what TFDS's `builder.is_prepared()` checks: both metadata files exist.
    The project's datasets take the first prepared of their `VARIANTS`; any other name is
    an image folder's, else a TFDS dataset's newest prepared version.

    Args:
      name: 'mnist', 'pokemon', 'pokemon/sprites', an image folder's name, 'cifar10',
        'dataset/config'...
      data_dir: TFDS data dir; None for `default_data_dir()`.

    Returns:
      The absolute path of e.g. `<data_dir>/mnist/3.0.1`, or None if none is prepared.

    Raises:
      ValueError: for a name that cannot be a dataset's, an unknown config of one of the
        project's datasets, or a TFDS name with several prepared configs.
    """
    root = _data_root(data_dir)
    if name.split("/")[0] in VARIANTS:
        paths = (os.path.join(root, variant) for variant in _variants(name))
        return next((path for path in paths if _is_prepared(path)), None)
    if not _NAME_PATTERN.fullmatch(name):
        raise ValueError(f"{name!r} is not a dataset name (expected NAME or NAME/CONFIG)")
    if "/" not in name:
        found = _newest_version_dir(os.path.join(root, IMAGE_FOLDER_DIR, name))
        if found:
            return found
    return _tfds_dir(root, name)


def _prepared(name: str, data_dir: str | None) -> str:
    """`prepared_variant_dir`, or the one-line error naming the command that prepares it."""
    variant_dir = prepared_variant_dir(name, data_dir)
    if variant_dir is None:
        raise _not_prepared(name, _data_root(data_dir))
    return variant_dir


def variant_name(name: str, data_dir: str | None = None) -> str:
    """What `load(name)` reads, relative to the data dir: e.g. 'pokemon/sprites/1.1.0'."""
    return os.path.relpath(_prepared(name, data_dir), _data_root(data_dir))


def split_names(name: str, data_dir: str | None = None) -> list[str]:
    """The splits of what `load(name)` reads, e.g. ['test', 'train'] for MNIST."""
    with open(os.path.join(_prepared(name, data_dir), "dataset_info.json")) as f:
        return [s["name"] for s in json.load(f).get("splits", [])]


def _fingerprint(variant_dir: str) -> str:
    # dataset_info.json lists every split's shard lengths and byte sizes, so re-preparing
    # different data changes it and invalidates the cache.
    with open(os.path.join(variant_dir, "dataset_info.json"), "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def _cache_path(variant_dir: str, split: str) -> str:
    return os.path.join(variant_dir, f"{_CACHE_PREFIX}-{split}.npz")


def _read_cache(path: str, fingerprint: str, mapped: bool) -> ArrayData | None:
    try:
        with np.load(path, allow_pickle=False) as cache:
            if str(cache["fingerprint"]) != fingerprint:
                return None
            labels = cache["labels"] if "labels" in cache.files else None
            images = _mapped_member(path, "images.npy") if mapped else None
            return ArrayData(cache["images"] if images is None else images, labels)
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):  # missing, partial, foreign
        return None


def _mapped_member(path: str, member: str) -> np.ndarray | None:
    """A read-only memory map of the array `member` (e.g. 'images.npy') of an .npz file,
    or None if the member is compressed.

    The file must not be truncated in place while mapped (reading the map would then
    crash the process): the caches are replaced by a rename, never rewritten.
    """
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(member)
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    with open(path, "rb") as f:
        f.seek(info.header_offset)
        local_header = f.read(30)  # the zip's local file header; its name and extra follow
        name_length, extra_length = struct.unpack("<HH", local_header[26:30])
        f.seek(info.header_offset + 30 + name_length + extra_length)
        version = np.lib.format.read_magic(f)
        if version == (1, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, fortran_order, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            return None
        offset = f.tell()
    if dtype.hasobject:
        return None
    order = "F" if fortran_order else "C"
    return np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order=order)


def _write_cache(path: str, data: ArrayData, fingerprint: str) -> None:
    arrays = {"images": data.images, "fingerprint": np.array(fingerprint)}
    if data.labels is not None:
        arrays["labels"] = data.labels
    save_npz(path, **arrays)


def _read_records(variant_dir: str, split: str) -> ArrayData:
    """Decodes every record of a split with TFDS, in record order.

    Raises:
      ValueError: for a dataset without a fixed-size uint8 'image' feature, or an empty split.
    """
    import tensorflow_datasets as tfds  # Here, not at the top: cached loads skip TFDS.

    # Reads the files as written, without the builder class that wrote them.
    builder = tfds.builder_from_directory(variant_dir)
    features = builder.info.features
    if "image" not in features:
        raise ValueError(f"{variant_dir} has no 'image' feature (it has {sorted(features.keys())})")
    # Only a class label is a label; another dataset's 'label' may be text or a box.
    with_labels = "label" in features and isinstance(features["label"], tfds.features.ClassLabel)
    records = builder.as_data_source(split=split)
    images, labels = [], []
    for start in range(0, len(records), _READ_CHUNK):
        chunk = records.__getitems__(range(start, min(start + _READ_CHUNK, len(records))))
        images.extend(r["image"] for r in chunk)
        labels.extend(r["label"] for r in chunk if with_labels)
    return ArrayData(
        _stack_images(images, f"{variant_dir} ({split})"),
        np.asarray(labels, dtype=np.int32) if with_labels else None,
    )


def _stack_images(images: list[np.ndarray], where: str) -> np.ndarray:
    """One uint8 (N, H, W, C) array, or a ValueError saying why the images do not make one."""
    if not images:
        raise ValueError(f"{where} holds no examples")
    shapes = sorted({image.shape for image in images})
    if len(shapes) > 1:
        raise ValueError(
            f"{where}: images differ in size ({shapes[0]}, {shapes[-1]}, ...); save them to a "
            "folder and prepare it with python -m gan_jax.data.prepare image_folder"
        )
    stacked = np.stack(images)
    if stacked.dtype != np.uint8 or stacked.ndim != 4:
        raise ValueError(f"{where}: images are {stacked.dtype} {shapes[0]}, not uint8 (H, W, C)")
    return stacked


def _not_prepared(name: str, root: str) -> DatasetNotPreparedError:
    """The one-line error for a name with nothing prepared, naming the command to run."""
    data_dir_flag = "" if root == os.path.abspath(default_data_dir()) else f" --data_dir={root}"
    dataset, _, config = name.partition("/")
    if dataset in VARIANTS:
        command = f"python -m gan_jax.data.prepare {dataset}"
        if config:
            command += f" --source={config}"
        return DatasetNotPreparedError(
            f"dataset {name!r} is not prepared in {root}: run {command}{data_dir_flag}"
        )
    prepared = prepared_datasets(root)
    listed = ", ".join(prepared[:_LISTED_NAMES]) + (
        ", ..." if len(prepared) > _LISTED_NAMES else ""
    )
    return UnknownDatasetError(
        f"unknown dataset {name!r}: nothing of that name is prepared in {root} "
        f"(prepared: {listed or 'none'}); for a folder of images run python -m "
        f"gan_jax.data.prepare image_folder --path=DIR --name={dataset}{data_dir_flag}, "
        "for a TFDS dataset prepare it there with file_format='array_record'"
    )


def load(
    name: str, split: str = "train", data_dir: str | None = None, *, mapped: bool = False
) -> ArrayData:
    """Loads a prepared split as in-memory arrays.

    The order is the example index order in which the builder generated the examples (our
    builders write records unshuffled), so two calls return identical arrays.

    Args:
      name: 'mnist', 'pokemon' or 'quickdraw_camel'. 'pokemon' takes D2L's set if it is
        prepared, else the npm sprite set; 'pokemon/d2l' or 'pokemon/sprites' picks one.
        Or the name of an image folder prepared with `prepare image_folder`, or of any
        TFDS image dataset prepared in array_record format ('cifar10', 'NAME/CONFIG').
      split: 'train' or 'test' (MNIST); the other datasets have only 'train'.
      data_dir: TFDS data dir; None means `$TFDS_DATA_DIR` or `~/tensorflow_datasets`.
      mapped: the images of a cached split memory-mapped, read from disk only where they
        are indexed (so each process of a multi-process run reads only its share).

    Returns:
      ArrayData(images uint8 (N, H, W, C), labels int32 (N,) or None).

    Raises:
      DatasetNotPreparedError: if no variant of the dataset is prepared in `data_dir` (or it
        is in TFDS's default tfrecord format, unreadable without TensorFlow);
        `UnknownDatasetError`, also a ValueError, for a name with nothing prepared that is
        none of the project's datasets.
      ValueError: for an unknown config or split, or a dataset whose images are not
        fixed-size uint8 'image' features.
    """
    variant_dir = _prepared(name, data_dir)
    with open(os.path.join(variant_dir, "dataset_info.json")) as f:
        info = json.load(f)
    # TFDS itself writes tfrecord by default (e.g. `tfds.load` where TensorFlow is installed),
    # which random access without TensorFlow cannot read.
    file_format = info.get("fileFormat", "tfrecord")
    if file_format != "array_record":
        how = (
            "python -m gan_jax.data.prepare"
            if name.split("/")[0] in VARIANTS
            else f"tfds build {name} --file_format=array_record"
        )
        raise DatasetNotPreparedError(
            f"{variant_dir} holds {file_format} files, which need TensorFlow: prepare {name!r} "
            f"in another data dir with {how}"
        )
    splits = [s["name"] for s in info.get("splits", [])]
    if split not in splits:
        raise ValueError(f"dataset {name!r} has no split {split!r}; it has {splits}")

    fingerprint = _fingerprint(variant_dir)
    cache = _cache_path(variant_dir, split)
    data = _read_cache(cache, fingerprint, mapped)
    if data is None:
        data = _read_records(variant_dir, split)
        try:
            _write_cache(cache, data, fingerprint)
        except OSError as e:  # A read-only data dir still loads, just slowly every time.
            logging.warning("could not write the array cache %s: %s", cache, e)
    return data
