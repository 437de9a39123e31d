"""The pure steps: D updates per G update, their keys, and the objective's hooks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from testing_configs import gaussian_config

from gan_jax import losses
from gan_jax import steps as steps_lib
from gan_jax.state import build_gan, create_state


def batches(num):
    return tuple(jax.random.normal(jax.random.key(i), (8, 2)) + 3.0 for i in range(num))


def differs(a, b):
    """Whether two pytrees of arrays differ anywhere."""
    pairs = zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True)
    return any(not np.array_equal(x, y) for x, y in pairs)


def step(config, real):
    gan = build_gan(config)
    return jax.jit(lambda s, x: steps_lib.train_step(gan, s, x, None))(create_state(gan, 0), real)


@pytest.mark.parametrize(("d_update", "d_optimizer_steps"), [("joint", 2), ("separate", 4)])
def test_two_d_updates_then_one_g_update(d_update, d_optimizer_steps):
    state, metrics = step(gaussian_config(d_steps_per_g_step=2, d_update=d_update), batches(2))
    assert int(state.step) == 1
    assert int(state.discriminator.opt_state.count) == d_optimizer_steps
    assert int(state.generator.opt_state.count) == 1
    assert all(np.isfinite(float(v)) for v in metrics.values())


def test_each_d_update_trains_on_its_own_batch():
    config = gaussian_config(d_steps_per_g_step=2)
    a, b = batches(2)
    swapped = step(config, (b, a))[0].discriminator.params
    params = step(config, (a, b))[0].discriminator.params
    assert differs(params, swapped)


def test_the_number_of_batches_must_match():
    with pytest.raises(ValueError, match="needs 2 real batches, got 1"):
        step(gaussian_config(d_steps_per_g_step=2), batches(1))


def test_step_keys_keep_the_original_split():
    root, at = jax.random.key(3), jnp.int32(7)
    keys = steps_lib.step_keys(root, at)
    split = jax.random.split(jax.random.fold_in(jax.random.fold_in(root, 0), at), 9)
    for i, name in enumerate(steps_lib._STEP_KEY_NAMES):
        np.testing.assert_array_equal(
            jax.random.key_data(keys[name]), jax.random.key_data(split[i])
        )
    data = {name: np.asarray(jax.random.key_data(k)) for name, k in keys.items()}
    assert len({v.tobytes() for v in data.values()}) == len(data)  # all distinct


def test_later_d_updates_draw_new_d_keys_only():
    keys = steps_lib.step_keys(jax.random.key(0), jnp.int32(0))
    assert steps_lib.d_update_keys(keys, 0) is keys
    second = steps_lib.d_update_keys(keys, 1)
    for name, key in keys.items():
        same = np.array_equal(jax.random.key_data(key), jax.random.key_data(second[name]))
        assert same == (not name.startswith("d_")), name


class GradientPenaltyBCE(losses.BinaryCrossEntropy):
    """BCE plus WGAN-GP's gradient penalty, as a future objective would add it."""

    def penalty(self, discriminate, real, fake, labels, key):
        shape = (real.shape[0],) + (1,) * (real.ndim - 1)
        eps = jax.random.uniform(key, shape)
        x = eps * real + (1 - eps) * fake
        grads = jax.grad(lambda x: jnp.sum(discriminate(x, labels)))(x)
        norms = jnp.sqrt(jnp.sum(grads**2, axis=tuple(range(1, x.ndim))))
        gp = jnp.mean((norms - 1) ** 2)
        return 10.0 * gp, {"gradient_penalty": gp}


class ClippedBCE(losses.BinaryCrossEntropy):
    """BCE with WGAN's weight clipping of D."""

    def constrain_discriminator(self, params):
        return jax.tree.map(lambda p: jnp.clip(p, -0.01, 0.01), params)


def test_a_penalty_reaches_d_through_the_hook(monkeypatch):
    config = gaussian_config()
    plain_state, _ = step(config, batches(1)[0])
    monkeypatch.setitem(losses.OBJECTIVES, "bce", GradientPenaltyBCE)
    state, metrics = step(config, batches(1)[0])
    assert float(metrics["gradient_penalty"]) > 0
    assert differs(state.discriminator.params, plain_state.discriminator.params)
    with pytest.raises(ValueError, match="needs d_update='joint'"):
        step(gaussian_config(d_update="separate"), batches(1)[0])


def test_d_is_constrained_after_every_update(monkeypatch):
    monkeypatch.setitem(losses.OBJECTIVES, "bce", ClippedBCE)
    for d_update in ("joint", "separate"):
        state, _ = step(gaussian_config(d_update=d_update), batches(1)[0])
        for p in jax.tree.leaves(state.discriminator.params):
            assert float(jnp.max(jnp.abs(p))) <= 0.01
