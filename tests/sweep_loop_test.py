"""Sweep groups trained as one vmapped program: members equal their solo runs."""

import jax.numpy as jnp
import numpy as np
import pytest
from states import leaves
from testing_configs import camel_config, gaussian_config

from gan_jax import loop as loop_lib
from gan_jax.config import replace
from gan_jax.data.pipeline import TrainingData, load_training_data
from gan_jax.state import build_gan, create_state, member_state, stack_states
from gan_jax.sweep_spec import groups

STEPS = 20


def gaussian_members():
    base = gaussian_config()
    return [
        replace(base, seed=0),
        replace(base, seed=1, **{"d_optimizer.learning_rate": 0.01}),
        replace(base, seed=2, **{"g_optimizer.b1": 0.5, "g_optimizer.learning_rate": 0.02}),
        replace(base, seed=3, **{"d_optimizer.b2": 0.99}),
    ]


def gaussian_data(config):
    return TrainingData(jnp.asarray(load_training_data(config.data, config.seed).examples), None)


def solo(config, data, loop, num_examples, steps_per_epoch, steps=STEPS):
    gan = build_gan(config)
    run = loop_lib.make_run_steps(gan, num_examples, steps_per_epoch, steps, loop=loop)
    return run(create_state(gan, config.seed), data, jnp.int32(steps))


def swept(configs, data, loop, num_examples, steps_per_epoch, steps=STEPS):
    assert groups(configs) == [list(range(len(configs)))]  # one vmapped group
    gans = [build_gan(c) for c in configs]
    states = stack_states([create_state(g, c.seed) for g, c in zip(gans, configs, strict=True)])
    run = loop_lib.make_run_steps(
        gans[0], num_examples, steps_per_epoch, steps, loop=loop, members=True
    )
    return run(states, data, jnp.int32(steps))


def largest_difference(a, b) -> float:
    return max(
        float(np.max(np.abs(x.astype(np.float64) - y.astype(np.float64))))
        for x, y in zip(leaves(a), leaves(b), strict=True)
    )


@pytest.mark.parametrize("loop", ["device", "host"])
@pytest.mark.slow
def test_a_four_member_sweep_equals_the_four_solo_runs(loop):
    configs = gaussian_members()
    data = gaussian_data(configs[0])
    states, history = swept(configs, data, loop, 80, 10)
    assert history["loss_d"].shape == (4, STEPS)
    for m, config in enumerate(configs):
        state, solo_history = solo(config, data, loop, 80, 10)
        member = member_state(states, m)
        assert int(member.step) == STEPS
        # vmap batches each matmul across members, which XLA:CPU may round differently
        # from the solo run's: at most 7.8e-7 after 20 steps here (AMD EPYC Zen 4).
        assert largest_difference(member, state) < 1e-5
        np.testing.assert_allclose(history["loss_d"][m], solo_history["loss_d"], rtol=1e-4)
        hyperparams = member.discriminator.opt_state.hyperparams
        assert float(hyperparams["learning_rate"]) == pytest.approx(
            config.d_optimizer.learning_rate
        )


@pytest.mark.slow
def test_members_with_their_own_data_sets():
    # The Gaussian's points are drawn from the run's seed: each member gets its own.
    configs = gaussian_members()
    datasets = [gaussian_data(c) for c in configs]
    stacked_data = TrainingData(jnp.stack([d.examples for d in datasets]), None)
    gans = [build_gan(c) for c in configs]
    states = stack_states([create_state(g, c.seed) for g, c in zip(gans, configs, strict=True)])
    run = loop_lib.make_run_steps(gans[0], 80, 10, STEPS, members=True, member_data=True)
    states, _ = run(states, stacked_data, jnp.int32(STEPS))
    for m, (config, data) in enumerate(zip(configs, datasets, strict=True)):
        state, _ = solo(config, data, "device", 80, 10)
        assert largest_difference(member_state(states, m), state) < 1e-5


@pytest.mark.slow
def test_conv_members_on_the_host_loop():
    configs = [camel_config(batch_size=4, seed=s) for s in (0, 1)]
    rng = np.random.default_rng(0)
    data = TrainingData(jnp.asarray(rng.integers(0, 256, (16, 28, 28, 1), np.uint8)), None)
    # Three steps: RMSprop scales every gradient to about the learning rate, so a
    # rounding flip of a near-zero gradient's sign grows by 2 lr a step from there.
    states, _ = swept(configs, data, "host", 16, 1, steps=3)
    for m, config in enumerate(configs):
        state, _ = solo(config, data, "host", 16, 1, steps=3)
        assert largest_difference(member_state(states, m), state) < 1e-5


@pytest.mark.slow
def test_a_diverged_member_is_marked_and_the_others_go_on():
    configs = gaussian_members()
    absurd = {"g_optimizer.learning_rate": 1e38}  # non-finite after a few steps
    configs[1] = replace(configs[1], **absurd)
    data = gaussian_data(configs[0])
    states, history = swept(configs, data, "device", 80, 10, steps=40)
    state_finite = np.asarray(history.pop(loop_lib.STATE_FINITE))
    assert state_finite.shape == (4, 40) and state_finite[[0, 2, 3]].all()
    # Member 1's state turns non-finite and stays so; `train` keeps its last finite one.
    first_bad = int(np.argmin(state_finite[1]))
    assert first_bad > 0 and not state_finite[1, first_bad:].any()
    finite = np.all([np.isfinite(np.asarray(v[1])) for v in history.values()], axis=0)
    assert finite[:first_bad].all()
    for m in (0, 2, 3):
        state, _ = solo(configs[m], data, "device", 80, 10, steps=40)
        assert largest_difference(member_state(states, m), state) < 1e-5
