"""Restores a run's checkpoint and writes generated samples; needs no experiment flags.

  python -m gan_jax.sample --workdir=runs/mlp_gan_mnist --num_samples=64 --out=samples.png

Images become one PNG grid (a conditional GAN gets one row per class, or only
`--label`) of at most 4,096 images. 2-D points become `<out>.npy`, written batch by
batch so that any `--num_samples` fits in memory, plus a scatter plot of at most 10,000
of them. With `--interpolation_steps=K`, each row walks linearly in latent space
between two random latents in K steps.
"""

import math
import os
from collections.abc import Iterator

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from gan_jax import common_flags, viz
from gan_jax.checkpoint import restore_gan
from gan_jax.config import Config
from gan_jax.data.pipeline import unscale
from gan_jax.errors import UserError
from gan_jax.evaluation import GENERATION_BATCH, ensure_writable, generate_batch, latent_batches
from gan_jax.state import GAN, GANState, example_shape

# A bigger grid is too large to look at (and its PNG to hold in memory).
MAX_GRID_IMAGES = 4096
# The scatter plot shows at most this many points; the .npy holds them all.
MAX_SCATTER_POINTS = 10_000

_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 64, "How many samples (or rows) to draw.")
_OUT = flags.DEFINE_string("out", "samples.png", "Output PNG path.")
_LABEL = flags.DEFINE_integer("label", None, "Conditional GANs: draw only this class.")
_INTERPOLATION_STEPS = flags.DEFINE_integer(
    "interpolation_steps", 0, "If > 0, rows of latent interpolations with this many steps."
)
flags.register_validator("num_samples", lambda v: v > 0, message="--num_samples must be positive")
flags.register_validator(
    "interpolation_steps", lambda v: v >= 0, message="--interpolation_steps must be >= 0"
)


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


def write_points(
    gan: GAN,
    state: GANState,
    batches: Iterator[tuple[jax.Array, jax.Array | None]],
    shape: tuple[int, int],
    num_rows: int,
    path: str,
) -> np.ndarray:
    """Generates 2-D points batch by batch straight into the .npy file at `path`.

    Args:
      gan, state: the generator.
      batches: from `input_batches`.
      shape: (points, dimensions) in all.
      num_rows: generator batch (see `rows_per_call`).
      path: the .npy file.

    Returns:
      Every k-th point, at most `MAX_SCATTER_POINTS` of them, for the scatter plot.
    """
    stride = -(-shape[0] // MAX_SCATTER_POINTS)
    shown, start = [], 0
    header = {"descr": "<f4", "fortran_order": False, "shape": shape}
    # Appending to a plain file, unlike a memory map, keeps no page of it in this process.
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        for z, labels in batches:
            batch = generate_batch(gan, state, z, labels, num_rows)
            f.write(np.ascontiguousarray(batch, "<f4").tobytes())
            shown.append(batch[(-start) % stride :: stride].copy())  # not a view: frees batch
            start += len(batch)
    if start != shape[0]:
        raise RuntimeError(f"generated {start} points, expected {shape[0]}")
    return np.concatenate(shown)


def main(argv):
    del argv
    gan, state, step = restore_gan(common_flags.WORKDIR.value, common_flags.STEP.value)
    config = gan.config
    num_samples, label, steps = _NUM_SAMPLES.value, _LABEL.value, _INTERPOLATION_STEPS.value
    check_label(config, label)
    total, num_cols = output_layout(config, num_samples, label, steps)
    is_points = len(example_shape(gan)) == 1
    if not is_points and total > MAX_GRID_IMAGES:
        lower = "--num_samples or --interpolation_steps" if steps else "--num_samples"
        raise UserError(
            f"a grid of {total} images is too large to view: one PNG holds at most "
            f"{MAX_GRID_IMAGES}; lower {lower} (or run again with another --seed for more)"
        )
    out = _OUT.value
    npy = os.path.splitext(out)[0] + ".npy"
    # Before generating: an unwritable path must not cost the sampling.
    for path in (out, npy) if is_points else (out,):
        ensure_writable(path)
    key = jax.random.key(common_flags.SEED.value)
    batches = input_batches(config, key, num_samples, label, steps)
    num_rows = rows_per_call(num_samples, steps, total)
    try:
        if is_points:
            shown = write_points(gan, state, batches, (total, *example_shape(gan)), num_rows, npy)
            viz.save_scatter(out, shown[:0], shown, title=f"{config.experiment}, step {step}")
        else:
            images = np.concatenate([generate_batch(gan, state, *b, num_rows) for b in batches])
            viz.save_image_grid(out, np.asarray(unscale(images, config.data.scaling)), num_cols)
    except OSError as error:  # e.g. the disk filled up after the check
        raise UserError(f"cannot write {error.filename or out}: {error.strerror}") from error
    if not is_points:
        print(f"wrote {total} samples of step {step} to {out}")
    elif len(shown) < total:
        print(
            f"wrote {total} samples of step {step} to {npy}; {out} plots {len(shown)} of them "
            f"(one in {-(-total // MAX_SCATTER_POINTS)})"
        )
    else:
        print(f"wrote {total} samples of step {step} to {npy} and {out}")


if __name__ == "__main__":
    flags.mark_flag_as_required("workdir")
    common_flags.run(main)
