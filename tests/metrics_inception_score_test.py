"""Tests for gan_jax.metrics.inception_score."""

import jax
import numpy as np
import pytest
import scipy.special

from gan_jax.metrics import inception_score as inception_score_lib


def _reference_score(probs: np.ndarray) -> float:
    """exp(mean KL(p(y|x) || p(y))) in float64, with scipy's 0 * log 0 = 0 handling."""
    probs = probs.astype(np.float64)
    marginal = probs.mean(axis=0, keepdims=True)
    return float(np.exp(np.mean(np.sum(scipy.special.rel_entr(probs, marginal), axis=1))))


def test_even_one_hot_predictions_score_num_classes():
    num_classes = 10
    probs = np.eye(num_classes, dtype=np.float32)[np.arange(500) % num_classes]
    mean, std = inception_score_lib.inception_score(probs)
    assert mean == pytest.approx(num_classes, rel=1e-5)
    assert std == 0.0


def test_identical_predictions_score_one():
    rng = np.random.default_rng(0)
    row = scipy.special.softmax(rng.normal(size=10))
    mean, _ = inception_score_lib.inception_score(np.tile(row, (64, 1)))
    assert mean == pytest.approx(1.0, abs=1e-5)


def test_matches_float64_reference_with_exact_zeros():
    rng = np.random.default_rng(1)
    probs = rng.dirichlet(np.full(10, 0.3), size=400)
    probs[rng.random(probs.shape) < 0.3] = 0.0  # Exact zeros, then renormalise.
    probs[:, 0] += 1e-3
    probs /= probs.sum(axis=1, keepdims=True)
    mean, std = inception_score_lib.inception_score(probs.astype(np.float32))
    assert np.isfinite(mean)
    assert 1.0 < mean < 10.0
    assert mean == pytest.approx(_reference_score(probs), rel=1e-5)
    assert std == 0.0


def test_mean_kl_is_jittable_and_finite_with_zeros():
    probs = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]], dtype=np.float32)
    value = jax.jit(inception_score_lib.mean_kl_to_marginal)(probs)
    assert np.isfinite(value)
    assert float(np.exp(value)) == pytest.approx(_reference_score(probs), rel=1e-6)


def test_mean_kl_gradient_is_finite_with_zeros():
    # Column 2 is zero everywhere, so its marginal is 0 as well.
    probs = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.5, 0.5, 0.0]], dtype=np.float32)
    grad = jax.grad(inception_score_lib.mean_kl_to_marginal)(probs)
    assert np.all(np.isfinite(grad))


def test_splits_score_each_chunk_with_its_own_marginal():
    # First half collapsed onto class 0 (score 1), second half spread over 4 classes (score 4).
    probs = np.eye(4, dtype=np.float32)[np.r_[np.zeros(8, int), np.arange(8) % 4]]
    mean, std = inception_score_lib.inception_score(probs, num_splits=2)
    assert mean == pytest.approx(2.5, rel=1e-5)
    assert std == pytest.approx(1.5, rel=1e-5)
    # Scored as one split, the marginal mixes both halves and the score differs.
    whole, _ = inception_score_lib.inception_score(probs, num_splits=1)
    assert whole == pytest.approx(_reference_score(probs), rel=1e-5)
    assert whole != pytest.approx(2.5, rel=1e-2)


def test_uneven_splits_follow_reference_boundaries():
    # N=7, 2 splits -> rows [0, 3) and [3, 7) (i * N // splits). Rows 0-3 are class 0 and rows
    # 4-6 classes 1-3, so the reference boundaries give scores (1, 4): mean 2.5, std 1.5,
    # while [0, 4) / [4, 7) would give (1, 3).
    probs = np.eye(4, dtype=np.float32)[[0, 0, 0, 0, 1, 2, 3]]
    mean, std = inception_score_lib.inception_score(probs, num_splits=2)
    assert mean == pytest.approx(2.5, rel=1e-5)
    assert std == pytest.approx(1.5, rel=1e-5)


def test_even_predictions_every_split_scores_num_classes():
    probs = np.eye(5, dtype=np.float32)[np.arange(100) % 5]
    mean, std = inception_score_lib.inception_score(probs, num_splits=10)
    assert mean == pytest.approx(5.0, rel=1e-5)
    assert std == pytest.approx(0.0, abs=1e-5)


@pytest.mark.parametrize("num_splits", [0, 11])
def test_rejects_bad_num_splits(num_splits):
    with pytest.raises(ValueError):
        inception_score_lib.inception_score(np.full((10, 2), 0.5), num_splits=num_splits)
