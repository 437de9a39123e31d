"""Inception Score from a classifier's class probabilities.

IS = exp(E_x KL(p(y|x) || p(y))), where p(y) is the mean of p(y|x) over the samples scored.
Following Salimans et al. (2016) and their reference code, the samples are cut into
`num_splits` contiguous chunks, each chunk is scored with its own marginal p(y), and the mean
and (population) standard deviation of the chunk scores are reported.

Probabilities too many to hold at once are scored from per-split sums (`SplitSums`,
`add_to_splits`, `inception_score_from_sums`), with the same splits and the same value up to
float rounding, in memory independent of the number of samples.
"""

from typing import NamedTuple

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


class SplitSums(NamedTuple):
    """Running sums per split, from which each split's score follows exactly.

    KL(p(y|x) || p(y)) = sum_y p log p - sum_y p log p(y), so a split's mean KL is the mean
    of sum_y p log p minus sum_y p(y) log p(y): both terms are sums over its rows, and the
    split's marginal p(y) is only needed once all of its rows have been seen.

    Attributes:
        num_rows: N, the number of rows to be scored in all.
        counts: (S,) rows seen per split.
        prob_sums: (S, K) float64 sums of p(y|x) per split.
        neg_entropy_sums: (S,) float64 sums of sum_y p log p per split (0 log 0 = 0).
    """

    num_rows: int
    counts: np.ndarray
    prob_sums: np.ndarray
    neg_entropy_sums: np.ndarray


def _plogp(p: np.ndarray) -> np.ndarray:
    """p log p elementwise, with 0 log 0 = 0."""
    positive = p > 0
    return np.where(positive, p * np.log(np.where(positive, p, 1.0)), 0.0)


def empty_split_sums(num_rows: int, num_classes: int, num_splits: int = 1) -> SplitSums:
    """Zero sums for scoring `num_rows` rows of `num_classes` probabilities in `num_splits`."""
    if not 1 <= num_splits <= num_rows:
        raise ValueError(f"num_splits must be in [1, {num_rows}], got {num_splits}")
    return SplitSums(
        num_rows,
        np.zeros(num_splits, np.int64),
        np.zeros((num_splits, num_classes), np.float64),
        np.zeros(num_splits, np.float64),
    )


def add_to_splits(sums: SplitSums, probs: npt.ArrayLike, start: int) -> SplitSums:
    """Adds rows [start, start + len(probs)) of the `sums.num_rows` rows being scored.

    Rows may come in batches of any size, in any order, as long as each row comes once;
    split i holds rows [i * N // S, (i + 1) * N // S), as in `inception_score`.
    """
    p = np.asarray(probs, dtype=np.float64)
    stop = start + p.shape[0]
    if p.ndim != 2 or not 0 <= start <= stop <= sums.num_rows:
        raise ValueError(f"rows [{start}, {stop}) of shape {p.shape} outside [0, {sums.num_rows})")
    plogp = _plogp(p).sum(axis=1)
    counts, prob_sums, neg_entropy_sums = (a.copy() for a in sums[1:])
    num_splits = len(counts)
    for i in range(num_splits):
        lo = max(start, i * sums.num_rows // num_splits) - start
        hi = min(stop, (i + 1) * sums.num_rows // num_splits) - start
        if lo < hi:
            counts[i] += hi - lo
            prob_sums[i] += p[lo:hi].sum(axis=0)
            neg_entropy_sums[i] += plogp[lo:hi].sum()
    return SplitSums(sums.num_rows, counts, prob_sums, neg_entropy_sums)


def inception_score_from_sums(sums: SplitSums) -> tuple[float, float]:
    """`inception_score`'s `(mean, std)` over splits, once every row has been added."""
    sizes = np.diff([i * sums.num_rows // len(sums.counts) for i in range(len(sums.counts) + 1)])
    if not np.array_equal(sums.counts, sizes):
        raise ValueError(f"rows per split {sums.counts.tolist()}, expected {sizes.tolist()}")
    marginal = sums.prob_sums / sums.counts[:, None]
    scores = np.exp(sums.neg_entropy_sums / sums.counts - _plogp(marginal).sum(axis=1))
    return float(np.mean(scores)), float(np.std(scores))
