"""The training loop: early stops, batches from the data stream, the default loop per model."""

import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from states import leaves
from testing_configs import camel_config, gaussian_config

from gan_jax import loop as loop_lib
from gan_jax import models
from gan_jax import steps as steps_lib
from gan_jax.data.pipeline import TrainingData, epoch_order, load_training_data, scale
from gan_jax.state import build_gan, create_state


def gaussian_data(config):
    host = load_training_data(config.data, config.seed)
    return TrainingData(jnp.asarray(host.examples), None)


@pytest.mark.slow
def test_host_loop_stops_between_steps_and_equals_a_shorter_dispatch():
    config = gaussian_config()
    gan = build_gan(config)
    data = gaussian_data(config)
    asked = []

    def should_stop():
        asked.append(True)
        return len(asked) >= 6  # asked before steps 2..; stop before the 7th step

    run = loop_lib.make_run_steps(
        gan, 80, steps_per_epoch=10, max_steps=20, loop="host", should_stop=should_stop
    )
    stopped, history = run(create_state(gan, 0), data, jnp.int32(15))
    assert int(stopped.step) == 6
    plain = loop_lib.make_run_steps(gan, 80, steps_per_epoch=10, max_steps=20, loop="host")
    expected, expected_history = plain(create_state(gan, 0), data, jnp.int32(6))
    for x, y in zip(leaves(stopped), leaves(expected), strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(history["loss_d"][:6], expected_history["loss_d"][:6])
    assert not np.any(np.asarray(history["loss_d"][6:]))  # no values past the stop


@pytest.mark.slow
def test_host_loop_asks_to_stop_at_most_two_steps_ahead_of_the_computation():
    """A SIGTERM takes effect within a step or two. Dispatch runs ahead of the
    computation: a host loop that queued steps without waiting asked `should_stop`
    about every step of a dispatch before the first had run (32 full-width DCGAN
    steps on a CPU: ten minutes deaf to signals)."""
    config = camel_config(batch_size=64)
    gan = build_gan(config)
    data = TrainingData(jnp.zeros((256, 28, 28, 1), jnp.float32), None)
    asked = []
    run = loop_lib.make_run_steps(
        gan,
        256,
        steps_per_epoch=4,
        max_steps=12,
        loop="host",
        should_stop=lambda: asked.append(time.perf_counter()),
    )
    jax.block_until_ready(run(create_state(gan, 0), data, jnp.int32(12)))  # compiles
    asked.clear()
    state = create_state(gan, 0)
    start = time.perf_counter()
    jax.block_until_ready(run(state, data, jnp.int32(12)))
    end = time.perf_counter()
    # Asked before steps 1..11; the last time once step 9 of 12 had run. Queued all at
    # once, every question came while the first step ran.
    assert len(asked) == 11
    assert asked[-1] - start > 0.5 * (end - start), [t - start for t in asked]


@pytest.mark.parametrize("loop", ["device", "host"])
@pytest.mark.slow
def test_two_d_updates_per_step_advance_d_twice_and_g_once(loop):
    config = gaussian_config(d_steps_per_g_step=2)
    gan = build_gan(config)
    run = loop_lib.make_run_steps(gan, 80, steps_per_epoch=10, max_steps=4, loop=loop)
    state, history = run(create_state(gan, 0), gaussian_data(config), jnp.int32(3))
    assert int(state.step) == 3
    assert int(state.discriminator.opt_state.count) == 6
    assert int(state.generator.opt_state.count) == 3
    assert np.all(np.isfinite(history["loss_d"][:3]))


def manual_batches(stream, root_key, data, positions):
    """Batches at stream `positions`, gathered without the loop's carried order."""
    batches = []
    for p in positions:
        if stream.sampling == "with_replacement":
            key = jax.random.fold_in(loop_lib.data_key(root_key), p)
            indices = jax.random.randint(key, (stream.batch_size,), 0, stream.num_examples)
        else:
            if stream.sampling == "sequential":
                order = jnp.arange(stream.num_examples)
            else:
                epoch = p // stream.batches_per_epoch
                order = epoch_order(loop_lib.data_key(root_key), epoch, stream.num_examples)
            start = (p % stream.batches_per_epoch) * stream.batch_size
            indices = order[start : start + stream.batch_size]
        batches.append(scale(data.examples[indices], "none"))
    return tuple(batches)


@pytest.mark.parametrize("sampling", ["epoch", "sequential", "with_replacement"])
@pytest.mark.slow
def test_step_s_takes_stream_positions_2s_and_2s_plus_1(sampling):
    # 5 batches per epoch: step 2's batches (positions 4 and 5) straddle an epoch end.
    config = gaussian_config(d_steps_per_g_step=2, **{"data.sampling": sampling})
    gan = build_gan(config)
    data = gaussian_data(config)
    run = loop_lib.make_run_steps(gan, 80, steps_per_epoch=5, max_steps=8, loop="host")
    looped, history = run(create_state(gan, 0), data, jnp.int32(7))

    stream = loop_lib.BatchStream(sampling, 8, 80, 5)
    single_step = jax.jit(lambda s, x: steps_lib.train_step(gan, s, x, None))
    state = create_state(gan, 0)
    losses = []
    for step in range(7):
        real = manual_batches(stream, state.key, data, [2 * step, 2 * step + 1])
        state, metrics = single_step(state, real)
        losses.append(float(metrics["loss_d"]))
    for x, y in zip(leaves(looped), leaves(state), strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(np.asarray(history["loss_d"][:7]), np.float32(losses))


@pytest.mark.slow
def test_a_resumed_loop_continues_the_stream():
    # 3 steps then 4 equal 7 unbroken steps (the order carry restarts mid-epoch).
    config = gaussian_config(d_steps_per_g_step=2)
    gan = build_gan(config)
    data = gaussian_data(config)
    run = loop_lib.make_run_steps(gan, 80, steps_per_epoch=5, max_steps=8, loop="device")
    unbroken, _ = run(create_state(gan, 0), data, jnp.int32(7))
    state, _ = run(create_state(gan, 0), data, jnp.int32(3))
    state, _ = run(state, data, jnp.int32(4))
    for x, y in zip(leaves(state), leaves(unbroken), strict=True):
        np.testing.assert_array_equal(x, y)


def test_the_default_loop_follows_the_models_declarations():
    mlp, conv = build_gan(gaussian_config()), build_gan(camel_config())
    assert not mlp.generator.convolutional and not mlp.discriminator.convolutional
    assert conv.generator.convolutional and conv.discriminator.convolutional
    assert loop_lib.default_loop(mlp) == "device"
    on_cpu = jax.default_backend() == "cpu"
    assert loop_lib.default_loop(conv) == ("host" if on_cpu else "device")


def test_every_model_declares_whether_it_is_convolutional():
    for name, cls in models.MODELS.items():
        assert isinstance(cls.__dict__.get("convolutional"), bool), name
