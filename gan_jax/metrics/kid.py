"""Kernel Inception Distance (Bińkowski et al. 2018), as torch-fidelity 0.4.0 computes it.

KID is the squared maximum mean discrepancy between two feature sets under the polynomial
kernel k(x, y) = (gamma x.y + coef0)^degree, by default (x.y / D + 1)^3. Following
torch-fidelity's `kid_features_to_metric`, it is estimated on `num_subsets` pairs of random
subsets of `subset_size` rows each, and the mean and (population) standard deviation of the
per-subset estimates are reported. Each subset's estimate is the unbiased one of Gretton et al.
(2012): the within-set kernel sums leave out the diagonal k(x, x), so KID of two samples of the
same distribution is 0 in expectation and a single estimate can be slightly negative.

The subsets are drawn exactly as torch-fidelity draws them, so that the same features and
seed give the same mean and std: one `np.random.RandomState(seed)` (default seed 2020, its
`rng_seed` default), and for each subset in turn `rng.choice(n1, subset_size, replace=False)`
for the first set, then the same for the second. Like torch-fidelity (which raises
`ValueError` and does not clamp) a set smaller than `subset_size` is an error.

Everything runs in NumPy float64 on the host. Per subset the estimate is a difference of
kernel means of size ~(1 + x.y / D)^3 whose difference can be 1e-3 of them or less, so float32
sums (what torch-fidelity does with the float32 features its networks produce) keep only a few
significant digits of a small KID: on float32 features torch-fidelity's value differs from ours
by its float32 rounding (up to 3e-6 relative in the mean and 2e-5 in the std on the cases of
tests/data/make_kid_golden.py), and on float64 features the two agree to ~1e-14.

Cost: 3 * num_subsets products of (subset_size, D) by (D, subset_size) matrices, i.e.
6 * num_subsets * subset_size^2 * D flops (1.2 TFLOP at the defaults with D = 2048: tens of
seconds on a few CPU cores); memory is the two feature sets plus three subset_size^2 kernel
matrices (24 MB at the default 1000).
"""

import numpy as np
import numpy.typing as npt


def polynomial_kernel(
    x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> np.ndarray:
    """(gamma x.y + coef0)^degree for all pairs of rows, gamma None meaning 1 / D.

    Args:
        x: (M, D) array.
        y: (P, D) array.
        degree: power of the kernel.
        gamma: scale of the inner product; None for 1 / D, which keeps x.y / D of order one
            whatever the feature dimension.
        coef0: offset added before the power.

    Returns:
        (M, P) kernel matrix in the dtype of the inputs.
    """
    if gamma is None:
        gamma = 1.0 / x.shape[1]
    base = x @ y.T
    base *= gamma
    base += coef0
    if degree != 3:
        return base**degree
    # NumPy's general power is as slow as the product itself; the cube by products
    # (two roundings, 2e-16 relative) halves the kernel's cost after the product.
    cube = base * base
    cube *= base
    return cube


def unbiased_mmd2(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    """Unbiased estimate of MMD^2 from the kernel matrices of two samples of equal size m.

    MMD^2 = E k(x, x') + E k(y, y') - 2 E k(x, y) with x, x' (and y, y') independent, so the
    within-sample means run over the m (m - 1) pairs of distinct rows, while all m^2 cross
    pairs are independent. This is torch-fidelity's `mmd2(..., mmd_est="unbiased")`.

    Args:
        k_xx: (m, m) kernel matrix of the first sample with itself.
        k_xy: (m, m) kernel matrix between the samples.
        k_yy: (m, m) kernel matrix of the second sample with itself.

    Returns:
        The estimate as a Python float.
    """
    m = k_xx.shape[0]
    within = (k_xx.sum() - np.trace(k_xx)) + (k_yy.sum() - np.trace(k_yy))
    return float(within / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def kernel_inception_distance(
    features1: npt.ArrayLike,
    features2: npt.ArrayLike,
    *,
    num_subsets: int = 100,
    subset_size: int = 1000,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
    seed: int = 2020,
) -> tuple[float, float]:
    """KID between two feature sets: mean and std of MMD^2 over random subsets.

    The defaults are torch-fidelity's (`kid_subsets`, `kid_subset_size`,
    `kid_kernel_poly_degree`, `kid_kernel_poly_gamma`, `kid_kernel_poly_coef0`, `rng_seed`),
    and the subsets are drawn the way it draws them, so `(mean, std)` equals its
    `kernel_inception_distance_mean` and `_std` for the same features. Which set is first
    matters only through the draw order (torch-fidelity's input 1 is `features1`).

    Args:
        features1: (N1, D) features (NumPy or JAX), N1 >= subset_size, e.g. of real images.
        features2: (N2, D) features, N2 >= subset_size, e.g. of generated images.
        num_subsets: number of subset pairs to average over, >= 1.
        subset_size: rows per subset, >= 2 (the unbiased estimate needs pairs).
        degree: power of the polynomial kernel.
        gamma: scale of x.y in the kernel; None for 1 / D.
        coef0: offset of the kernel.
        seed: seed of the `np.random.RandomState` that draws the subsets.

    Returns:
        `(mean, std)` of the per-subset estimates as Python floats; `std` is the population
        standard deviation (`np.std`), as torch-fidelity reports it.
    """
    x = np.asarray(features1, dtype=np.float64)
    y = np.asarray(features2, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"features must be (N1, D) and (N2, D), got {x.shape} and {y.shape}")
    if num_subsets < 1 or subset_size < 2:
        raise ValueError(f"need num_subsets >= 1, subset_size >= 2: {num_subsets}, {subset_size}")
    if min(x.shape[0], y.shape[0]) < subset_size:
        raise ValueError(f"KID subset_size {subset_size} exceeds a set: {x.shape[0]}, {y.shape[0]}")

    rng = np.random.RandomState(seed)
    kernel = lambda a, b: polynomial_kernel(a, b, degree=degree, gamma=gamma, coef0=coef0)
    estimates = np.zeros(num_subsets)
    for i in range(num_subsets):
        # Two draws per subset, first set first: torch-fidelity's order, which fixes the
        # subsets a seed gives.
        a = x[rng.choice(x.shape[0], subset_size, replace=False)]
        b = y[rng.choice(y.shape[0], subset_size, replace=False)]
        estimates[i] = unbiased_mmd2(kernel(a, a), kernel(a, b), kernel(b, b))
    return float(np.mean(estimates)), float(np.std(estimates))
