"""A classifier for any labelled image set, whose features and logits the scores use.

FID-style scores need a feature extractor that knows the domain: ImageNet's Inception
network sees digits or 64x64 sprites as out-of-distribution blobs. For a prepared data set
with class labels (MNIST, Fashion-MNIST, labelled Pokemon sprites, a user's class folders)
the domain classifier is a small, deterministic conv net trained on the set itself, once,
and cached. This module is what its users call: `classifier_for(name)` returns the cached
classifier of a prepared set, or trains one first (`train_and_save`), and
`classifier_outputs` gives its features and logits for a set of images;
`python -m gan_jax.metrics.train_classifier --dataset=NAME` trains one explicitly.

The parts, one job each:
* `classifier_net`: the network and its architecture for an image shape.
* `classifier_training`: its deterministic training.
* `classifier_data`: a prepared set's training and held-out parts, and their digest.
* `classifier_store`: saving and loading it, and where the cache keeps each set's.

Inputs are NHWC images, either uint8 in [0, 255] (the stored data) or float in [0, 1] (a
generator's output mapped there, e.g. `(tanh_output + 1) / 2`).
"""

import dataclasses
import time
from typing import Any

import jax
import numpy as np
import numpy.typing as npt
from absl import logging

from gan_jax.errors import UserError
from gan_jax.metrics.classifier_data import (
    HOLD_OUT_EVERY,
    LabelledSet,
    NoLabelsError,
    labelled_set,
)
from gan_jax.metrics.classifier_net import (
    architecture_for,
    check_fits,
    module_of,
    to_unit_interval,
)
from gan_jax.metrics.classifier_store import (
    MNIST,
    NoClassifierError,
    classifier_dir,
    dataset_key,
    default_classifier_dir,
    display_name,
    has_classifier,
    load_classifier,
    save_classifier,
)
from gan_jax.metrics.classifier_training import (
    DEFAULT_TRAINING,
    TrainingSettings,
    train_classifier,
)

# Scoring (`gan_jax.evaluation`) reaches the domain classifier through this module alone,
# so it also offers the labelled set it is trained on and the error for a set without one.
__all__ = [
    "NoClassifierError",
    "NoLabelsError",
    "accuracy",
    "classifier_for",
    "classifier_outputs",
    "default_settings",
    "labelled_set",
    "set_classifier_dir",
    "train_and_save",
]

# At most about this many training examples are scored for the reported train accuracy.
_TRAIN_ACCURACY_EXAMPLES = 10_000


@jax.jit
def _outputs(params: Any, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    return module_of(params).apply({"params": params}, to_unit_interval(images))


def classifier_outputs(
    params: Any, images: npt.ArrayLike, *, batch_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's features and logits for a set of images, computed in batches.

    Args:
      params: from `train_classifier`, `load_classifier` or `classifier_for`.
      images: (N, H, W, C) of the shape the classifier was trained on ((N, H, W) for one
        channel), NumPy or JAX: uint8 in [0, 255], or float in [0, 1]. Generators' outputs
        must be mapped to [0, 1] first (for tanh outputs, `(x + 1) / 2`); floats outside
        [0, 1] are refused rather than silently misread.
      batch_size: images per jitted call; None for about a million pixels a call (1000
        MNIST digits, 256 64x64 sprites). Every call has this shape (the last batch is
        padded), so any N compiles once.

    Returns:
      (features float32 (N, F), logits float32 (N, K)) as NumPy arrays. A uint8 image and
      the same image as float32 `image / 255` give identical outputs.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"expected (N, H, W, C) images, got shape {images.shape}")
    check_fits(params, images.shape[1:])
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.floating):
            raise ValueError(f"images must be uint8 or float, got {images.dtype}")
        # A little slack for rounding in a generator's own rescaling.
        if images.size and (images.min() < -1e-3 or images.max() > 1 + 1e-3):
            raise ValueError(
                f"float images must lie in [0, 1], got [{images.min():.3f}, {images.max():.3f}]"
            )
    n, image_shape = images.shape[0], images.shape[1:]
    if batch_size is None:
        batch_size = min(1000, 2**20 // (image_shape[0] * image_shape[1]))
    batch_size = max(1, min(batch_size, n))
    features, logits = [], []
    for start in range(0, n, batch_size):
        batch = images[start : start + batch_size]
        pad = batch_size - len(batch)
        if pad:
            batch = np.concatenate([batch, np.zeros((pad, *image_shape), batch.dtype)])
        f, lg = jax.device_get(_outputs(params, batch))
        features.append(f[: batch_size - pad])
        logits.append(lg[: batch_size - pad])
    if not features:
        module = module_of(params)
        return (
            np.zeros((0, module.feature_dim), np.float32),
            np.zeros((0, module.num_classes), np.float32),
        )
    return np.concatenate(features), np.concatenate(logits)


def accuracy(params: Any, images: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Fraction of `images` (as for `classifier_outputs`) classified as `labels`."""
    _, logits = classifier_outputs(params, images)
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(labels)))


def train_and_save(
    directory: str,
    data: LabelledSet,
    settings: TrainingSettings = DEFAULT_TRAINING,
    *,
    min_accuracy: float = 0.0,
    feature_dim: int | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Trains the classifier on `data.train`, scores it on `data.held_out`, saves it.

    Raises:
      UserError: if the held-out accuracy is below `min_accuracy` (nothing is saved).

    Returns:
      (params, the info saved beside them, as `load_classifier` returns it).
    """
    images, labels = data.train
    if settings.num_examples:
        images, labels = images[: settings.num_examples], labels[: settings.num_examples]
    label = display_name(data.name)
    logging.info(
        "training the %s classifier on %d images %s of %d classes (%d epochs), scoring it "
        "on %d %s images",
        label,
        len(images),
        images.shape[1:],
        data.num_classes,
        settings.num_epochs,
        len(data.held_out.images),
        data.held_out_name,
    )
    start = time.monotonic()
    params = train_classifier(
        images,
        labels,
        data.num_classes,
        settings,
        feature_dim=feature_dim,
        name=f"{label} classifier",
    )
    train_seconds = time.monotonic() - start
    held_out_accuracy = accuracy(params, *data.held_out)
    logging.info(
        "%s accuracy %.4f after %.0f s of training",
        data.held_out_name,
        held_out_accuracy,
        train_seconds,
    )
    if held_out_accuracy < min_accuracy:
        raise UserError(
            f"{data.held_out_name} accuracy {held_out_accuracy:.4f} is below "
            f"--min_accuracy={min_accuracy}; not saved (train longer or lower --min_accuracy)"
        )
    # On an evenly spaced sample: the whole of a large set would take minutes to score.
    stride = max(1, len(images) // _TRAIN_ACCURACY_EXAMPLES)
    info = {
        "dataset": data.name,
        "variant": data.variant,
        "data_digest": data.digest,
        "held_out": (
            "the test split"
            if data.held_out_name == "test"
            else f"every {HOLD_OUT_EVERY}th training example, not trained on"
        ),
        "held_out_accuracy": held_out_accuracy,
        "num_train": len(images),
        "num_held_out": len(data.held_out.images),
        "train_accuracy": accuracy(params, images[::stride], labels[::stride]),
        **dataclasses.asdict(settings),
        "train_seconds": round(train_seconds, 1),
    }
    if data.held_out_name == "test":
        info["test_accuracy"] = held_out_accuracy
    architecture = architecture_for(images.shape[1:], data.num_classes, feature_dim)
    return params, save_classifier(directory, architecture, params, info)


# Training steps of a set other than MNIST: about MNIST's default training in compute on
# 64x64 sprites (2 epochs of 81,324 at 64x64x3, against 8 of 60,000 at 28x28x1), and
# enough for a small set to converge (a few hundred images get hundreds of epochs).
_TRAIN_STEPS = 1000
_MIN_EPOCHS = 2
# Sets whose classes do not change in a mirror, trained with random flips: a sprite faces
# left or right. (Digits and letters do change, and a user's folders may hold either.) On
# a third of the Pokemon sprites, held out by whole animations, flips lifted accuracy from
# 0.483 to 0.523 after 2 epochs.
_MIRRORED_SETS = ("pokemon",)


def default_settings(data: LabelledSet) -> TrainingSettings:
    """How `classifier_for` trains a set's classifier: MNIST's `DEFAULT_TRAINING`; for
    another set the same batches (no larger than the set) for about `_TRAIN_STEPS` steps,
    in whole epochs (at least `_MIN_EPOCHS`), with flips for `_MIRRORED_SETS`."""
    if data.name == MNIST:
        return DEFAULT_TRAINING
    batch_size = min(DEFAULT_TRAINING.batch_size, len(data.train.images))
    steps_per_epoch = len(data.train.images) // batch_size
    return dataclasses.replace(
        DEFAULT_TRAINING,
        num_epochs=max(_MIN_EPOCHS, -(-_TRAIN_STEPS // steps_per_epoch)),
        batch_size=batch_size,
        flip=data.name.split("/")[0] in _MIRRORED_SETS,
    )


def set_classifier_dir(data: LabelledSet) -> str:
    """Where `data`'s classifier is cached: MNIST's `default_classifier_dir()`, any other
    set's `classifier_dir(dataset_key(...))`."""
    if data.name == MNIST:
        return default_classifier_dir()
    return classifier_dir(dataset_key(data.variant, data.digest))


def classifier_for(
    name: str,
    data_dir: str | None = None,
    *,
    directory: str | None = None,
    train_if_missing: bool = True,
    settings: TrainingSettings | None = None,
    data: LabelledSet | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The classifier of a prepared labelled set: cached, or trained first (once).

    Args:
      name: the prepared set, as for `gan_jax.data.source.load` ('mnist', 'pokemon',
        'fashion_mnist', an image folder's name).
      data_dir: TFDS data dir; None for the default.
      directory: a classifier the user named, which must exist and fit (nothing is
        trained into it); None for the set's cache directory (`set_classifier_dir`).
      train_if_missing: train one into the cache directory if it holds none. A
        directory holding a classifier that does not fit is never overwritten: that is
        an error naming the command that retrains it.
      settings: how to train; None for `default_settings`.
      data: `labelled_set(name, data_dir)`, if the caller has it already (it reads the
        whole training split and hashes it: seconds for a large set).

    Returns:
      (params for `classifier_outputs`, its info: 'image_shape', 'num_classes',
      'feature_dim', 'held_out_accuracy', 'params_digest', ...).

    Raises:
      NoLabelsError: the set has no labels.
      NoClassifierError: none to load (and none to train), or one that does not fit.
    """
    data = labelled_set(name, data_dir) if data is None else data
    expected = architecture_for(data.train.images.shape[1:], data.num_classes)
    target = directory or set_classifier_dir(data)
    try:
        return load_classifier(target, expected=expected, data_digest=data.digest, dataset=name)
    except NoClassifierError:
        if directory is not None or not train_if_missing or has_classifier(target):
            raise
    settings = settings or default_settings(data)
    logging.warning(
        "no %s classifier yet: training one for the scores (%d epochs on %d images %s, "
        "once); it is kept in %s",
        display_name(name),
        settings.num_epochs,
        len(data.train.images),
        data.train.images.shape[1:],
        target,
    )
    params, info = train_and_save(target, data, settings)
    logging.warning(
        "%s classifier trained: %s accuracy %.4f; kept in %s",
        display_name(name),
        data.held_out_name,
        info["held_out_accuracy"],
        target,
    )
    return params, info
