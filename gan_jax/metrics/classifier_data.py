"""The labelled sets a domain classifier trains on and is scored on.

A prepared set's training split is what the classifier trains on; its test split, or for a
set with a training split only every `HOLD_OUT_EVERY`-th training example, is what its
accuracy is measured on. `data_digest` names the training split's exact contents, so a
changed set gets a classifier of its own (`classifier_store.dataset_key`).
"""

import hashlib
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from gan_jax.data import source
from gan_jax.errors import UserError

# A set with a training split only is scored on every HOLD_OUT_EVERY-th example (index
# HOLD_OUT_EVERY - 1, 2 * HOLD_OUT_EVERY - 1, ...), which the classifier never trains on.
HOLD_OUT_EVERY = 10


class NoLabelsError(UserError, ValueError):
    """Raised for a data set without class labels: it can have no domain classifier."""


class LabelledSet(NamedTuple):
    """A labelled image set, split for training a classifier and for scoring it.

    Attributes:
      name: the data set's name, e.g. 'mnist', 'pokemon', 'my_folders'.
      variant: its prepared version, e.g. 'pokemon/sprites/1.1.0' ('' if not known).
      train: what the classifier trains on.
      held_out: what its accuracy is measured on, never trained on.
      held_out_name: 'test' for the set's test split, 'held-out' for every
        `HOLD_OUT_EVERY`-th example of a set with a training split only.
      num_classes: K.
      digest: `data_digest` of the whole training split (held-out examples included).
    """

    name: str
    variant: str
    train: source.ArrayData
    held_out: source.ArrayData
    held_out_name: str
    num_classes: int
    digest: str


def split_held_out(data: source.ArrayData) -> tuple[source.ArrayData, source.ArrayData]:
    """(train, held out): every `HOLD_OUT_EVERY`-th example (index 9, 19, ...) held out.

    By index, so the split is the same every time and spread over sets stored in class
    order. Near-duplicates (an animation's frames) fall on both sides, so the held-out
    accuracy measures how well the classes are told apart, not generalisation to unseen
    individuals.
    """
    held = np.arange(len(data.images)) % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1
    return (
        source.ArrayData(data.images[~held], data.labels[~held]),
        source.ArrayData(data.images[held], data.labels[held]),
    )


def data_digest(images: npt.ArrayLike, labels: npt.ArrayLike) -> str:
    """SHA-256 of a labelled set's images (uint8) and labels (int32), shapes included."""
    images = np.ascontiguousarray(images)
    labels = np.ascontiguousarray(labels, np.int32)
    digest = hashlib.sha256(f"{images.dtype}{images.shape}{labels.shape}".encode())
    digest.update(images)
    digest.update(labels)
    return digest.hexdigest()


def labelled_set(name: str, data_dir: str | None = None) -> LabelledSet:
    """A prepared set's training split and held-out part: its test split if it has one,
    else every `HOLD_OUT_EVERY`-th training example (`split_held_out`).

    Raises:
      NoLabelsError: if the set has no class labels (one line, saying what to do).
      DatasetNotPreparedError: if it is not prepared in `data_dir`.
    """
    data = source.load(name, "train", data_dir)
    if data.labels is None:
        raise NoLabelsError(
            f"dataset {name!r} has no class labels, so no classifier of its own: FID, KID, "
            "precision/recall, the inception score and class coverage in such a "
            "classifier's features need labels (prepare it with labels: class subfolders, "
            "python -m gan_jax.data.prepare image_folder --path=DIR --name=NAME, or a "
            "labelled variant of the set), or score it in Inception's features with "
            "--inception_weights=PATH"
        )
    num_classes = int(data.labels.max()) + 1
    if num_classes < 2:
        raise NoLabelsError(f"dataset {name!r} has one class only: a classifier needs two")
    variant = source.variant_name(name, data_dir)
    if "test" in source.split_names(name, data_dir):
        train, held_out, held_out_name = data, source.load(name, "test", data_dir), "test"
    else:
        (train, held_out), held_out_name = split_held_out(data), "held-out"
    digest = data_digest(data.images, data.labels)
    return LabelledSet(name, variant, train, held_out, held_out_name, num_classes, digest)
