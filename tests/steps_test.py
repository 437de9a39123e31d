"""The host loop stops between steps when asked (a pending SIGTERM), at a step boundary."""

import jax
import jax.numpy as jnp
import numpy as np
from testing_configs import gaussian_config

from gan_jax import steps as steps_lib
from gan_jax.data.pipeline import TrainingData, load_training_data
from gan_jax.state import build_gan, create_state


def leaves(state):
    out = []
    for x in jax.tree.leaves(state):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        out.append(np.asarray(x))
    return out


def test_host_loop_stops_between_steps_and_equals_a_shorter_dispatch():
    config = gaussian_config()
    gan = build_gan(config)
    host = load_training_data(config.data, config.seed)
    data = TrainingData(jnp.asarray(host.examples), None)
    asked = []

    def should_stop():
        asked.append(True)
        return len(asked) >= 6  # asked before steps 2..; stop before the 7th step

    run = steps_lib.make_run_steps(
        gan, 80, steps_per_epoch=10, max_steps=20, loop="host", should_stop=should_stop
    )
    stopped, history = run(create_state(gan, 0), data, jnp.int32(15))
    assert int(stopped.step) == 6
    plain = steps_lib.make_run_steps(gan, 80, steps_per_epoch=10, max_steps=20, loop="host")
    expected, expected_history = plain(create_state(gan, 0), data, jnp.int32(6))
    for x, y in zip(leaves(stopped), leaves(expected), strict=True):
        np.testing.assert_array_equal(x, y)
    np.testing.assert_array_equal(history["loss_d"][:6], expected_history["loss_d"][:6])
    assert not np.any(np.asarray(history["loss_d"][6:]))  # no values past the stop
