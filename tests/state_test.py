"""Initialisation is a pure function of the seed."""

import jax
import numpy as np
from testing_configs import gaussian_config

from gan_jax.state import build_gan, create_state, example_shape


def leaves(tree):
    return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_same_seed_gives_bit_identical_parameters():
    gan = build_gan(gaussian_config())
    a, b = create_state(gan, 7), create_state(gan, 7)
    for x, y in zip(
        leaves(a.generator) + leaves(a.discriminator),
        leaves(b.generator) + leaves(b.discriminator),
        strict=True,
    ):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(jax.random.key_data(a.key), jax.random.key_data(b.key))


def test_different_seeds_give_different_parameters():
    gan = build_gan(gaussian_config())
    a, b = create_state(gan, 0), create_state(gan, 1)
    assert not np.array_equal(
        a.discriminator.params["Dense_0"]["kernel"], b.discriminator.params["Dense_0"]["kernel"]
    )


def test_state_starts_at_step_zero_with_optimizer_state():
    gan = build_gan(gaussian_config())
    state = create_state(gan, 0)
    assert int(state.step) == 0
    assert example_shape(gan) == (2,)
    # Adam's hyperparameters are injected, so the learning rate is part of the state.
    assert float(state.discriminator.opt_state.hyperparams["learning_rate"]) == np.float32(0.05)
