"""Scaling of stored examples and the per-epoch batch order."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.data import pipeline

PIXELS = jnp.array([0, 1, 127, 128, 255], jnp.uint8)


def test_scale_none_is_float32_identity():
    points = jnp.array([-1.5, 0.0, 3.25], jnp.float32)
    got = pipeline.scale(points, "none")
    assert got.dtype == jnp.float32
    np.testing.assert_array_equal(got, points)
    np.testing.assert_array_equal(pipeline.scale(PIXELS, "none"), [0, 1, 127, 128, 255])
    np.testing.assert_array_equal(pipeline.unscale(points, "none"), points)


def test_scale_zero_one():
    got = pipeline.scale(PIXELS, "zero_one")
    assert got.dtype == jnp.float32
    assert float(got[0]) == 0.0 and float(got[-1]) == 1.0
    np.testing.assert_allclose(got, np.array([0, 1, 127, 128, 255]) / 255, rtol=1e-6)
    # Already in [0, 1]: unscaling is the identity.
    np.testing.assert_array_equal(pipeline.unscale(got, "zero_one"), got)


def test_scale_minus_one_one():
    got = pipeline.scale(PIXELS, "minus_one_one")
    assert got.dtype == jnp.float32
    assert float(got[0]) == -1.0 and float(got[-1]) == 1.0
    np.testing.assert_allclose(got, np.array([0, 1, 127, 128, 255]) / 127.5 - 1, atol=1e-7)
    # The midpoint 127.5 (not a uint8 value) maps to exactly 0.
    assert float(pipeline.scale(jnp.array(127.5), "minus_one_one")) == 0.0
    # unscale maps [-1, 1] back to [0, 1], i.e. pixel / 255.
    back = pipeline.unscale(got, "minus_one_one")
    assert float(back[0]) == 0.0 and float(back[-1]) == 1.0
    np.testing.assert_allclose(back, np.array([0, 1, 127, 128, 255]) / 255, atol=1e-7)


def test_unknown_scaling_raises():
    with pytest.raises(ValueError, match="unknown scaling 'minus_one_to_one'"):
        pipeline.scale(PIXELS, "minus_one_to_one")


def test_epoch_order_is_a_permutation():
    order = np.asarray(pipeline.epoch_order(jax.random.key(0), jnp.int32(3), 50))
    assert order.shape == (50,)
    np.testing.assert_array_equal(np.sort(order), np.arange(50))
    assert not np.array_equal(order, np.arange(50))


def test_epoch_order_is_a_pure_function_of_key_and_epoch():
    key = jax.random.key(7)
    a = pipeline.epoch_order(key, jnp.int32(2), 50)
    # A fresh key from the same seed, and a traced epoch under jit, give the same order.
    b = pipeline.epoch_order(jax.random.key(7), 2, 50)
    c = jax.jit(pipeline.epoch_order, static_argnums=2)(key, jnp.int32(2), 50)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)


def test_different_epochs_and_keys_give_different_orders():
    key = jax.random.key(7)
    orders = [np.asarray(pipeline.epoch_order(key, jnp.int32(e), 50)) for e in range(4)]
    orders.append(np.asarray(pipeline.epoch_order(jax.random.key(8), jnp.int32(0), 50)))
    for i in range(len(orders)):
        for j in range(i):
            assert not np.array_equal(orders[i], orders[j]), (i, j)
