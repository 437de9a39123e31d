"""Device-resident training data: loading, scaling and the batch order.

The whole training set lives on the accelerator as one array (MNIST is 47 MB as
uint8, the sprite set about 1 GB), and batches are gathered inside the jitted
training loop. The batch order is a pure function of (root key, epoch), or of
(root key, step) when sampling with replacement, so a resumed run sees exactly
the batches an unbroken run would.
"""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.config import DataConfig


class TrainingData(NamedTuple):
    """Training examples and (for conditional GANs) their labels."""

    examples: jax.Array  # (N, ...): uint8 images or float32 points, as stored
    labels: jax.Array | None  # int32 (N,) or None


def load_training_data(config: DataConfig, seed: int) -> TrainingData:
    """Reads the data set that `config` names into host arrays.

    Args:
      config: which data set, split and subset.
      seed: the run's seed; synthetic data sets (the 2-D Gaussian) are drawn from it.

    Returns:
      NumPy arrays (the caller puts them on the device).
    """
    if config.name == "gaussian_2d":
        from gan_jax.data import gaussian

        examples = gaussian.make_dataset(seed, **config.kwargs)
        labels = None
    else:
        from gan_jax.data import source

        arrays = source.load(config.name, split=config.split, data_dir=config.data_dir)
        examples, labels = arrays.images, arrays.labels
    if config.num_examples is not None:
        if config.num_examples > len(examples):
            raise ValueError(
                f"num_examples={config.num_examples} but {config.name!r} has {len(examples)}"
            )
        examples = examples[: config.num_examples]
        labels = None if labels is None else labels[: config.num_examples]
    return TrainingData(np.asarray(examples), None if labels is None else np.asarray(labels))


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
