"""The training loop: resuming is exact, the multi-step loop equals single steps, data order."""

import dataclasses
import json
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from states import assert_states_equal
from testing_configs import camel_config, gaussian_config

from gan_jax import loop as loop_lib
from gan_jax import steps as steps_lib
from gan_jax.checkpoint import Checkpoints
from gan_jax.config import replace
from gan_jax.data.pipeline import TrainingData, epoch_order, load_training_data, scale
from gan_jax.errors import ConfigError
from gan_jax.state import build_gan, create_state
from gan_jax.train import train_and_evaluate
from gan_jax.workdir import (
    checkpoint_step_dir,
    checkpoints_dir,
    metrics_file,
    sample_grid,
    sample_grids,
)


def test_resuming_after_10_steps_equals_20_unbroken_steps(tmp_path):
    # 80 points, batch 8: 10 steps per epoch.
    unbroken = train_and_evaluate(gaussian_config(num_epochs=2), str(tmp_path / "unbroken"))
    workdir = str(tmp_path / "resumed")
    first = train_and_evaluate(gaussian_config(num_epochs=1), workdir)
    assert int(first.step) == 10
    resumed = train_and_evaluate(gaussian_config(num_epochs=2), workdir)
    assert int(resumed.step) == 20
    assert_states_equal(resumed, unbroken)
    # The resumed run's metrics continue the first run's.
    with open(metrics_file(workdir)) as f:
        records = [json.loads(line) for line in f]
    assert [r["epoch"] for r in records] == [1, 2]
    with open(metrics_file(tmp_path / "unbroken")) as f:
        unbroken_records = [json.loads(line) for line in f]
    assert records[1]["loss_d"] == unbroken_records[1]["loss_d"]


@pytest.mark.slow
def test_resuming_mid_epoch_keeps_the_data_position(tmp_path):
    # 20 steps per epoch, checkpoints at 10 and 20: drop 20 and resume from step 10.
    config = gaussian_config(num_points=160, num_epochs=1, checkpoint_every_steps=10)
    unbroken = train_and_evaluate(config, str(tmp_path / "run"))
    shutil.rmtree(checkpoint_step_dir(tmp_path / "run", 20))
    with Checkpoints(checkpoints_dir(tmp_path / "run")) as checkpoints:
        assert checkpoints.latest_step() == 10
    resumed = train_and_evaluate(config, str(tmp_path / "run"))
    assert_states_equal(resumed, unbroken)


@pytest.mark.slow
def test_resuming_with_n_critic_spectral_norm_and_g_average_is_bit_exact(tmp_path):
    # WGAN-GP with n_critic 5: a step takes 5 batches, so 160 points of batch 8 make 4
    # steps an epoch; checkpoints every 2 steps; drop the last two and resume mid-epoch.
    # D is spectrally normalised (power iteration vectors in the state) and G averaged.
    config = gaussian_config(
        num_points=160,
        num_epochs=2,
        checkpoint_every_steps=2,
        d_steps_per_g_step=5,
        g_ema_decay=0.9,
    )
    discriminator = dataclasses.replace(
        config.discriminator, kwargs={**config.discriminator.kwargs, "spectral_norm": True}
    )
    config = replace(config, discriminator=discriminator, **{"loss.objective": "wgan_gp"})
    workdir = str(tmp_path / "run")
    unbroken = train_and_evaluate(config, workdir)
    assert int(unbroken.step) == 8
    assert unbroken.generator_ema is not None and unbroken.discriminator.batch_stats
    assert int(unbroken.discriminator.opt_state.count) == 40  # 5 D updates per step
    assert int(unbroken.generator.opt_state.count) == 8
    for step in (8, 6):
        shutil.rmtree(checkpoint_step_dir(workdir, step))
    resumed = train_and_evaluate(config, workdir)
    assert_states_equal(resumed, unbroken)


@pytest.mark.parametrize("loop", ["device", "host"])
def test_multi_step_loop_equals_single_jitted_steps(loop):
    config = gaussian_config()
    gan = build_gan(config)
    host = load_training_data(config.data, config.seed)
    data = TrainingData(jnp.asarray(host.examples), None)
    run = loop_lib.make_run_steps(gan, 80, steps_per_epoch=10, max_steps=20, loop=loop)
    looped, history = run(create_state(gan, 0), data, jnp.int32(15))

    single_step = jax.jit(lambda s, x: steps_lib.train_step(gan, s, x, None))
    state = create_state(gan, 0)
    order_key = loop_lib.data_key(state.key)
    losses = []
    for step in range(15):
        order = epoch_order(order_key, step // 10, 80)
        indices = order[(step % 10) * 8 : (step % 10 + 1) * 8]
        state, metrics = single_step(state, scale(data.examples[indices], "none"))
        losses.append(float(metrics["loss_d"]))
    assert int(looped.step) == int(state.step) == 15
    # Same computation, same order: bit-identical on CPU in float32.
    assert_states_equal(looped, state)
    np.testing.assert_array_equal(np.asarray(history["loss_d"][:15]), np.float32(losses))


@pytest.mark.slow
def test_conv_nets_device_and_host_loops_agree():
    config = camel_config(batch_size=4)
    gan = build_gan(config)
    examples = np.random.default_rng(0).integers(0, 256, (16, 28, 28, 1), np.uint8)
    data = TrainingData(jnp.asarray(examples), None)
    states = {}
    for loop in ("device", "host"):
        run = loop_lib.make_run_steps(gan, 16, steps_per_epoch=4, max_steps=4, loop=loop)
        states[loop], history = run(create_state(gan, 0), data, jnp.int32(3))
        assert history["loss_d"].shape == (4,) and float(history["loss_d"][3]) == 0.0
    assert int(states["host"].step) == 3
    # Same steps, same data; XLA:CPU picks other conv algorithms inside a loop, so the
    # two agree to float32 rounding rather than bit for bit.
    device, host = jax.tree.leaves(states["device"]), jax.tree.leaves(states["host"])
    for a, b in zip(device, host, strict=True):
        if jnp.issubdtype(a.dtype, jnp.floating):
            np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-6)


def test_data_order_is_a_pure_function_of_seed_and_epoch():
    key = jax.random.key(0)
    a, b = epoch_order(key, 3, 100), epoch_order(key, 3, 100)
    np.testing.assert_array_equal(a, b)
    assert sorted(np.asarray(a).tolist()) == list(range(100))
    assert not np.array_equal(a, epoch_order(key, 4, 100))


def test_bad_schedule_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="batch_size 100 exceeds the 80"):
        train_and_evaluate(gaussian_config(batch_size=100), str(tmp_path))
    with pytest.raises(ConfigError, match="batch_size must be positive"):
        train_and_evaluate(gaussian_config(batch_size=0), str(tmp_path))


@pytest.mark.slow
def test_dispatches_span_epochs_with_one_record_per_epoch(tmp_path):
    # 10 steps per epoch; grids every 3 epochs; one dispatch may hold several epochs.
    config = gaussian_config(
        num_epochs=7, sample_every_epochs=3, steps_per_dispatch=25, checkpoint_every_steps=1000
    )
    state = train_and_evaluate(config, str(tmp_path))
    with open(metrics_file(tmp_path)) as f:
        records = [json.loads(line) for line in f]
    assert [(r["epoch"], r["step"]) for r in records] == [(e, 10 * e) for e in range(1, 8)]
    assert sample_grids(tmp_path) == [sample_grid(tmp_path, epoch) for epoch in (3, 6, 7)]
    # Same parameters as dispatching one epoch at a time.
    unbroken = train_and_evaluate(
        gaussian_config(num_epochs=7, checkpoint_every_steps=1000), str(tmp_path / "per_epoch")
    )
    assert_states_equal(state, unbroken)
    with open(metrics_file(tmp_path / "per_epoch")) as f:
        per_epoch = [json.loads(line) for line in f]
    np.testing.assert_allclose(
        [r["loss_d"] for r in records], [r["loss_d"] for r in per_epoch], rtol=1e-6
    )
