"""The MNIST classifier: the domain classifier for (28, 28, 1) images of 10 digits.

    image (28, 28, 1) in [0, 1]
    -> Conv 3x3 32 -> ReLU -> max-pool 2x2 -> Conv 3x3 64 -> ReLU -> max-pool 2x2
    -> Dense 128 -> ReLU          (the features: `frechet`'s input)
    -> Dense 10                   (the logits: `inception_score` and `class_coverage`)

The network, its training and its storage are the domain classifier's; this module binds
MNIST's shape and class count, trains on the 60,000 training images and scores on the
10,000 test images, and keeps the classifier in its own place, `default_classifier_dir()`,
where classifiers saved before the domain classifier existed stay valid.
`python -m gan_jax.metrics.train_classifier` trains it and saves it there.
"""

from collections.abc import Mapping
from typing import Any

import jax
import numpy as np
import numpy.typing as npt

from gan_jax.data import source
from gan_jax.metrics import classifier_net, classifier_store, classifier_training, domain_classifier
from gan_jax.metrics.classifier_data import LabelledSet, data_digest
from gan_jax.metrics.classifier_store import (
    MNIST,
    TRAIN_COMMAND,
    NoClassifierError,
    default_classifier_dir,
    has_classifier,
)
from gan_jax.metrics.classifier_training import DEFAULT_TRAINING, TrainingSettings
from gan_jax.metrics.domain_classifier import accuracy

ARCHITECTURE_SPEC = classifier_net.MNIST_ARCHITECTURE
IMAGE_SHAPE = ARCHITECTURE_SPEC.image_shape
NUM_CLASSES = ARCHITECTURE_SPEC.num_classes
FEATURE_DIM = ARCHITECTURE_SPEC.feature_dim
ARCHITECTURE = ARCHITECTURE_SPEC.tag  # 'conv32-pool-conv64-pool-dense128-dense10/v1'

__all__ = [
    "ARCHITECTURE",
    "DEFAULT_TRAINING",
    "FEATURE_DIM",
    "IMAGE_SHAPE",
    "NUM_CLASSES",
    "TRAIN_COMMAND",
    "NoClassifierError",
    "TrainingSettings",
    "accuracy",
    "classifier_outputs",
    "default_classifier_dir",
    "has_classifier",
    "init_params",
    "load_classifier",
    "save_classifier",
    "train_and_save",
    "train_classifier",
]


def _check_shape(images: np.ndarray) -> None:
    if images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"expected (N, 28, 28, 1) images, got shape {images.shape}")


def init_params(key: jax.Array) -> Any:
    """Fresh parameters (Flax's default initialisers) for the MNIST classifier."""
    return classifier_net.init_params(ARCHITECTURE_SPEC, key)


def train_classifier(
    images: npt.ArrayLike,
    labels: npt.ArrayLike,
    *,
    seed: int,
    num_epochs: int,
    batch_size: int,
    learning_rate: float,
    max_shift: int = 1,
) -> Any:
    """`classifier_training.train_classifier` for uint8 (N, 28, 28, 1) images of 10 digits."""
    images = np.asarray(images)
    _check_shape(images)
    settings = TrainingSettings(
        seed=seed,
        num_epochs=num_epochs,
        batch_size=batch_size,
        learning_rate=learning_rate,
        max_shift=max_shift,
    )
    return classifier_training.train_classifier(
        images, labels, NUM_CLASSES, settings, name="MNIST classifier"
    )


def train_and_save(
    directory: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    settings: TrainingSettings = DEFAULT_TRAINING,
    min_accuracy: float = 0.0,
) -> tuple[Any, dict[str, Any]]:
    """Trains the classifier on `train` (images, labels), scores it on `test`, saves it.

    Raises:
      UserError: if the test accuracy is below `min_accuracy` (nothing is saved).

    Returns:
      (params, the info saved beside them, whose 'test_accuracy' is the test accuracy).
    """
    images, labels = train
    _check_shape(images)
    data = LabelledSet(
        name=MNIST,
        variant=source.VARIANTS["mnist"][0],
        train=source.ArrayData(images, labels),
        held_out=source.ArrayData(*test),
        held_out_name="test",
        num_classes=NUM_CLASSES,
        digest=data_digest(images, labels),
    )
    return domain_classifier.train_and_save(directory, data, settings, min_accuracy=min_accuracy)


def classifier_outputs(
    params: Any, images: npt.ArrayLike, *, batch_size: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """`domain_classifier.classifier_outputs` for (N, 28, 28, 1) or (N, 28, 28) images:
    (features float32 (N, 128), logits float32 (N, 10))."""
    images = np.asarray(images)
    _check_shape(images[..., None] if images.ndim == 3 else images)
    return domain_classifier.classifier_outputs(params, images, batch_size=batch_size)


def save_classifier(directory: str, params: Any, info: Mapping[str, Any]) -> dict[str, Any]:
    """`classifier_store.save_classifier` for the MNIST classifier's parameters."""
    return classifier_store.save_classifier(directory, ARCHITECTURE_SPEC, params, info)


def load_classifier(directory: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Reads an MNIST classifier; `directory` None for `default_classifier_dir()`.

    Raises:
      NoClassifierError: if the directory holds no classifier, or one of another
        architecture; the message names the command that trains one.
    """
    return classifier_store.load_classifier(
        directory or default_classifier_dir(),
        expected=ARCHITECTURE_SPEC,
        dataset=MNIST,
    )
