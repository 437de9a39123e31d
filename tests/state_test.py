"""Initialisation is a pure function of the seed."""

import jax
import numpy as np
import pytest
from testing_configs import camel_config, gaussian_config

from gan_jax.checkpoint import state_digest
from gan_jax.state import build_gan, create_state, create_states, example_shape


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


@pytest.mark.parametrize("config", [gaussian_config, camel_config], ids=["mlp", "conv"])
@pytest.mark.slow
def test_a_groups_states_initialised_together_are_each_members_own(config):
    # Members that differ in seed, learning rate and the G average, as a sweep group's do.
    gans = [
        build_gan(config(**{"g_optimizer.learning_rate": lr, "g_ema_decay": ema}))
        for lr, ema in ((1e-3, 0.0), (2e-3, 0.999), (1e-3, 0.0))
    ]
    seeds = [3, 3, -5]
    together = create_states(gans, seeds)
    alone = [create_state(gan, seed) for gan, seed in zip(gans, seeds, strict=True)]
    assert [state_digest(s) for s in together] == [state_digest(s) for s in alone]
    assert together[1].generator_ema is not None and together[0].generator_ema is None
    lr = together[1].generator.opt_state.hyperparams["learning_rate"]
    assert float(lr) == np.float32(2e-3)


def test_states_of_different_networks_are_not_initialised_together():
    gans = [build_gan(gaussian_config()), build_gan(camel_config())]
    with pytest.raises(ValueError, match="same networks"):
        create_states(gans, [0, 1])
