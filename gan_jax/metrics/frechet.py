"""Fréchet distance between Gaussians fitted to feature sets (the FID formula).

The distance between N(m1, C1) and N(m2, C2) is

    ||m1 - m2||^2 + tr(C1) + tr(C2) - 2 tr((C1^{1/2} C2 C1^{1/2})^{1/2}).

Everything here runs in NumPy float64 on the host: the statistics are small (D x D with D in
the hundreds) and the trace term subtracts large nearly equal numbers, so float32 (JAX's
default with x64 off) would lose most of the significant digits of a small distance.
"""

import numpy as np
import numpy.typing as npt


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
    mean = x.mean(axis=0)
    centred = x - mean
    # One (D, N) @ (N, D) BLAS call; np.cov does the same work but copies more.
    cov = centred.T @ centred / (n - 1)
    return mean, cov


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
