"""A classifying discriminator's accuracy on held-out labelled data (the semi-supervised GAN).

A semi-supervised GAN's D outputs K class logits (`gan_jax.losses.SemiSupervised`); its
prediction is their argmax, in inference mode (no dropout, BatchNorm running averages,
spectral norm's stored estimate). `test_accuracy_hook` scores it on the data set's test
split at epoch ends, as Salimans et al.'s code reports its test error every epoch.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax.config import Config
from gan_jax.data import source
from gan_jax.data.pipeline import scale
from gan_jax.state import GAN, GANState, variables

# Test examples per D call: memory stays bounded for any test set.
BATCH = 2000


def make_predict(gan: GAN) -> Callable[[GANState, np.ndarray], np.ndarray]:
    """`predict(state, images)`: the argmax of D's class logits for stored (unscaled)
    `images`, in inference mode, `BATCH` at a time (jitted once per `make_predict`)."""
    scaling = gan.config.data.scaling

    @jax.jit
    def classes(params: Any, batch_stats: Any, x: jax.Array) -> jax.Array:
        logits = gan.discriminator.apply(
            variables(params, batch_stats), scale(x, scaling), None, train=False
        )
        if logits.ndim != 2:
            raise ValueError(f"D must output class logits (B, K), got shape {logits.shape}")
        return jnp.argmax(logits, axis=-1)

    def predict(state: GANState, images: np.ndarray) -> np.ndarray:
        d = state.discriminator
        return np.concatenate(
            [
                np.asarray(classes(d.params, d.batch_stats, images[start : start + BATCH]))
                for start in range(0, len(images), BATCH)
            ]
        )

    return predict


def discriminator_accuracy(
    gan: GAN, state: GANState, images: np.ndarray, labels: np.ndarray
) -> float:
    """The fraction of `images` whose argmax class logit of D is their label."""
    return float(np.mean(make_predict(gan)(state, images) == labels))


def test_accuracy_hook(
    config: Config, split: str = "test"
) -> Callable[[GAN, GANState, int], dict[str, float]]:
    """An epoch hook (`gan_jax.train.EpochHook`) recording D's accuracy on `split` of the
    run's data set as `eval/test_accuracy`.

    The split is read now, so that a missing one stops the run before it trains.
    """
    data = source.load(config.data.name, split, config.data.data_dir)
    if data.labels is None:
        raise ValueError(f"{config.data.name!r} has no labels to score D's classes against")

    predictors: dict[int, Callable[[GANState, np.ndarray], np.ndarray]] = {}

    def hook(gan: GAN, state: GANState, epoch: int) -> dict[str, float]:
        del epoch
        if id(gan) not in predictors:  # one compilation per run, not one per epoch
            predictors.clear()
            predictors[id(gan)] = make_predict(gan)
        predicted = predictors[id(gan)](state, data.images)
        return {"eval/test_accuracy": float(np.mean(predicted == data.labels))}

    return hook
