"""Named weight initialisations, so each experiment can start where its document does.

A scheme gives a kernel initializer and a bias initializer; the bias one takes the
layer's fan-in because PyTorch draws biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

- 'torch':  PyTorch's Linear/Conv default (kaiming_uniform(a=sqrt(5)) kernel,
            U(+-1/sqrt(fan_in)) bias).
- 'normal_0.02': every parameter ~ N(0, 0.02), as D2L and DCGAN code do (biases too).
- 'glorot_uniform': Keras/TF1 default kernel, zero bias.
- 'lecun_normal': Flax's default kernel, zero bias.
"""

import math
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.nn import initializers

Initializer = Callable[..., jax.Array]

SCHEMES = ("torch", "normal_0.02", "glorot_uniform", "lecun_normal")


def _flat_size(shape: tuple[int, ...]) -> tuple[int]:
    return (int(math.prod(shape)),)


# Every draw below is made on the flat shape and reshaped. The values are bit-identical
# to drawing on `shape` (threefry's counters are the flat positions), but XLA:CPU compiles
# a 1-D draw about 5x faster (0.17 s against 0.8-1.2 s for a 4-D kernel's shape), and
# each parameter shape is a separate compilation when a model is initialised: 16 of
# them took 8.4 s of a narrow DCGAN's start-up. tests/models_test.py checks the bits
# against jax.nn.initializers.
#
# Each draw, and each scaled draw, also passes an optimization barrier: a model is
# initialised in one jitted program (`state.create_states`), where XLA would otherwise
# fuse the scaling into the draw, or a parameter into its first use (spectral
# normalisation's), and round differently from the same ops run one at a time.


def _drawn(values: jax.Array) -> jax.Array:
    return jax.lax.optimization_barrier(values)


def _normal(stddev: float) -> Initializer:
    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        draws = _drawn(jax.random.normal(key, _flat_size(shape), dtype)).reshape(shape)
        return _drawn(draws * jnp.array(stddev, dtype))

    return init


def _uniform(limit: float) -> Initializer:
    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        draws = _drawn(jax.random.uniform(key, _flat_size(shape), dtype, -limit, limit))
        return draws.reshape(shape)

    return init


def _variance_scaling(scale: float, mode: str, distribution: str) -> Initializer:
    """`jax.nn.initializers.variance_scaling` with its default axes (inputs -2, outputs -1)."""

    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        receptive_field = math.prod(shape[:-2])
        fan_in, fan_out = shape[-2] * receptive_field, shape[-1] * receptive_field
        denominator = {"fan_in": fan_in, "fan_avg": (fan_in + fan_out) / 2}[mode]
        variance = jnp.array(scale / denominator, dtype=dtype)
        flat = _flat_size(shape)
        if distribution == "uniform":
            draws = _drawn(jax.random.uniform(key, flat, dtype, -1)) * jnp.sqrt(3 * variance)
        else:  # truncated_normal; the constant is the stddev of N(0, 1) truncated to (-2, 2)
            stddev = jnp.sqrt(variance) / jnp.array(0.87962566103423978, dtype)
            draws = _drawn(jax.random.truncated_normal(key, -2, 2, flat, dtype)) * stddev
        return _drawn(draws).reshape(shape)

    return init


def kernel_init(scheme: str) -> Initializer:
    """The kernel initializer of `scheme` (fan-in/fan-out read from the kernel shape)."""
    if scheme == "torch":
        # kaiming_uniform(a=sqrt(5)) has bound sqrt(6 / ((1 + 5) * fan_in)) = 1/sqrt(fan_in).
        return _variance_scaling(1 / 3, "fan_in", "uniform")
    if scheme == "normal_0.02":
        return _normal(0.02)
    if scheme == "glorot_uniform":
        return _variance_scaling(1.0, "fan_avg", "uniform")
    if scheme == "lecun_normal":
        return _variance_scaling(1.0, "fan_in", "truncated_normal")
    raise ValueError(f"unknown init scheme {scheme!r}; expected one of {SCHEMES}")


def bias_init(scheme: str, fan_in: int) -> Initializer:
    """The bias initializer of `scheme` for a layer with `fan_in` inputs per output."""
    if scheme == "torch":
        return _uniform(1 / fan_in**0.5)
    if scheme == "normal_0.02":
        return _normal(0.02)
    if scheme in ("glorot_uniform", "lecun_normal"):
        return initializers.zeros
    raise ValueError(f"unknown init scheme {scheme!r}; expected one of {SCHEMES}")


def norm_scale_init(scheme: str) -> Initializer:
    """BatchNorm/LayerNorm scale: D2L's loop over `parameters()` re-draws it too."""
    return _normal(0.02) if scheme == "normal_0.02" else initializers.ones


def norm_bias_init(scheme: str) -> Initializer:
    """BatchNorm/LayerNorm offset, re-drawn like `norm_scale_init`."""
    return _normal(0.02) if scheme == "normal_0.02" else initializers.zeros
