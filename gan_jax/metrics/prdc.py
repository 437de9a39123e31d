"""Precision, recall, density and coverage of generated samples in feature space.

Each real feature vector x_i gets a ball B(x_i, r_i) whose radius r_i is the distance to its
k-th nearest neighbour among the real features, and each fake y_j gets B(y_j, s_j) likewise
among the fakes. Then (Kynkäänniemi et al. 2019; Naeem et al. 2020):

* precision: the fraction of fakes inside at least one real ball (fidelity);
* recall: the fraction of reals inside at least one fake ball (diversity);
* density: the number of (real ball, fake) incidences over k M, about 1 when fakes are spread
  like the reals, above 1 when they crowd where reals are dense (unbounded, unlike precision);
* coverage: the fraction of real balls that hold at least one fake (diversity that, unlike
  recall, fake outliers cannot inflate).

The conventions are those of the `prdc` 0.2 package's `compute_prdc`, whose numbers papers
report: the k-th neighbour distance counts the point itself (distance 0) as the first of its
neighbours, so r_i is the (k + 1)-th smallest of the distances from x_i to all reals, itself
included; "inside" is the strict `d < r`; density divides by k M.

Distances run in JAX on the device, in float32, in blocks of `block_size` rows: three passes
(real-real for the r_i, fake-fake for the s_j, real-fake for the four scores) keep per-row
k-th neighbour radii and per-point counts, and never hold an N x M matrix (prdc does, in
float64: 800 MB at N = M = 10k). Squared distances come from |x|^2 + |y|^2 - 2 x.y, one matmul
per block at full float32 precision (`Precision.HIGHEST`, so no TF32 on GPUs), on features
centred on a set's mean: the formula loses accuracy to cancellation in proportion to
|x|^2 / d^2, and centring makes |x| of the order of the distances. The comparisons use squared
distances, as `d < r` iff `d^2 < r^2`. prdc computes in float64 (from float32 features,
sklearn upcasts), so a point within float32 rounding of a ball's edge could come out the
other way. Measured on ReLU features of dimension 2048 (three real/fake pairs,
N = M = 2000): the float32 squared distances are within 4e-7 relative of float64 ones, at most
1 of 4M pairs lies within 1e-6 relative of a ball's edge, and every per-point decision (the
count of balls holding each fake, recall and coverage per real, k = 3 and 5) equals prdc's, so
the scores are bitwise equal; also with a common offset of 4 on every coordinate.

Memory: the features of both sets on the device, (N + M) D float32 values, one centred copy
of each, and a few (N or M) x `block_size` float32 blocks; images are never held. At
N = M = 10k, D = 2048 and the default block of 1024, XLA's temporaries are 307 MB on CPU (164
MB of them the centred copies), next to the 164 MB of features. Cost: (N^2 + M^2 + N M) D
multiply-adds in the three matmul passes, 6e11 at N = M = 10k and D = 2048, whatever the
number of k values scored together.
"""

import functools
from collections.abc import Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
from jax import lax


class PRDC(NamedTuple):
    """The four scores for one neighbourhood size k, as Python floats."""

    precision: float
    recall: float
    density: float
    coverage: float


def _block_squared_distances(
    rows: jax.Array, rows_sq: jax.Array, cols: jax.Array, cols_sq: jax.Array
) -> jax.Array:
    """(A, D) rows against (B, D) columns -> (A, B) squared Euclidean distances, >= 0."""
    cross = jnp.matmul(rows, cols.T, precision=lax.Precision.HIGHEST)
    # Rounding can take the difference of nearly equal terms below 0 for (near-)duplicates.
    return jnp.maximum(rows_sq[:, None] + cols_sq[None, :] - 2.0 * cross, 0.0)


def _block_start(block_index: jax.Array, block_size: int, total: int) -> jax.Array:
    """Start row of a block; the last one is shifted back to end at `total`.

    Shifting instead of padding keeps every block full-size without copying the features;
    the overlap only recomputes rows whose results are already in place, and every update
    below (writing a row's values, OR, minimum) gives the same result when repeated.
    """
    return jnp.minimum(block_index * block_size, total - block_size)


def _num_blocks(block_size: int, total: int) -> int:
    return -(-total // block_size)


def _kth_neighbour_squared_radii(
    x: jax.Array, nearest_ks: tuple[int, ...], block_size: int
) -> jax.Array:
    """(N, D) centred features -> (N, len(nearest_ks)): squared (k + 1)-th smallest distance.

    The row's distance to itself is set to exactly 0, as sklearn's `pairwise_distances` (and
    so prdc) sets it, and counts among the k + 1.
    """
    n = x.shape[0]
    x_sq = jnp.sum(x * x, axis=1)
    block_size = min(block_size, n)
    kth = jnp.asarray(nearest_ks)

    def step(radii, block_index):
        start = _block_start(block_index, block_size, n)
        rows = lax.dynamic_slice_in_dim(x, start, block_size)
        rows_sq = lax.dynamic_slice_in_dim(x_sq, start, block_size)
        d2 = _block_squared_distances(rows, rows_sq, x, x_sq)
        is_self = jnp.arange(n)[None, :] == (start + jnp.arange(block_size))[:, None]
        d2 = jnp.where(is_self, 0.0, d2)
        # top_k of -d2: the max(ks) + 1 smallest squared distances, in increasing order.
        smallest = -lax.top_k(-d2, max(nearest_ks) + 1)[0]
        return lax.dynamic_update_slice_in_dim(radii, smallest[:, kth], start, axis=0), None

    init = jnp.zeros((n, len(nearest_ks)), dtype=jnp.float32)
    radii, _ = lax.scan(step, init, jnp.arange(_num_blocks(block_size, n)))
    return radii


@functools.partial(jax.jit, static_argnames=("nearest_ks", "block_size"))
def _prdc_counts(
    real: jax.Array, fake: jax.Array, *, nearest_ks: tuple[int, ...], block_size: int
) -> tuple[jax.Array, jax.Array, jax.Array, jax.Array]:
    """The per-point quantities the scores are means of, for every k at once.

    Returns:
        `(real_radii, fake_counts, real_recalled, real_min_d2)`: (N, K) squared real radii;
        (K, M) int32 number of real balls holding each fake; (K, N) bool, whether a fake ball
        holds each real; (N,) squared distance from each real to its nearest fake. K indexes
        `nearest_ks`.
    """
    real = real.astype(jnp.float32)
    fake = fake.astype(jnp.float32)
    n, m = real.shape[0], fake.shape[0]
    # Each set centred on its own mean (the only full-size temporaries). The means need no
    # accuracy: any common shift leaves the distances unchanged.
    real_mean = jnp.mean(real, axis=0)
    fake_mean = jnp.mean(fake, axis=0)
    real = real - real_mean
    fake = fake - fake_mean
    real_radii = _kth_neighbour_squared_radii(real, nearest_ks, block_size)
    fake_radii = _kth_neighbour_squared_radii(fake, nearest_ks, block_size)

    # The cross distances are taken with the reals' mean at the origin: each block of fakes
    # is moved back by the difference of the means, so no third copy of a set is made.
    offset = fake_mean - real_mean
    real_sq = jnp.sum(real * real, axis=1)
    block_size = min(block_size, m)
    num_ks = len(nearest_ks)

    def step(carry, block_index):
        counts, recalled, min_d2 = carry
        start = _block_start(block_index, block_size, m)
        cols = lax.dynamic_slice_in_dim(fake, start, block_size) + offset
        cols_sq = jnp.sum(cols * cols, axis=1)
        cols_radii = lax.dynamic_slice_in_dim(fake_radii, start, block_size)
        d2 = _block_squared_distances(real, real_sq, cols, cols_sq)  # (N, block)
        # One k at a time, so that each comparison fuses into its reduction instead of a
        # (K, N, block) array of booleans being built.
        block_counts = jnp.stack(
            [jnp.sum(d2 < real_radii[:, i, None], axis=0, dtype=jnp.int32) for i in range(num_ks)]
        )
        block_recalled = jnp.stack(
            [jnp.any(d2 < cols_radii[None, :, i], axis=1) for i in range(num_ks)]
        )
        counts = lax.dynamic_update_slice_in_dim(counts, block_counts, start, axis=1)
        recalled = recalled | block_recalled
        min_d2 = jnp.minimum(min_d2, jnp.min(d2, axis=1))
        return (counts, recalled, min_d2), None

    init = (
        jnp.zeros((num_ks, m), dtype=jnp.int32),
        jnp.zeros((num_ks, n), dtype=bool),
        jnp.full((n,), jnp.inf, dtype=jnp.float32),
    )
    (counts, recalled, min_d2), _ = lax.scan(step, init, jnp.arange(_num_blocks(block_size, m)))
    return real_radii, counts, recalled, min_d2


def precision_recall_density_coverage(
    real_features: npt.ArrayLike,
    fake_features: npt.ArrayLike,
    nearest_ks: Sequence[int] = (3, 5),
    *,
    block_size: int = 1024,
) -> dict[int, PRDC]:
    """Precision, recall, density and coverage for each neighbourhood size in `nearest_ks`.

    Why several k in one call: the three distance passes are the whole cost, and with them
    in hand another k is only another comparison per distance, so scoring precision and recall
    at k = 3 and density and coverage at k = 5 (the papers' choices) together costs what one k
    does, half of two separate calls.

    Args:
        real_features: (N, D) features of real images (NumPy or JAX), N > max(nearest_ks).
        fake_features: (M, D) features of generated images, M > max(nearest_ks).
        nearest_ks: neighbourhood sizes k >= 1, each giving one `PRDC`.
        block_size: rows of one distance block (static): peak memory holds a few
            max(N, M) x block_size float32 blocks (40 MB each for 10k x 1024).

    Returns:
        `{k: PRDC(precision, recall, density, coverage)}` for each k in `nearest_ks`, equal to
        `prdc.compute_prdc(real, fake, nearest_k=k)` up to float32 rounding of points on a
        ball's edge (see the module docstring).
    """
    real = jnp.asarray(real_features)
    fake = jnp.asarray(fake_features)
    ks = tuple(int(k) for k in nearest_ks)
    if real.ndim != 2 or fake.ndim != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"features must be (N, D) and (M, D), got {real.shape}, {fake.shape}")
    if not ks or min(ks) < 1:
        raise ValueError(f"nearest_ks must be positive, got {nearest_ks}")
    if min(real.shape[0], fake.shape[0]) <= max(ks):
        raise ValueError(
            f"need more than k = {max(ks)} points per set, got {real.shape[0]}, {fake.shape[0]}"
        )
    if block_size < 1:
        raise ValueError(f"block_size must be positive, got {block_size}")

    real_radii, counts, recalled, min_d2 = jax.device_get(
        _prdc_counts(real, fake, nearest_ks=ks, block_size=block_size)
    )
    return {
        k: PRDC(
            precision=float(np.mean(counts[i] > 0)),
            recall=float(np.mean(recalled[i])),
            # prdc's (1 / k) * mean, in that order, so equal counts give equal floats.
            density=float((1.0 / k) * np.mean(counts[i])),
            coverage=float(np.mean(min_d2 < real_radii[:, i])),
        )
        for i, k in enumerate(ks)
    }
