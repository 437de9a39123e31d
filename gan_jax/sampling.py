"""Generating samples: the inputs of every grid and request, batches, and rendering.

One place for what training's per-epoch grids, `gan_jax.sample` and
`gan_jax.evaluate` share: fixed grid latents and labels (one row per class for a
conditional GAN), balanced labels, latents drawn in bounded chunks and generated in
fixed-size batches (one compilation, memory independent of the count), and the
picture: an image grid, or a scatter plot for 2-D points.
"""

import contextlib
import math
import os
import zipfile
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import viz
from gan_jax.config import Config
from gan_jax.data.pipeline import unscale
from gan_jax.errors import UserError
from gan_jax.state import GAN, GANState, example_shape, sample_latents

# Samples per generator (and scoring) call: bounds memory whatever the sample count.
GENERATION_BATCH = 5000


# Latents are drawn this many rows at a time (see `latent_batches`): at most a few tens of
# MB, and as many as any default count (evaluate's 10,000, the Gaussian fit's 100,000) so
# those stay one draw.
LATENT_CHUNK = 100_000


# A bigger grid is too large to look at (and its PNG to hold in memory).
MAX_GRID_IMAGES = 4096


# The scatter plot shows at most this many points; the .npy holds them all.
MAX_SCATTER_POINTS = 10_000


LabelsOf = Callable[[int, int], np.ndarray | None]


def grid_inputs(config: Config) -> tuple[jax.Array, jax.Array | None, int]:
    """Fixed latents (and labels) for the per-epoch sample grid, and its number of columns.

    A conditional grid has one row per class.
    """
    key = jax.random.fold_in(jax.random.key(config.seed), 0x6121D)
    if config.num_classes:
        per_class = max(1, config.num_grid_samples // config.num_classes)
        labels = jnp.repeat(jnp.arange(config.num_classes), per_class)
        return sample_latents(key, len(labels), config), labels, per_class
    num_cols = int(np.ceil(np.sqrt(config.num_grid_samples)))
    return sample_latents(key, config.num_grid_samples, config), None, num_cols


def balanced_labels(config: Config, num_samples: int, start: int = 0) -> np.ndarray | None:
    """Class labels 0, 1, ..., K-1, 0, 1, ... for a conditional GAN; None otherwise.

    Rows [start, start + num_samples) of that sequence, for scoring in batches.
    """
    if not config.num_classes:
        return None
    return ((start + np.arange(num_samples)) % config.num_classes).astype(np.int32)


def check_label(config: Config, label: int | None) -> None:
    """One-line errors for a `--label` that the GAN cannot take."""
    if label is None:
        return
    if not config.num_classes:
        raise UserError("--label is for conditional GANs; this one is unconditional")
    if not 0 <= label < config.num_classes:
        raise UserError(f"--label must be in [0, {config.num_classes}), got {label}")


def output_layout(
    config: Config, num_samples: int, label: int | None, interpolation_steps: int
) -> tuple[int, int]:
    """(how many examples a sampling request generates, the grid's column count)."""
    if interpolation_steps:
        return num_samples * interpolation_steps, interpolation_steps
    if config.num_classes and label is None:  # one row per class
        per_class = -(-num_samples // config.num_classes)
        return per_class * config.num_classes, per_class
    return num_samples, math.isqrt(num_samples - 1) + 1  # ceil(sqrt(n)): a square grid


def _labels(label: int | None, classes: jax.Array | None, count: int) -> jax.Array | None:
    """`label` for all `count` rows if given, else `classes` (None: unconditional)."""
    return classes if label is None else jnp.full((count,), label, jnp.int32)


def latent_batches(
    key: jax.Array, num_samples: int, config: Config, batch_size: int = GENERATION_BATCH
) -> Iterator[tuple[int, jax.Array]]:
    """The latents of `num_samples` samples, as (first row, z) batches of <= `batch_size` rows.

    Rows [c * LATENT_CHUNK, (c + 1) * LATENT_CHUNK) are one draw, with `key` itself for
    chunk 0 and `fold_in(key, c)` after it: memory stays bounded for any count, and up to
    LATENT_CHUNK samples the latents are exactly `sample_latents(key, num_samples)`.
    """
    for chunk_start in range(0, num_samples, LATENT_CHUNK):
        chunk = chunk_start // LATENT_CHUNK
        chunk_key = jax.random.fold_in(key, chunk) if chunk else key
        z = sample_latents(chunk_key, min(LATENT_CHUNK, num_samples - chunk_start), config)
        for offset in range(0, len(z), batch_size):
            yield chunk_start + offset, z[offset : offset + batch_size]


def input_batches(
    config: Config,
    key: jax.Array,
    num_samples: int,
    label: int | None,
    interpolation_steps: int,
    batch_size: int = GENERATION_BATCH,
) -> Iterator[tuple[jax.Array, jax.Array | None]]:
    """Latents and labels of a sampling request, in batches of about `batch_size` rows.

    Latents come from `evaluation.latent_batches`, so a grid's latents are those of one
    `sample_latents(key, n)` draw (grids never reach its chunk size).
    """
    conditional = bool(config.num_classes)
    if interpolation_steps:
        t = jnp.linspace(0.0, 1.0, interpolation_steps)[None, :, None]
        pairs = max(1, batch_size // interpolation_steps)
        # Even batches of the 2N end points, so no pair is split between two batches.
        for start, ends in latent_batches(key, 2 * num_samples, config, 2 * pairs):
            ends = ends.reshape(-1, 2, config.latent_dim)
            z = (ends[:, :1] * (1 - t) + ends[:, 1:] * t).reshape(-1, config.latent_dim)
            classes = None
            if conditional:  # one class per row, cycling through the classes
                rows = start // 2 + jnp.arange(len(ends), dtype=jnp.int32)
                classes = jnp.repeat(rows % config.num_classes, interpolation_steps)
            yield z, _labels(label, classes, len(z))
        return
    total, per_row = output_layout(config, num_samples, label, interpolation_steps)
    for start, z in latent_batches(key, total, config, batch_size):
        classes = None
        if conditional:  # one class per grid row (unless --label)
            classes = (start + jnp.arange(len(z), dtype=jnp.int32)) // per_row
        yield z, _labels(label, classes, len(z))


def rows_per_call(num_samples: int, interpolation_steps: int, total: int) -> int:
    """The generator's batch: every call is padded to it (one compilation)."""
    if interpolation_steps:
        pairs = min(max(1, GENERATION_BATCH // interpolation_steps), num_samples)
        return pairs * interpolation_steps
    return min(GENERATION_BATCH, total)


def generate_batch(
    gan: GAN, state: GANState, z: jax.Array, labels: Any, num_rows: int
) -> np.ndarray:
    """G's outputs for z (and labels), padded to `num_rows` rows so every call has one shape.

    One shape means one compilation of the generator for any sample count.
    """
    count = len(z)
    y = None if labels is None else jnp.asarray(labels, jnp.int32)
    if count < num_rows:
        z = jnp.concatenate([z, jnp.zeros((num_rows - count, z.shape[1]), z.dtype)])
        if y is not None:
            y = jnp.concatenate([y, jnp.zeros((num_rows - count,), jnp.int32)])
    return np.asarray(gan.jitted_generate(state, z, y))[:count]


def generated_batches(
    gan: GAN,
    state: GANState,
    num_samples: int,
    key: jax.Array,
    labels_of: LabelsOf | None = None,
    batch_size: int = GENERATION_BATCH,
) -> Iterator[tuple[int, np.ndarray]]:
    """G's outputs (inference mode) for `latent_batches`, as (first row, samples) batches.

    Args:
      gan, state: the generator.
      num_samples: how many samples in all.
      key: the latents' key.
      labels_of: `labels_of(start, count)` gives the labels of rows [start, start + count)
        (None: an unconditional GAN).
      batch_size: rows per generator call.
    """
    batch_size = min(batch_size, num_samples)
    for start, z in latent_batches(key, num_samples, gan.config, batch_size):
        labels = None if labels_of is None else labels_of(start, len(z))
        yield start, generate_batch(gan, state, z, labels, batch_size)


def write_arrays(
    gan: GAN,
    state: GANState,
    batches: Iterator[tuple[jax.Array, jax.Array | None]],
    total: int,
    num_rows: int,
    path: str,
) -> np.ndarray:
    """Generates batch by batch straight into `.npy` or `.npz` files, never all in memory.

    The arrays are G's float32 outputs as they are (the data's model range, e.g. [-1, 1]).
    A `.npy` path gets the samples, plus `<stem>_labels.npy` with the requested classes for a
    conditional GAN; a `.npz` path gets both as its arrays 'samples' and 'labels'.

    Args:
      gan, state: the generator.
      batches: from `input_batches`.
      total: examples in all.
      num_rows: generator batch (see `rows_per_call`).
      path: the .npy or .npz file.

    Returns:
      Every k-th example, at most `MAX_SCATTER_POINTS` of them (for a scatter plot).
    """
    stem, suffix = os.path.splitext(path)
    if suffix not in (".npy", ".npz"):
        raise ValueError(f"expected a .npy or .npz path, got {path!r}")
    conditional = bool(gan.config.num_classes)
    if suffix == ".npy":
        samples_path, labels_path = path, f"{stem}_labels.npy"
    else:  # streamed into .npy files beside it, then stored (not compressed) in the zip
        samples_path, labels_path = f"{stem}.samples.tmp.npy", f"{stem}.labels.tmp.npy"
    stride = -(-total // MAX_SCATTER_POINTS)
    shown, start = [], 0
    shape = (total, *example_shape(gan))
    with contextlib.ExitStack() as files:
        samples_file = files.enter_context(_npy_writer(samples_path, "<f4", shape))
        labels_file = (
            files.enter_context(_npy_writer(labels_path, "<i4", (total,))) if conditional else None
        )
        for z, labels in batches:
            batch = generate_batch(gan, state, z, labels, num_rows)
            samples_file.write(np.ascontiguousarray(batch, "<f4").tobytes())
            if labels_file is not None:
                labels_file.write(np.asarray(labels, "<i4").tobytes())
            shown.append(batch[(-start) % stride :: stride].copy())  # not a view: frees batch
            start += len(batch)
    if start != total:
        raise RuntimeError(f"generated {start} examples, expected {total}")
    if suffix == ".npz":
        members = {"samples.npy": samples_path} | (
            {"labels.npy": labels_path} if conditional else {}
        )
        with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as archive:
            for name, member in members.items():
                archive.write(member, name)
                os.remove(member)
    return np.concatenate(shown)


@contextlib.contextmanager
def _npy_writer(path: str, dtype: str, shape: tuple[int, ...]) -> Iterator[Any]:
    """An open .npy file with its header written, for appending the array's bytes.

    Appending to a plain file, unlike a memory map, keeps no page of it in this process.
    """
    with open(path, "wb") as f:
        header = {"descr": dtype, "fortran_order": False, "shape": shape}
        np.lib.format.write_array_header_1_0(f, header)
        yield f


def write_samples(
    path: str,
    samples: np.ndarray,
    config: Config,
    num_cols: int,
    real: np.ndarray | None = None,
    title: str = "",
) -> None:
    """Writes generated examples as a PNG: an image grid, or a scatter plot for 2-D points.

    Args:
      path: the PNG.
      samples: G's outputs, in the model's scale.
      config: the run's (for the data's scaling).
      num_cols: the grid's columns.
      real: 2-D data only: real points to plot beside the generated ones.
      title: 2-D data only: the plot's title.
    """
    if samples.ndim == 2 and samples.shape[1] == 2:
        viz.save_scatter(path, real if real is not None else samples[:0], samples, title=title)
    else:
        viz.save_image_grid(path, np.asarray(unscale(samples, config.data.scaling)), num_cols)
