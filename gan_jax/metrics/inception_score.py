"""Inception Score from a classifier's class probabilities.

IS = exp(E_x KL(p(y|x) || p(y))), where p(y) is the mean of p(y|x) over the samples scored.
Following Salimans et al. (2016) and their reference code, the samples are cut into
`num_splits` contiguous chunks, each chunk is scored with its own marginal p(y), and the mean
and (population) standard deviation of the chunk scores are reported.
"""

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt


@jax.jit
def mean_kl_to_marginal(probs: jax.Array) -> jax.Array:
    """E_x KL(p(y|x) || p(y)) for one split, the log of its Inception Score.

    Args:
        probs: (N, K) class probabilities, rows summing to 1; exact zeros are allowed.

    Returns:
        A float32 scalar, the mean over rows of the KL divergence from each row to the row
        mean.
    """
    probs = jnp.asarray(probs, dtype=jnp.float32)
    marginal = jnp.mean(probs, axis=0, keepdims=True)
    # 0 * log 0 = 0 by convention, and where p(y|x) > 0 the marginal is > 0 too. The outer
    # `where` alone gets the value right, but log(0) = -inf would still sit in the unselected
    # branch and turn the gradient into NaN (0 * inf); feeding the logs 1 there keeps every
    # intermediate finite (the usual JAX "double where").
    positive = probs > 0
    safe_probs = jnp.where(positive, probs, 1.0)
    safe_marginal = jnp.where(positive, marginal, 1.0)
    kl_terms = jnp.where(positive, probs * (jnp.log(safe_probs) - jnp.log(safe_marginal)), 0.0)
    return jnp.mean(jnp.sum(kl_terms, axis=1))


def inception_score(probs: npt.ArrayLike, num_splits: int = 1) -> tuple[float, float]:
    """Inception Score, mean and standard deviation over splits.

    Split i holds rows [i * N // num_splits, (i + 1) * N // num_splits), the convention of the
    reference implementation, so splits differ in size by at most one row when num_splits does
    not divide N.

    Args:
        probs: (N, K) class probabilities p(y|x) (NumPy or JAX).
        num_splits: number of contiguous chunks to score separately, 1 <= num_splits <= N.

    Returns:
        `(mean, std)` of the per-split scores as Python floats; `std` is the population standard
        deviation (`np.std`), 0 when `num_splits == 1`. Scores lie in [1, K].
    """
    probs = jnp.asarray(probs, dtype=jnp.float32)
    if probs.ndim != 2:
        raise ValueError(f"probs must be (N, K), got shape {probs.shape}")
    n = probs.shape[0]
    if not 1 <= num_splits <= n:
        raise ValueError(f"num_splits must be in [1, {n}], got {num_splits}")
    log_scores = [
        mean_kl_to_marginal(probs[i * n // num_splits : (i + 1) * n // num_splits])
        for i in range(num_splits)
    ]
    # exp, mean and std on the host in float64: cheap, and exp amplifies float32 rounding.
    scores = np.exp(np.asarray(jax.device_get(log_scores), dtype=np.float64))
    return float(np.mean(scores)), float(np.std(scores))
