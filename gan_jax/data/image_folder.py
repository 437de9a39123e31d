"""A user's folder of images as a TFDS data set: builder `image_folder`, one config per name.

`prepare(data_dir, path=DIR, name=NAME)` reads every file under DIR (nested folders too,
hidden files and folders aside), turns each into square images as `image_files` does,
drops exact repeats, and writes `<data_dir>/image_folder/NAME/1.0.0`, which
`gan_jax.data.source.load(NAME)` finds. The user names the data set, so the config is
not one of a fixed list: any valid name is a config of its own.

Labels follow torchvision's `ImageFolder`: when the top folder holds only subfolders (no
images of its own), each subfolder is a class, numbered in sorted order, and every image
below it has that label. The class names are the label feature's names and are also in
the data set's metadata, with the source folder, the options and the counts.

Files that give no image (empty, not an image, truncated or corrupt) are skipped and
counted, never fatal; so are exact duplicates: the same pixels after fitting, within one
class. Records are written in the scan order, so `load` returns them in that order.
"""

import collections
import dataclasses
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from typing import Any, NamedTuple

import tensorflow_datasets as tfds
import tqdm
from absl import logging

from gan_jax.data import catalog, fetch, image_files, source
from gan_jax.data.image_files import FitOptions

# Files at the top of a class-folder layout (a README beside the classes) are not read.
OUTSIDE_CLASSES = "outside the class folders"
# What decides between one unlabelled set and class folders: image files at the top.
_IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp", ".tif", ".tiff", ".ppm")
_IGNORED_FOLDERS = ("__MACOSX",)  # macOS zip resource forks
# A TFDS-style name: it is a directory name and the value of `--dataset`.
_NAME_PATTERN = re.compile(r"[a-z][a-z0-9_]{0,63}")
# Skipped files are logged one by one up to this many, then only counted.
_LOGGED_SKIPS = 10


@dataclasses.dataclass(frozen=True)
class FolderReport:
    """What preparing a folder did; stored in the data set's metadata.

    Attributes:
      name: the data set's name.
      source: the folder, an absolute path.
      options: how the files were fitted.
      kept: images written.
      duplicates: images dropped as exact repeats of an earlier one of the same class.
      skipped: files that gave no image, by reason (see `image_files`, OUTSIDE_CLASSES).
      class_names: label i is class_names[i]; empty for an unlabelled folder.
    """

    name: str
    source: str
    options: FitOptions
    kept: int
    duplicates: int
    skipped: dict[str, int]
    class_names: list[str]

    def metadata(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def summary(self, train_flags: str) -> str:
        """One line for the user: what was kept and dropped, and how to train on it."""
        shape = (self.options.image_size, self.options.image_size, self.options.channels)
        classes = _plural(len(self.class_names), "class") if self.class_names else "no labels"
        return (
            f"{self.name}: {_plural(self.kept, 'image')} {shape} kept, "
            f"{_plural(self.duplicates, 'duplicate')} removed, {_skipped_text(self.skipped)}, "
            f"{classes}; "
            f"train with {train_flags}"
        )


def _skipped_text(skipped: dict[str, int]) -> str:
    """'3 files skipped (empty: 1, not an image: 2)'."""
    text = _plural(sum(skipped.values()), "file") + " skipped"
    if skipped:
        text += f" ({', '.join(f'{k}: {n}' for k, n in sorted(skipped.items()))})"
    return text


def _plural(count: int, noun: str) -> str:
    suffix = "" if count == 1 else "es" if noun.endswith("s") else "s"
    return f"{count:,} {noun}{suffix}"


class FolderFiles(NamedTuple):
    """The files a folder offers, in the order they are read.

    Attributes:
      root: the folder.
      paths: every candidate file.
      classes: each file's class folder, or None for every file of an unlabelled folder.
      outside: files beside the class folders, which are not read.
    """

    root: str
    paths: list[str]
    classes: list[str | None]
    outside: int


class FolderExamples(NamedTuple):
    """The data set to write: PNGs, their labels (or None) and the report."""

    pngs: list[bytes]
    labels: list[int] | None
    report: FolderReport


def check_name(name: str) -> None:
    """Raises ValueError unless `name` can name a new data set."""
    if not _NAME_PATTERN.fullmatch(name):
        raise ValueError(
            f"name {name!r} must be lowercase letters, digits and _, starting with a letter"
        )
    if name in catalog.DATA_SETS:
        raise ValueError(f"name {name!r} belongs to a built-in data set; pick another")


def dataset_dir(data_dir: str, name: str) -> str:
    """Where the data set `name` is written (`source.load(name)` looks there)."""
    return os.path.join(data_dir, source.IMAGE_FOLDER_DIR, name, str(ImageFolder.VERSION))


def _ignored(entry: str) -> bool:
    return entry.startswith(".") or entry in _IGNORED_FOLDERS


def _walk(top: str) -> Iterator[str]:
    """Files under `top`: each folder's files sorted, then its subfolders, sorted.

    Symbolic links are followed, as ImageFolder does; a folder reached twice (a link
    loop, or two links to one folder) is read once.
    """
    seen = set()
    for folder, subfolders, files in os.walk(top, followlinks=True):
        real = os.path.realpath(folder)
        if real in seen:
            subfolders[:] = []
            continue
        seen.add(real)
        subfolders[:] = sorted(s for s in subfolders if not _ignored(s))
        yield from (os.path.join(folder, f) for f in sorted(files) if not _ignored(f))


def scan_folder(path: str) -> FolderFiles:
    """Lists the files of a folder and, for a class-folder layout, their classes.

    Args:
      path: the top folder.

    Returns:
      The candidate files (not yet opened), in read order.

    Raises:
      ValueError: if `path` is missing or not a folder.
    """
    if not os.path.exists(path):
        raise ValueError(f"{path} does not exist")
    if not os.path.isdir(path):
        raise ValueError(f"{path} is not a folder")
    entries = [e for e in sorted(os.listdir(path)) if not _ignored(e)]
    subfolders = [e for e in entries if os.path.isdir(os.path.join(path, e))]
    top_files = [e for e in entries if e not in subfolders]
    if not subfolders or any(f.lower().endswith(_IMAGE_SUFFIXES) for f in top_files):
        paths = list(_walk(path))
        return FolderFiles(path, paths, [None] * len(paths), 0)
    paths, classes = [], []
    for class_name in subfolders:
        for file in _walk(os.path.join(path, class_name)):
            paths.append(file)
            classes.append(class_name)
    return FolderFiles(path, paths, classes, len(top_files))


def _log_skip(path: str, reason: str, detail: str, count: int) -> None:
    """Names the first few skipped files (the count-th so far), so a user can look."""
    if count <= _LOGGED_SKIPS:
        logging.warning("skipped %s: %s%s", path, reason, f" ({detail})" if detail else "")
    if count == _LOGGED_SKIPS:
        logging.warning("further skipped files are counted, not listed")


def read_folder(
    name: str, files: FolderFiles, options: FitOptions, num_workers: int | None = None
) -> FolderExamples:
    """Decodes and fits every file `scan_folder` found, dropping exact duplicates.

    Args:
      name: the data set's name, for the report.
      files: the folder's files.
      options: how each file becomes images.
      num_workers: decoding processes; None for all cores.

    Returns:
      The images as PNGs in scan order, their labels, and the report.

    Raises:
      ValueError: if no file gives a usable image.
    """
    tasks = [(file, options) for file in files.paths]
    results = tqdm.tqdm(
        fetch.parallel_map(image_files.encode_file, tasks, num_workers),
        total=len(tasks),
        desc=f"Reading {files.root}",
        unit="file",
        disable=None,  # only on a terminal
    )
    skipped = collections.Counter({OUTSIDE_CLASSES: files.outside} if files.outside else {})
    seen, pngs, classes, duplicates, unusable = set(), [], [], 0, 0
    for file, class_name, result in zip(files.paths, files.classes, results, strict=True):
        if result.skipped:
            skipped[result.skipped] += 1
            unusable += 1
            _log_skip(file, result.skipped, result.detail, unusable)
            continue
        duplicates += result.repeats
        for digest, png in result.images:
            if (class_name, digest) in seen:
                duplicates += 1
                continue
            seen.add((class_name, digest))
            pngs.append(png)
            classes.append(class_name)
    if not pngs:
        found = _skipped_text(skipped) if skipped else "it holds no files"
        raise ValueError(f"no usable images in {files.root}: {found}")
    # A class folder whose files were all skipped gets no label number.
    class_names = sorted({c for c in classes if c is not None})
    index = {c: i for i, c in enumerate(class_names)}
    labels = [index[c] for c in classes] if class_names else None
    report = FolderReport(
        name,
        os.path.abspath(files.root),
        options,
        len(pngs),
        duplicates,
        dict(skipped),
        class_names,
    )
    return FolderExamples(pngs, labels, report)


class ImageFolder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Square images from a folder, labelled by class folder if it has them.

    Not registered: TFDS's own `tfds.ImageFolder` has this name (it reads split/label
    folders through TensorFlow, and neither fits nor deduplicates), and reading needs no
    class anyway (`source.load` reads the directory as written).
    """

    name = source.IMAGE_FOLDER_DIR
    VERSION = tfds.core.Version("1.0.0")

    @classmethod
    def get_builder_config(cls, name: str, version: Any = None) -> tfds.core.BuilderConfig:
        """Any name is a config: users name their data sets, so there is no list to check."""
        del version
        return tfds.core.BuilderConfig(name=name, description=f"The image folder {name!r}.")

    def __init__(self, *, examples: FolderExamples, **kwargs):
        """Initializes the builder.

        Args:
          examples: what `read_folder` gave; its report's name should be the config.
          **kwargs: for `tfds.core.GeneratorBasedBuilder` (data_dir, config, file_format...).
        """
        self._examples = examples
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        report = self._examples.report
        side, channels = report.options.image_size, report.options.channels
        features = {"image": tfds.features.Image(shape=(side, side, channels))}
        if report.class_names:
            features["label"] = tfds.features.ClassLabel(names=report.class_names)
        return tfds.core.DatasetInfo(
            builder=self,
            description=f"Images of {report.source}, {report.options}.",
            features=tfds.features.FeaturesDict(features),
            metadata=tfds.core.MetadataDict(report.metadata()),
            # Unshuffled records: record i is image i in scan order.
            disable_shuffling=True,
        )

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        del dl_manager  # Everything was read before the builder was made.
        return {"train": self._generate_examples()}

    def _generate_examples(self) -> Iterator[tuple[int, dict]]:
        labels = self._examples.labels
        for index, png in enumerate(self._examples.pngs):
            example = {"image": png} if labels is None else {"image": png, "label": labels[index]}
            yield index, example


def _check_writable(data_dir: str) -> None:
    """Fails before minutes of decoding rather than after, if nothing can be written."""
    try:
        os.makedirs(data_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=data_dir):
            pass
    except OSError as e:
        raise ValueError(f"data dir {data_dir} is not writable: {e.strerror or e}") from e


def prepare(
    data_dir: str | None,
    *,
    path: str,
    name: str,
    options: FitOptions | None = None,
    overwrite: bool = False,
    num_workers: int | None = None,
) -> FolderReport:
    """Builds the data set `name` from the folder `path` in `data_dir`.

    Args:
      data_dir: TFDS data dir; None for `source.default_data_dir()`.
      path: the folder of images.
      name: the data set's name (`source.load(name)`, `--dataset=name`).
      options: image size, channels, fit and animation frames; None for the defaults.
      overwrite: replace a data set of the same name; without it, that is an error.
      num_workers: decoding processes; None for all cores.

    Returns:
      What was kept, removed and skipped.

    Raises:
      ValueError: for a bad name, a missing or imageless folder, an unwritable data dir,
        or a name already prepared (without `overwrite`).
    """
    data_dir = os.path.abspath(os.path.expanduser(data_dir or source.default_data_dir()))
    check_name(name)
    files = scan_folder(path)  # A missing folder fails before the data dir is touched.
    _check_writable(data_dir)
    target = dataset_dir(data_dir, name)
    if os.path.exists(target) and not overwrite:
        raise ValueError(
            f"{name!r} is already prepared in {data_dir}: pass --overwrite to rebuild it, "
            "or pick another --name"
        )
    examples = read_folder(name, files, options or FitOptions(), num_workers)
    if os.path.exists(target):  # Only now: a failed read leaves the old data set as it was.
        shutil.rmtree(target)
    builder = ImageFolder(
        data_dir=data_dir, config=name, file_format="array_record", examples=examples
    )
    builder.download_and_prepare()
    return examples.report
