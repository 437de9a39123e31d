"""Restores a run's checkpoint and writes generated samples; needs no experiment flags.

  python -m gan_jax.sample --workdir=runs/mlp_gan_mnist --num_samples=64 --out=samples.png

Images become one PNG grid (a conditional GAN gets one row per class, or only
`--label`) of at most 4,096 images. 2-D points become `<out>.npy`, written batch by
batch so that any `--num_samples` fits in memory, plus a scatter plot of at most 10,000
of them. An `--out` ending in `.npy` or `.npz` writes G's float32 outputs themselves (for
tools outside this project) in batches, any count, with their labels for a conditional
GAN (`<stem>_labels.npy`, or the `.npz`'s 'labels'). With `--interpolation_steps=K`, each
row walks linearly in latent space between two random latents in K steps.
"""

import os

import jax
import numpy as np
from absl import flags

from gan_jax import command
from gan_jax.checkpoint import restore_gan
from gan_jax.errors import UserError
from gan_jax.sampling import (
    MAX_GRID_IMAGES,
    MAX_SCATTER_POINTS,
    check_label,
    generate_batch,
    input_batches,
    output_layout,
    rows_per_call,
    write_arrays,
    write_samples,
)
from gan_jax.state import example_shape, for_sampling
from gan_jax.workdir import ensure_writable

_WORKDIR = flags.DEFINE_string("workdir", None, "The run to sample from.", required=True)
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step to restore (default: the latest).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the latents (and labels) drawn.")
_RAW_GENERATOR = command.define_raw_generator()
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 64, "How many samples (or rows) to draw.")
_OUT = flags.DEFINE_string(
    "out",
    "samples.png",
    "Output path: a PNG grid (or scatter plot), or .npy/.npz for the generated arrays.",
)
_LABEL = flags.DEFINE_integer("label", None, "Conditional GANs: draw only this class.")
_INTERPOLATION_STEPS = flags.DEFINE_integer(
    "interpolation_steps", 0, "If > 0, rows of latent interpolations with this many steps."
)
flags.register_validator("num_samples", lambda v: v > 0, message="--num_samples must be positive")
flags.register_validator(
    "interpolation_steps", lambda v: v >= 0, message="--interpolation_steps must be >= 0"
)


def main(argv):
    del argv
    gan, state, step = restore_gan(_WORKDIR.value, _STEP.value)
    state = for_sampling(state, raw_generator=_RAW_GENERATOR.value)
    config = gan.config
    num_samples, label, steps = _NUM_SAMPLES.value, _LABEL.value, _INTERPOLATION_STEPS.value
    check_label(config, label)
    total, num_cols = output_layout(config, num_samples, label, steps)
    out = _OUT.value
    arrays_only = os.path.splitext(out)[1] in (".npy", ".npz")
    is_points = len(example_shape(gan)) == 1
    if not (is_points or arrays_only) and total > MAX_GRID_IMAGES:
        lower = "--num_samples or --interpolation_steps" if steps else "--num_samples"
        raise UserError(
            f"a grid of {total} images is too large to view: one PNG holds at most "
            f"{MAX_GRID_IMAGES}; lower {lower} (or write arrays with --out=FILE.npy)"
        )
    arrays = out if arrays_only else os.path.splitext(out)[0] + ".npy"
    written = [arrays] if arrays_only or is_points else []
    if written and config.num_classes and arrays.endswith(".npy"):
        written.append(os.path.splitext(arrays)[0] + "_labels.npy")
    # Before generating: an unwritable path must not cost the sampling.
    for path in ([] if arrays_only else [out]) + written:
        ensure_writable(path)
    key = jax.random.key(_SEED.value)
    batches = input_batches(config, key, num_samples, label, steps)
    num_rows = rows_per_call(num_samples, steps, total)
    try:
        if written:
            shown = write_arrays(gan, state, batches, total, num_rows, arrays)
            if not arrays_only:
                title = f"{config.experiment}, step {step}"
                write_samples(out, shown, config, num_cols, title=title)
        else:
            images = np.concatenate([generate_batch(gan, state, *b, num_rows) for b in batches])
            write_samples(out, images, config, num_cols)
    except OSError as error:  # e.g. the disk filled up after the check
        raise UserError(f"cannot write {error.filename or out}: {error.strerror}") from error
    if arrays_only:
        shape = (total, *example_shape(gan))
        print(
            f"wrote {total} samples of step {step} to {' and '.join(written)}: G's float32 "
            f"outputs, shape {shape}" + (" (with their labels)" if config.num_classes else "")
        )
    elif not is_points:
        print(f"wrote {total} samples of step {step} to {out}")
    elif len(shown) < total:
        print(
            f"wrote {total} samples of step {step} to {arrays}; {out} plots {len(shown)} of "
            f"them (one in {-(-total // MAX_SCATTER_POINTS)})"
        )
    else:
        print(f"wrote {total} samples of step {step} to {arrays} and {out}")


if __name__ == "__main__":
    command.run(main)
