"""Restores a run's checkpoint and writes generated samples; needs no experiment flags.

  python -m gan_jax.sample --workdir=runs/mlp_gan_mnist --num_samples=64 --out=samples.png

Images become one PNG grid (a conditional GAN gets one row per class, or only
`--label`); 2-D points become a scatter plot plus `<out>.npy`. With
`--interpolation_steps=K`, each row walks linearly in latent space between two
random latents in K steps.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
from absl import flags

from gan_jax import common_flags, viz
from gan_jax.checkpoint import restore_gan
from gan_jax.data.pipeline import unscale
from gan_jax.errors import UserError
from gan_jax.state import sample_latents

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


def sample_inputs(
    config, key: jax.Array, num_samples: int, label: int | None, interpolation_steps: int
) -> tuple[jax.Array, jax.Array | None, int]:
    """Latents, labels and the grid's column count for a sampling request."""
    if interpolation_steps:
        ends = sample_latents(key, 2 * num_samples, config).reshape(num_samples, 2, -1)
        t = jnp.linspace(0.0, 1.0, interpolation_steps)[None, :, None]
        z = (ends[:, :1] * (1 - t) + ends[:, 1:] * t).reshape(-1, config.latent_dim)
        num_cols = interpolation_steps
    else:
        z = sample_latents(key, num_samples, config)
        num_cols = int(np.ceil(np.sqrt(num_samples)))
    if not config.num_classes:
        if label is not None:
            raise UserError("--label is for conditional GANs; this one is unconditional")
        return z, None, num_cols
    if label is not None:
        if not 0 <= label < config.num_classes:
            raise UserError(f"--label must be in [0, {config.num_classes}), got {label}")
        return z, jnp.full((len(z),), label), num_cols
    if interpolation_steps:  # one class per row, cycling through the classes
        labels = jnp.repeat(jnp.arange(num_samples) % config.num_classes, interpolation_steps)
        return z, labels, num_cols
    per_class = -(-num_samples // config.num_classes)  # one row per class
    labels = jnp.repeat(jnp.arange(config.num_classes), per_class)
    z = sample_latents(key, len(labels), config)
    return z, labels, per_class


def main(argv):
    del argv
    gan, state, step = restore_gan(common_flags.WORKDIR.value, common_flags.STEP.value)
    config = gan.config
    z, labels, num_cols = sample_inputs(
        config,
        jax.random.key(common_flags.SEED.value),
        _NUM_SAMPLES.value,
        _LABEL.value,
        _INTERPOLATION_STEPS.value,
    )
    samples = np.asarray(gan.jitted_generate(state, z, labels))
    out = _OUT.value
    if samples.ndim == 2:
        np.save(os.path.splitext(out)[0] + ".npy", samples)
        viz.save_scatter(out, samples[:0], samples, title=f"{config.experiment}, step {step}")
    else:
        viz.save_image_grid(out, np.asarray(unscale(samples, config.data.scaling)), num_cols)
    print(f"wrote {len(samples)} samples of step {step} to {out}")


if __name__ == "__main__":
    flags.mark_flag_as_required("workdir")
    common_flags.run(main)
