"""The pure steps: D updates per G update, their keys, and the objective's hooks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from testing_configs import gaussian_config

from gan_jax import steps as steps_lib
from gan_jax.config import replace
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


@pytest.mark.slow
def test_a_penalty_reaches_d_through_the_hook():
    plain_state, _ = step(gaussian_config(**{"loss.objective": "wgan"}), batches(1)[0])
    config = gaussian_config(**{"loss.objective": "wgan_gp", "loss.gp_weight": 10.0})
    state, metrics = step(config, batches(1)[0])
    assert float(metrics["gradient_penalty"]) > 0
    assert differs(state.discriminator.params, plain_state.discriminator.params)
    with pytest.raises(ValueError, match="needs d_update='joint'"):
        step(replace(config, d_update="separate"), batches(1)[0])


@pytest.mark.slow
def test_weight_clipping_holds_after_every_d_update():
    for d_update in ("joint", "separate"):
        config = gaussian_config(d_update=d_update, d_steps_per_g_step=2)
        config = replace(config, **{"loss.objective": "wgan", "loss.clip_value": 0.01})
        state, _ = step(config, batches(2))
        for p in jax.tree.leaves(state.discriminator.params):
            assert float(jnp.max(jnp.abs(p))) <= 0.01
