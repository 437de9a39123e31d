"""Scores a trained generator.

Library functions now; the `python -m gan_jax.evaluate` command builds on them.
"""

from typing import Any

import jax
import numpy as np

from gan_jax.data import gaussian
from gan_jax.metrics.gaussian import fit_gaussian, wasserstein2_gaussian
from gan_jax.state import GAN, GANState, generate, sample_latents


def generate_samples(
    gan: GAN, state: GANState, num_samples: int, key: jax.Array, batch_size: int = 10_000
) -> np.ndarray:
    """`num_samples` generator outputs (inference mode) from latents drawn with `key`."""
    sample = jax.jit(lambda s, z: generate(gan, s, z))
    z = sample_latents(key, num_samples, gan.config)
    return np.concatenate(
        [
            np.asarray(sample(state, z[i : i + batch_size]))
            for i in range(0, num_samples, batch_size)
        ]
    )


def gaussian_fit(gan: GAN, state: GANState, num_samples: int, key: jax.Array) -> dict[str, Any]:
    """The Gaussian fitted to G's 2-D samples, the data's target, and the W2 between them."""
    samples = generate_samples(gan, state, num_samples, key)
    mean, cov = fit_gaussian(samples)
    target_mean, target_cov = gaussian.target_moments(
        **{k: v for k, v in gan.config.data.kwargs.items() if k in ("matrix", "offset")}
    )
    return {
        "mean": mean.tolist(),
        "cov": cov.tolist(),
        "target_mean": target_mean.tolist(),
        "target_cov": target_cov.tolist(),
        "w2": wasserstein2_gaussian(mean, cov, target_mean, target_cov),
        "num_samples": num_samples,
    }
