"""Generator and discriminator networks, built by name from keyword arguments.

Every network is a Flax linen module called as `module(x, labels, train=...)`:
generators map latents (B, latent_dim) to examples, discriminators map examples to
one logit each, shape (B,). `labels` is None for unconditional models.
"""

from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.models.conv_gan import ConvDiscriminator, UpsamplingGenerator
from gan_jax.models.dcgan import DCGANDiscriminator, DCGANGenerator
from gan_jax.models.mlp import MLP

MODELS: dict[str, type[nn.Module]] = {
    "mlp": MLP,
    "dcgan_generator": DCGANGenerator,
    "dcgan_discriminator": DCGANDiscriminator,
    "conv_discriminator": ConvDiscriminator,
    "upsampling_generator": UpsamplingGenerator,
}

_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


def _tuples(value: Any) -> Any:
    # JSON turns tuples into lists; module attributes must be hashable.
    return tuple(_tuples(v) for v in value) if isinstance(value, list) else value


def build(
    name: str, kwargs: Mapping[str, Any] | None = None, compute_dtype: str = "float32"
) -> nn.Module:
    """Instantiates the network `name` (a key of MODELS) with `kwargs`, computing in
    `compute_dtype` ('float32' or 'bfloat16')."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    attributes = {key: _tuples(value) for key, value in (kwargs or {}).items()}
    return MODELS[name](**attributes, dtype=_DTYPES[compute_dtype])
