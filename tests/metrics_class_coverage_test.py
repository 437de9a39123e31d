"""Tests for gan_jax.metrics.class_coverage."""

import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.metrics import class_coverage


def test_histogram_fractions():
    labels = np.array([0, 0, 0, 0, 1, 1, 3, 3, 3, 3])
    hist = class_coverage.class_histogram(labels, num_classes=5)
    np.testing.assert_allclose(hist, [0.4, 0.2, 0.0, 0.4, 0.0])
    assert hist.sum() == pytest.approx(1.0)


def test_histogram_accepts_jax_arrays():
    hist = class_coverage.class_histogram(jnp.arange(10) % 10, num_classes=10)
    np.testing.assert_allclose(hist, np.full(10, 0.1))


@pytest.mark.parametrize("labels", [[0, 10], [-1, 2], [], [0.0, 1.0]])
def test_histogram_rejects_bad_labels(labels):
    with pytest.raises(ValueError):
        class_coverage.class_histogram(np.array(labels), num_classes=10)


def test_covered_classes_counts_classes_at_or_above_threshold():
    # 100 samples: classes 0-6 get 13 each, class 7 gets 5 (exactly 5%, counted: the threshold
    # is inclusive), class 8 gets 4 (below) and class 9 none.
    labels = np.repeat(np.arange(10), [13, 13, 13, 13, 13, 13, 13, 5, 4, 0])
    hist = class_coverage.class_histogram(labels, num_classes=10)
    assert hist[7] == pytest.approx(0.05) and hist[8] == pytest.approx(0.04)
    assert class_coverage.covered_classes(hist) == 8
    assert class_coverage.covered_classes(hist, min_fraction=0.1) == 7
    assert class_coverage.covered_classes(hist, min_fraction=0.0) == 10


def test_collapsed_generator_covers_one_class():
    hist = class_coverage.class_histogram(np.full(256, 7), num_classes=10)
    assert class_coverage.covered_classes(hist) == 1


def test_label_accuracy():
    requested = np.array([0, 1, 2, 3, 4, 5, 6, 7])
    predicted = np.array([0, 1, 2, 3, 4, 5, 0, 0])
    assert class_coverage.label_accuracy(predicted, requested) == pytest.approx(0.75)
    assert class_coverage.label_accuracy(jnp.asarray(requested), requested) == 1.0


def test_label_accuracy_rejects_mismatched_lengths():
    with pytest.raises(ValueError):
        class_coverage.label_accuracy(np.array([0, 1]), np.array([0, 1, 2]))
