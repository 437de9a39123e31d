"""Named weight initialisations, so each experiment can start where its document does.

A scheme gives a kernel initializer and a bias initializer; the bias one takes the
layer's fan-in because PyTorch draws biases from U(-1/sqrt(fan_in), 1/sqrt(fan_in)).

- 'torch':  PyTorch's Linear/Conv default (kaiming_uniform(a=sqrt(5)) kernel,
            U(+-1/sqrt(fan_in)) bias).
- 'normal_0.02': every parameter ~ N(0, 0.02), as D2L and DCGAN code do (biases too).
- 'glorot_uniform': Keras/TF1 default kernel, zero bias.
- 'lecun_normal': Flax's default kernel, zero bias.
"""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
from jax.nn import initializers

Initializer = Callable[..., jax.Array]

SCHEMES = ("torch", "normal_0.02", "glorot_uniform", "lecun_normal")


def _uniform(limit: float) -> Initializer:
    def init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32) -> jax.Array:
        return jax.random.uniform(key, shape, dtype, -limit, limit)

    return init


def kernel_init(scheme: str) -> Initializer:
    """The kernel initializer of `scheme` (fan-in/fan-out read from the kernel shape)."""
    if scheme == "torch":
        # kaiming_uniform(a=sqrt(5)) has bound sqrt(6 / ((1 + 5) * fan_in)) = 1/sqrt(fan_in).
        return initializers.variance_scaling(1 / 3, "fan_in", "uniform")
    if scheme == "normal_0.02":
        return initializers.normal(0.02)
    if scheme == "glorot_uniform":
        return initializers.glorot_uniform()
    if scheme == "lecun_normal":
        return initializers.lecun_normal()
    raise ValueError(f"unknown init scheme {scheme!r}; expected one of {SCHEMES}")


def bias_init(scheme: str, fan_in: int) -> Initializer:
    """The bias initializer of `scheme` for a layer with `fan_in` inputs per output."""
    if scheme == "torch":
        return _uniform(1 / fan_in**0.5)
    if scheme == "normal_0.02":
        return initializers.normal(0.02)
    if scheme in ("glorot_uniform", "lecun_normal"):
        return initializers.zeros
    raise ValueError(f"unknown init scheme {scheme!r}; expected one of {SCHEMES}")


def norm_scale_init(scheme: str) -> Initializer:
    """BatchNorm/LayerNorm scale: D2L's loop over `parameters()` re-draws it too."""
    return initializers.normal(0.02) if scheme == "normal_0.02" else initializers.ones


def norm_bias_init(scheme: str) -> Initializer:
    """BatchNorm/LayerNorm offset, re-drawn like `norm_scale_init`."""
    return initializers.normal(0.02) if scheme == "normal_0.02" else initializers.zeros
