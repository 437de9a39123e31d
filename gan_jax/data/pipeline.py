"""Device-resident training data: loading, scaling and the batch order.

The whole training set lives on the accelerator as one array (MNIST is 47 MB as
uint8, the sprite set about 1 GB), and batches are gathered inside the jitted
training loop. The batch order is a pure function of (root key, epoch), or of
(root key, step) when sampling with replacement, so a resumed run sees exactly
the batches an unbroken run would.

Semi-supervised training (`DataConfig.num_labelled`) is a transform of the training
set made here, where the set is built (`semi_supervised`), so that the loop and the
steps need no second data stream: every row carries a class label or -1, and the
objective splits each batch by that mark.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.config import DataConfig
from gan_jax.data import catalog
from gan_jax.errors import UserError

UNLABELLED = -1  # the label of a semi-supervised set's unlabelled rows


class TrainingData(NamedTuple):
    """Training examples and (for conditional GANs) their labels."""

    examples: jax.Array  # (N, ...): uint8 images or float32 points, as stored
    labels: jax.Array | None  # int32 (N,) or None


def load_training_data(config: DataConfig, seed: int, *, mapped: bool = False) -> TrainingData:
    """Reads the data set that `config` names into host arrays.

    Args:
      config: which data set, split and subset.
      seed: the run's seed; synthetic data sets (`catalog.DataSetKind.drawn_from_seed`,
        the 2-D Gaussian) are drawn from it.
      mapped: a prepared data set's images memory-mapped (`source.load`), read only
        where indexed.

    Returns:
      NumPy arrays (the caller puts them on the device).
    """
    kind = catalog.kind_of(config.name)
    if kind.drawn_from_seed:
        examples, labels = kind.draw(seed, **config.kwargs), None
    else:
        from gan_jax.data import source

        arrays = source.load(config.name, config.split, config.data_dir, mapped=mapped)
        examples, labels = arrays.images, arrays.labels
    if config.num_examples is not None:
        if config.num_examples > len(examples):
            raise ValueError(
                f"num_examples={config.num_examples} but {config.name!r} has {len(examples)}"
            )
        examples = examples[: config.num_examples]
        labels = None if labels is None else labels[: config.num_examples]
    if config.num_labelled is not None:
        examples, labels = semi_supervised(
            examples, labels, config.num_labelled, config.labelled_seed
        )
    return TrainingData(np.asarray(examples), None if labels is None else np.asarray(labels))


def labelled_subset(labels: np.ndarray, num_labelled: int, seed: int) -> np.ndarray:
    """The indices of `num_labelled` examples, num_labelled / K of each of the K classes.

    As Salimans et al.'s code picks them: the first of each class in an order shuffled
    with `seed` (their `--seed_data`), so the subset is a function of the seed alone.

    Raises:
      UserError: if `num_labelled` is not a multiple of K or exceeds a class's examples.
    """
    num_classes = int(labels.max()) + 1
    per_class, rest = divmod(num_labelled, num_classes)
    if rest or per_class < 1:
        raise UserError(
            f"num_labelled={num_labelled} must be a positive multiple of the "
            f"{num_classes} classes (balanced labels)"
        )
    counts = np.bincount(labels, minlength=num_classes)
    if per_class > counts.min():
        scarce = int(np.argmin(counts))
        raise UserError(
            f"num_labelled={num_labelled} needs {per_class} examples of each class, but "
            f"class {scarce} has {counts[scarce]}"
        )
    order = np.random.default_rng(seed).permutation(len(labels))
    return np.concatenate([order[labels[order] == k][:per_class] for k in range(num_classes)])


def semi_supervised(
    examples: np.ndarray, labels: np.ndarray | None, num_labelled: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """A semi-supervised training set: every example unlabelled, plus a few labelled ones.

    All examples appear with the label `UNLABELLED`, followed by the `labelled_subset`
    with its labels, repeated (len(examples) / num_labelled times, rounded) so that
    about half of each shuffled batch is labelled, as Salimans et al. (2016) train on
    equal-sized labelled and unlabelled batches. An epoch is then one pass over the
    unlabelled examples.

    Args:
      examples: the training examples, (N, ...).
      labels: their class labels in [0, K), (N,).
      num_labelled: how many keep their labels (a multiple of K).
      seed: chooses them (`labelled_subset`).

    Returns:
      (examples, labels), N + repeats * num_labelled rows; labels int32.
    """
    if labels is None:
        raise UserError("num_labelled needs a data set with class labels")
    labels = np.asarray(labels)
    chosen = labelled_subset(labels, num_labelled, seed)
    repeats = max(1, round(len(examples) / num_labelled))
    examples = np.concatenate(
        [examples, np.tile(examples[chosen], (repeats,) + (1,) * (examples.ndim - 1))]
    )
    labels = np.concatenate([np.full(len(labels), UNLABELLED), np.tile(labels[chosen], repeats)])
    return examples, labels.astype(np.int32)


def scale(examples: jax.Array, scaling: str) -> jax.Array:
    """Maps stored examples to the model's input range, in float32."""
    if scaling == "none":
        return examples.astype(jnp.float32)
    if scaling == "zero_one":
        return examples.astype(jnp.float32) / 255.0
    if scaling == "minus_one_one":
        return examples.astype(jnp.float32) / 127.5 - 1.0
    raise ValueError(f"unknown scaling {scaling!r}")


def unscale(outputs: jax.Array, scaling: str) -> jax.Array:
    """Maps model outputs back to [0, 1] for display (identity for unscaled data)."""
    if scaling == "minus_one_one":
        return (outputs + 1.0) / 2.0
    return outputs


def epoch_order(data_key: jax.Array, epoch: jax.Array, num_examples: int) -> jax.Array:
    """The shuffled example order of one epoch."""
    return jax.random.permutation(jax.random.fold_in(data_key, epoch), num_examples)
