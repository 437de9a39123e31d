"""`create_optimizer` against plain optax, the injected hyperparameters and RMSprop's eps."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gan_jax.config import OptimizerConfig
from gan_jax.optim import create_optimizer
from gan_jax.sweep_spec import STATE_HYPERPARAMETERS

PARAMS = {"w": jnp.array([0.5, -1.0, 2.0]), "b": jnp.array(0.25)}


def gradients(step: int) -> dict:
    # A different, deterministic gradient on each step.
    return jax.tree.map(lambda p: jnp.sin(p * (step + 1)) + 0.1 * step, PARAMS)


def run(tx: optax.GradientTransformation, num_steps: int = 3) -> list:
    params, state, updates_per_step = PARAMS, tx.init(PARAMS), []
    for step in range(num_steps):
        updates, state = tx.update(gradients(step), state, params)
        params = optax.apply_updates(params, updates)
        updates_per_step.append(updates)
    return updates_per_step


def assert_same_updates(got: list, want: list) -> None:
    for got_step, want_step in zip(got, want, strict=True):
        jax.tree.map(
            lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-9),
            got_step,
            want_step,
        )


def test_adam_matches_optax_adam():
    config = OptimizerConfig("adam", learning_rate=2e-3, b1=0.5, b2=0.99, eps=1e-7)
    assert_same_updates(
        run(create_optimizer(config)), run(optax.adam(2e-3, b1=0.5, b2=0.99, eps=1e-7))
    )


@pytest.mark.parametrize("eps_in_sqrt", [False, True])
def test_rmsprop_matches_optax_rmsprop(eps_in_sqrt):
    config = OptimizerConfig(
        "rmsprop", learning_rate=4e-4, decay=0.8, eps=1e-7, eps_in_sqrt=eps_in_sqrt
    )
    want = optax.rmsprop(4e-4, decay=0.8, eps=1e-7, eps_in_sqrt=eps_in_sqrt)
    assert_same_updates(run(create_optimizer(config)), run(want))


@pytest.mark.parametrize("name", ["adam", "rmsprop"])
def test_learning_rate_is_readable_from_the_state(name):
    state = create_optimizer(OptimizerConfig(name, learning_rate=0.0125)).init(PARAMS)
    assert float(state.hyperparams["learning_rate"]) == np.float32(0.0125)


def test_the_state_holds_exactly_the_listed_settings():
    # A sweep's groups and a resume's rules trust the list: each of its settings must be
    # in the optimizer state, and no other setting of the config may be.
    settings = {field.name for field in dataclasses.fields(OptimizerConfig)}
    held = {
        name
        for optimizer in ("adam", "rmsprop")
        for name in create_optimizer(OptimizerConfig(optimizer)).init(PARAMS).hyperparams
    }
    assert held & settings == set(STATE_HYPERPARAMETERS)


def test_keras_rmsprop_eps_is_added_to_the_root():
    # Keras: v = rho * v + (1 - rho) * g^2 (v starts at 0); update = -lr * g / (sqrt(v) + eps).
    lr, rho, eps = 0.1, 0.9, 0.5  # a large eps, so inside/outside the root differ clearly
    config = OptimizerConfig("rmsprop", learning_rate=lr, decay=rho, eps=eps, eps_in_sqrt=False)
    g = np.array([0.3, -2.0, 4.0], np.float32)
    tx = create_optimizer(config)
    updates, _ = tx.update(jnp.asarray(g), tx.init(jnp.zeros(3)))
    v = (1 - rho) * g**2
    np.testing.assert_allclose(updates, -lr * g / (np.sqrt(v) + eps), rtol=1e-6)
    assert not np.allclose(updates, -lr * g / np.sqrt(v + eps), rtol=1e-3)


def test_unknown_optimizer_raises():
    with pytest.raises(ValueError, match="sgd"):
        create_optimizer(OptimizerConfig("sgd"))  # type: ignore[arg-type]
