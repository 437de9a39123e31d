"""Fréchet distance between Gaussians fitted to feature sets (the FID formula).

The distance between N(m1, C1) and N(m2, C2) is

    ||m1 - m2||^2 + tr(C1) + tr(C2) - 2 tr((C1^{1/2} C2 C1^{1/2})^{1/2}).

Everything here runs in NumPy float64 on the host: the statistics are small (D x D with D in
the hundreds) and the trace term subtracts large nearly equal numbers, so float32 (JAX's
default with x64 off) would lose most of the significant digits of a small distance.

Statistics of a feature set too large to hold at once are accumulated batch by batch as
`Moments` (`batch_moments`, `merge_moments`, `moments_statistics`): memory is O(D^2) whatever
the number of samples, and the result equals `feature_statistics` of all the features up to
float64 rounding.
"""

from typing import NamedTuple

import numpy as np
import numpy.typing as npt


class Moments(NamedTuple):
    """Count, mean and scatter matrix of a set of feature vectors, in float64.

    Attributes:
        count: number of vectors N.
        mean: (D,) their mean.
        scatter: (D, D) sum over the vectors of (x - mean)(x - mean)^T; the unbiased
            covariance is `scatter / (count - 1)`.
    """

    count: int
    mean: np.ndarray
    scatter: np.ndarray


def batch_moments(features: npt.ArrayLike) -> Moments:
    """The `Moments` of one (N, D) batch of feature vectors (NumPy or JAX), N >= 1."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"features must be (N, D) with N >= 1, got shape {x.shape}")
    mean = x.mean(axis=0)
    centred = x - mean
    # One (D, N) @ (N, D) BLAS call; np.cov does the same work but copies more.
    return Moments(x.shape[0], mean, centred.T @ centred)


def merge_moments(a: Moments | None, b: Moments) -> Moments:
    """The `Moments` of the union of two sets (`a` None: nothing seen yet, `b` itself).

    Why merge centred moments (Chan, Golub and LeVeque's pairwise update) rather than add up
    sums of x and x x^T: the covariance from raw sums is E[x x^T] - m m^T, a difference of
    nearly equal numbers when the mean is large next to the spread, while the centred
    scatter matrices keep full float64 precision.
    """
    if a is None:
        return b
    count = a.count + b.count
    delta = b.mean - a.mean
    mean = a.mean + delta * (b.count / count)
    scatter = a.scatter + b.scatter + np.outer(delta, delta) * (a.count * b.count / count)
    return Moments(count, mean, scatter)


def moments_statistics(moments: Moments) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance, as `feature_statistics` returns them, from `Moments`."""
    if moments.count < 2:
        raise ValueError(f"need at least 2 samples for a covariance, got {moments.count}")
    return moments.mean, moments.scatter / (moments.count - 1)


def feature_statistics(features: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance of a feature set.

    Args:
        features: (N, D) array (NumPy or JAX) of N feature vectors, N >= 2.

    Returns:
        `(mean, cov)`: float64 arrays of shape (D,) and (D, D); `cov` uses the N - 1
        normalisation of `np.cov`.
    """
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be (N, D), got shape {x.shape}")
    n = x.shape[0]
    if n < 2:
        raise ValueError(f"need at least 2 samples for a covariance, got {n}")
    return moments_statistics(batch_moments(x))


def _clip_eigenvalues(eigvals: np.ndarray) -> np.ndarray:
    """Zero the eigenvalues of a symmetric PSD matrix that are indistinguishable from zero.

    `eigh` is accurate to about eps * D * max|eigenvalue| in absolute terms, so the zero
    eigenvalues of a singular covariance come back as +-1e-16 * scale. Negative ones would make
    the square root NaN, and positive ones are just as wrong: their square roots, each about
    1e-8 * sqrt(scale), add up to a visible bias in the trace (~1e-8 relative on 64-D features
    from 20 samples, where this clipping brings it to ~1e-16). Below the tolerance that
    `np.linalg.matrix_rank` uses, an eigenvalue is therefore treated as exactly zero.
    """
    tolerance = np.max(np.abs(eigvals), initial=0.0) * eigvals.shape[0] * np.finfo(np.float64).eps
    return np.where(eigvals > tolerance, eigvals, 0.0)


def _psd_sqrt(cov: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric PSD matrix via its eigendecomposition."""
    eigvals, eigvecs = np.linalg.eigh(cov)
    return (eigvecs * np.sqrt(_clip_eigenvalues(eigvals))) @ eigvecs.T


def trace_sqrt_product(cov1: np.ndarray, cov2: np.ndarray) -> float:
    """tr((C1^{1/2} C2 C1^{1/2})^{1/2}) for symmetric PSD C1, C2, in float64.

    Why symmetric eigendecompositions instead of `scipy.linalg.sqrtm(C1 @ C2)` as in the
    reference FID code: C1 C2 is not symmetric, so its Schur-based square root can come back
    complex or inaccurate when the covariances are singular (fewer samples than dimensions),
    which is why that code adds an `eps * I` offset. Here C1^{1/2} C2 C1^{1/2} is symmetric PSD
    by construction (and has the same eigenvalues as C1 C2), so `eigh` gives real eigenvalues
    with backward-stable accuracy, the only rounding artefacts are eigenvalues of size
    eps * scale around zero, which `_clip_eigenvalues` sets to exactly zero, and no regularising
    offset is needed. The trace of the square root is just the sum of the square roots of those
    eigenvalues, so the outer root is never formed.

    Args:
        cov1: (D, D) symmetric PSD matrix.
        cov2: (D, D) symmetric PSD matrix.

    Returns:
        The trace as a Python float.
    """
    sqrt1 = _psd_sqrt(cov1)
    middle = sqrt1 @ cov2 @ sqrt1
    # Symmetrise away the rounding asymmetry of the triple product; eigvalsh reads one triangle.
    middle = 0.5 * (middle + middle.T)
    eigvals = np.linalg.eigvalsh(middle)
    return float(np.sum(np.sqrt(_clip_eigenvalues(eigvals))))


def frechet_distance(
    mean1: npt.ArrayLike, cov1: npt.ArrayLike, mean2: npt.ArrayLike, cov2: npt.ArrayLike
) -> float:
    """Fréchet distance between N(mean1, cov1) and N(mean2, cov2).

    This is the squared 2-Wasserstein distance between the two Gaussians; on classifier or
    Inception features it is the FID.

    Args:
        mean1: (D,) mean of the first distribution.
        cov1: (D, D) symmetric PSD covariance of the first distribution (may be singular).
        mean2: (D,) mean of the second distribution.
        cov2: (D, D) symmetric PSD covariance of the second distribution (may be singular).

    Returns:
        The distance as a non-negative Python float.
    """
    m1 = np.asarray(mean1, dtype=np.float64)
    m2 = np.asarray(mean2, dtype=np.float64)
    c1 = np.asarray(cov1, dtype=np.float64)
    c2 = np.asarray(cov2, dtype=np.float64)
    d = m1.shape[0] if m1.ndim == 1 else -1
    if m1.shape != (d,) or m2.shape != (d,) or c1.shape != (d, d) or c2.shape != (d, d):
        raise ValueError(
            "expected means of shape (D,) and covariances of shape (D, D), got "
            f"{m1.shape}, {c1.shape}, {m2.shape}, {c2.shape}"
        )
    diff = m1 - m2
    value = diff @ diff + np.trace(c1) + np.trace(c2) - 2.0 * trace_sqrt_product(c1, c2)
    # The exact value is >= 0; for identical statistics rounding can leave about -1e-13.
    return max(float(value), 0.0)
