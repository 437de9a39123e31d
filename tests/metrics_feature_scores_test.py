"""Tests for gan_jax.metrics.feature_scores: one feature pass, every score."""

import numpy as np
import pytest
import scipy.special

from gan_jax.metrics import feature_scores, frechet, inception_score, kid, prdc
from gan_jax.metrics.feature_scores import FeatureNetwork, FeaturePass


def _linear_network(dim: int = 8, classes: int = 5, seed: int = 0) -> FeatureNetwork:
    """Features and logits as fixed random projections of the pixels."""
    rng = np.random.default_rng(seed)
    to_features = rng.normal(size=(4 * 4 * 1, dim))
    to_logits = rng.normal(size=(dim, classes))

    def outputs(images):
        features = np.asarray(images, np.float64).reshape(len(images), -1) @ to_features
        return features.astype(np.float32), features @ to_logits

    return FeatureNetwork("linear", f"linear{dim}-{classes}-{seed}", outputs)


def _images(count: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (count, 4, 4, 1), dtype=np.uint8)


def test_a_streamed_pass_equals_the_one_array_formulas():
    network = _linear_network()
    images = _images(1000, 0).astype(np.float32) / 255
    features, logits = network.outputs(images)
    streamed = feature_scores.feature_pass(
        network, (images[i : i + 96] for i in range(0, 1000, 96)), 1000, keep=300
    )
    result = streamed.features()
    mean, cov = frechet.feature_statistics(features)
    np.testing.assert_allclose(result.mean, mean, rtol=1e-10)
    np.testing.assert_allclose(result.cov, cov, rtol=1e-9)
    np.testing.assert_array_equal(result.kept, features[:300])
    classes = streamed.class_scores()
    score, std = inception_score.inception_score(scipy.special.softmax(logits, axis=1), 10)
    assert classes["inception_score"] == pytest.approx(score, rel=1e-5)
    assert classes["inception_score_std"] == pytest.approx(std, rel=1e-4)
    histogram = np.bincount(np.argmax(logits, axis=1), minlength=5) / 1000
    assert classes["class_histogram"] == pytest.approx(histogram.tolist(), abs=1e-4)
    # Half of the fair share (0.1 of 5 classes) or more.
    assert classes["covered_classes"] == int(np.sum(histogram >= 0.1))


def test_a_pass_refuses_more_images_than_announced():
    network = _linear_network()
    accumulated = FeaturePass(10)
    accumulated.add(*network.outputs(_images(10, 0) / 255))
    with pytest.raises(ValueError, match="11 images added to a pass of 10"):
        accumulated.add(*network.outputs(_images(1, 1) / 255))


@pytest.mark.slow
def test_compare_gives_each_score_as_its_reference_computes_it():
    network = _linear_network()
    real = feature_scores.feature_pass(network, [_images(600, 0) / 255], 600).features()
    fake = feature_scores.feature_pass(network, [_images(400, 1) / 128], 400).features()
    scores = feature_scores.compare(real, fake)
    assert scores["fid"] == pytest.approx(
        frechet.frechet_distance(fake.mean, fake.cov, real.mean, real.cov)
    )
    # KID's subsets shrink to the smaller set's 400 kept rows.
    assert (scores["kid"], scores["kid_std"]) == kid.kernel_inception_distance(
        real.kept, fake.kept, subset_size=400
    )
    by_k = prdc.precision_recall_density_coverage(real.kept, fake.kept, (3, 5))
    assert (scores["precision"], scores["recall"]) == (by_k[3].precision, by_k[3].recall)
    assert (scores["density"], scores["coverage"]) == (by_k[5].density, by_k[5].coverage)
    assert scores["fid"] > 1 and scores["kid"] > 0


def test_real_features_are_computed_once_and_again_for_other_images(tmp_path):
    calls = []
    network = _linear_network()
    counted = network._replace(outputs=lambda x: (calls.append(len(x)), network.outputs(x))[1])
    images = _images(700, 0)
    first = feature_scores.real_features(counted, images, str(tmp_path), "set:train", 256, 100)
    assert calls == [256, 256, 188]
    again = feature_scores.real_features(counted, images, str(tmp_path), "set:train", 256, 100)
    assert len(calls) == 3  # read from the cache
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    # The kept rows are a fixed random choice, not the stored order's first.
    features, _ = network.outputs(images.astype(np.float32) / 255)
    rows = np.sort(np.random.default_rng(0).permutation(700)[:100])
    np.testing.assert_allclose(first.kept, features[rows], rtol=1e-6)
    changed = images.copy()
    changed[5, 0, 0, 0] ^= 1
    other = feature_scores.real_features(counted, changed, str(tmp_path), "set:train", 256, 100)
    assert len(calls) == 6  # another set under the same name: computed again
    assert not np.array_equal(other.mean, first.mean)


def test_fixed_batches_pad_the_last_one_and_drop_the_padding():
    shapes = []

    def outputs(batch):
        shapes.append(batch.shape)
        return batch.reshape(len(batch), -1)[:, :2], batch.reshape(len(batch), -1)[:, :3]

    images = np.random.default_rng(0).uniform(size=(10, 2, 2, 1)).astype(np.float32)
    features, logits = feature_scores.in_fixed_batches(outputs, 4)(images)
    assert shapes == [(4, 2, 2, 1)] * 3
    np.testing.assert_array_equal(features, images.reshape(10, -1)[:, :2])
    assert logits.shape == (10, 3)
