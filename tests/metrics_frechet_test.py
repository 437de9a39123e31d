"""Tests for gan_jax.metrics.frechet."""

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg

from gan_jax.metrics import frechet


def _random_features(rng: np.random.Generator, n: int, d: int, shift: float) -> np.ndarray:
    """Correlated, non-centred features, so covariances are full and non-diagonal."""
    mixing = rng.normal(size=(d, d)) / np.sqrt(d)
    return rng.normal(size=(n, d)) @ mixing + shift * rng.normal(size=d)


def _scipy_reference(m1, c1, m2, c2) -> float:
    """The formula of the reference FID code (pytorch-fid / TTUR), via scipy.linalg.sqrtm."""
    covmean = scipy.linalg.sqrtm(c1 @ c2)
    diff = m1 - m2
    return float(diff @ diff + np.trace(c1) + np.trace(c2) - 2.0 * np.trace(covmean).real)


def _random_rotation(rng: np.random.Generator, d: int) -> np.ndarray:
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    return q


def test_feature_statistics_match_numpy_and_accept_jax_arrays():
    rng = np.random.default_rng(0)
    x = _random_features(rng, 300, 16, shift=2.0).astype(np.float32)
    mean, cov = frechet.feature_statistics(jnp.asarray(x))
    assert mean.dtype == np.float64 and cov.dtype == np.float64
    np.testing.assert_allclose(mean, x.astype(np.float64).mean(0), rtol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x.astype(np.float64), rowvar=False), rtol=1e-10)


@pytest.mark.parametrize("shape", [(5,), (1, 4), (2, 3, 4)])
def test_feature_statistics_rejects_bad_shapes(shape):
    with pytest.raises(ValueError):
        frechet.feature_statistics(np.zeros(shape))


def test_diagonal_covariances_match_closed_form():
    rng = np.random.default_rng(1)
    d = 32
    m1, m2 = rng.normal(size=d), rng.normal(size=d)
    a, b = rng.uniform(0.1, 3.0, size=d), rng.uniform(0.1, 3.0, size=d)
    expected = np.sum((m1 - m2) ** 2) + np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet.frechet_distance(m1, np.diag(a), m2, np.diag(b))
    assert got == pytest.approx(expected, rel=1e-12)


def test_commuting_covariances_match_closed_form():
    # Shared eigenvectors: the distance reduces to the diagonal case in the rotated basis.
    rng = np.random.default_rng(2)
    d = 24
    q = _random_rotation(rng, d)
    a, b = rng.uniform(0.0, 2.0, size=d), rng.uniform(0.0, 2.0, size=d)
    a[:4] = 0.0  # Singular, to exercise the eigenvalue clipping.
    m = rng.normal(size=d)
    expected = np.sum((np.sqrt(a) - np.sqrt(b)) ** 2)
    got = frechet.frechet_distance(m, q @ np.diag(a) @ q.T, m, q @ np.diag(b) @ q.T)
    assert got == pytest.approx(expected, rel=1e-12)


def test_identical_statistics_give_zero():
    rng = np.random.default_rng(3)
    mean, cov = frechet.feature_statistics(_random_features(rng, 500, 64, shift=1.0))
    got = frechet.frechet_distance(mean, cov, mean, cov)
    assert 0.0 <= got < 1e-10 * np.trace(cov)


def test_agrees_with_scipy_sqrtm_reference():
    rng = np.random.default_rng(4)
    m1, c1 = frechet.feature_statistics(_random_features(rng, 500, 64, shift=0.0))
    m2, c2 = frechet.feature_statistics(_random_features(rng, 500, 64, shift=0.5))
    expected = _scipy_reference(m1, c1, m2, c2)
    assert expected > 1.0  # The two sets really differ, so the comparison is meaningful.
    assert frechet.frechet_distance(m1, c1, m2, c2) == pytest.approx(expected, rel=1e-6)
    # Symmetric in its arguments even though the formula is written asymmetrically.
    assert frechet.frechet_distance(m2, c2, m1, c1) == pytest.approx(expected, rel=1e-6)


def test_small_difference_keeps_relative_accuracy():
    # Two nearby distributions: the result is a small difference of large traces.
    rng = np.random.default_rng(5)
    x = _random_features(rng, 2000, 64, shift=0.0)
    m1, c1 = frechet.feature_statistics(x[:1000])
    m2, c2 = frechet.feature_statistics(x[1000:])
    expected = _scipy_reference(m1, c1, m2, c2)
    assert expected < 0.1 * np.trace(c1)
    assert frechet.frechet_distance(m1, c1, m2, c2) == pytest.approx(expected, rel=1e-6)


def test_singular_covariances_fewer_samples_than_dimensions():
    # With N < D both covariances have rank N - 1. The nonzero eigenvalues of
    # C1^{1/2} C2 C1^{1/2} are those of C1 C2 = X1^T X1 X2^T X2 / ((n1-1)(n2-1)), i.e. the
    # squared singular values of X1 X2^T / sqrt((n1-1)(n2-1)) for centred X: an independent
    # reference that needs no square root of a singular matrix.
    rng = np.random.default_rng(6)
    n1, n2, d = 20, 30, 64
    x1 = _random_features(rng, n1, d, shift=0.0)
    x2 = _random_features(rng, n2, d, shift=0.3)
    m1, c1 = frechet.feature_statistics(x1)
    m2, c2 = frechet.feature_statistics(x2)
    assert np.linalg.matrix_rank(c1) == n1 - 1
    cross = (x1 - m1) @ (x2 - m2).T / np.sqrt((n1 - 1) * (n2 - 1))
    trace_sqrt = np.sum(np.linalg.svd(cross, compute_uv=False))
    diff = m1 - m2
    expected = diff @ diff + np.trace(c1) + np.trace(c2) - 2.0 * trace_sqrt

    got = frechet.frechet_distance(m1, c1, m2, c2)
    assert np.isfinite(got)
    # Without zeroing the eigenvalues that are pure rounding noise the error is ~2e-8.
    assert got == pytest.approx(expected, rel=1e-12)
    assert frechet.frechet_distance(m1, c1, m1, c1) < 1e-10 * np.trace(c1)


def test_rejects_mismatched_shapes():
    with pytest.raises(ValueError):
        frechet.frechet_distance(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
    with pytest.raises(ValueError):
        frechet.frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), np.eye(3))
