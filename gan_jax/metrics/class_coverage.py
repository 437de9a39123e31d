"""Class coverage of generated samples, judged by a classifier's predicted labels.

Mode collapse shows up as generated digits concentrating on a few classes: the histogram of
predicted labels and the number of classes holding a fair share of it measure that directly.
For a conditional GAN, `label_accuracy` checks that samples are of the class they were asked for.
"""

import numpy as np
import numpy.typing as npt


def _as_labels(labels: npt.ArrayLike, name: str) -> np.ndarray:
    """Integer 1-D label array, rejecting empty or non-integer input."""
    array = np.asarray(labels)
    if array.ndim != 1 or array.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {array.shape}")
    if not np.issubdtype(array.dtype, np.integer):
        raise ValueError(f"{name} must hold integers, got dtype {array.dtype}")
    return array


def class_histogram(predicted_labels: npt.ArrayLike, num_classes: int) -> np.ndarray:
    """Fraction of samples predicted as each class.

    Args:
        predicted_labels: (N,) integer class predictions in [0, num_classes).
        num_classes: number of classes K.

    Returns:
        (K,) float64 array of fractions summing to 1.
    """
    labels = _as_labels(predicted_labels, "predicted_labels")
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"labels must lie in [0, {num_classes}), got range [{labels.min()}, {labels.max()}]"
        )
    counts = np.bincount(labels, minlength=num_classes)
    return counts / labels.size


def covered_classes(histogram: npt.ArrayLike, min_fraction: float = 0.05) -> int:
    """Number of classes holding at least `min_fraction` of the samples.

    Args:
        histogram: (K,) class fractions, as returned by `class_histogram`.
        min_fraction: smallest share that counts a class as covered (inclusive). The default
            0.05 is half of the uniform share for 10 classes.

    Returns:
        The count of covered classes, in [0, K].
    """
    return int(np.sum(np.asarray(histogram) >= min_fraction))


def label_accuracy(predicted_labels: npt.ArrayLike, requested_labels: npt.ArrayLike) -> float:
    """Fraction of generated samples classified as the label they were generated for.

    Args:
        predicted_labels: (N,) integer labels a classifier assigns to the generated samples.
        requested_labels: (N,) integer labels the conditional generator was given.

    Returns:
        Accuracy in [0, 1].
    """
    predicted = _as_labels(predicted_labels, "predicted_labels")
    requested = _as_labels(requested_labels, "requested_labels")
    if predicted.shape != requested.shape:
        raise ValueError(f"label arrays differ in shape: {predicted.shape} vs {requested.shape}")
    return float(np.mean(predicted == requested))
