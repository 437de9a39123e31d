"""Tests for gan_jax.metrics.gaussian."""

import math

import numpy as np
import pytest

from gan_jax.metrics import frechet, gaussian

# x = A z + b with z ~ N(0, I) has covariance A A^T = [[1.01, 1.95], [1.95, 4.25]].
_A = np.array([[1.0, 0.1], [2.0, -0.5]])
_TARGET_MEAN = np.array([1.0, 2.0])
_TARGET_COV = np.array([[1.01, 1.95], [1.95, 4.25]])


def test_distance_to_itself_is_zero():
    assert gaussian.wasserstein2_gaussian(_TARGET_MEAN, _TARGET_COV, _TARGET_MEAN, _TARGET_COV) < (
        1e-6
    )


def test_translation_gives_mean_distance():
    delta = np.array([3.0, -4.0])
    got = gaussian.wasserstein2_gaussian(
        _TARGET_MEAN, _TARGET_COV, _TARGET_MEAN + delta, _TARGET_COV
    )
    assert got == pytest.approx(5.0, rel=1e-9)


def test_known_2x2_case_against_hand_computation():
    # Against N(0, I): W2^2 = ||b||^2 + tr(I) + tr(C) - 2 tr(C^{1/2}). For a 2x2 PSD matrix
    # (sqrt(l1) + sqrt(l2))^2 = tr C + 2 sqrt(det C), and det C = 1.01 * 4.25 - 1.95^2 = 0.49,
    # so tr(C^{1/2}) = sqrt(5.26 + 1.4) = sqrt(6.66) and
    # W2^2 = 5 + 2 + 5.26 - 2 sqrt(6.66) = 12.26 - 2 sqrt(6.66) ~= 7.0986.
    np.testing.assert_allclose(_A @ _A.T, _TARGET_COV)
    expected = math.sqrt(12.26 - 2.0 * math.sqrt(6.66))
    got = gaussian.wasserstein2_gaussian(np.zeros(2), np.eye(2), _TARGET_MEAN, _TARGET_COV)
    assert got == pytest.approx(expected, rel=1e-12)
    reverse = gaussian.wasserstein2_gaussian(_TARGET_MEAN, _TARGET_COV, np.zeros(2), np.eye(2))
    assert reverse == pytest.approx(expected, rel=1e-12)


def test_fitted_samples_approach_closed_form():
    rng = np.random.default_rng(1)
    samples = rng.normal(size=(50_000, 2)) @ _A.T + _TARGET_MEAN
    mean, cov = frechet.feature_statistics(samples)
    got = gaussian.wasserstein2_gaussian(np.zeros(2), np.eye(2), mean, cov)
    assert got == pytest.approx(math.sqrt(12.26 - 2.0 * math.sqrt(6.66)), abs=0.03)
    # And the fitted model of the target is close to the target itself.
    assert gaussian.wasserstein2_gaussian(mean, cov, _TARGET_MEAN, _TARGET_COV) < 0.03
