"""Generator and discriminator networks, built by name from a `ModelConfig`.

Every network is a Flax linen module called as `module(x, labels, train=...)`:
generators map latents (B, latent_dim) to examples, discriminators map examples to
one logit each, shape (B,). `labels` is None for unconditional models.
"""

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from gan_jax.config import ModelConfig
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


def build(config: ModelConfig, compute_dtype: str = "float32") -> nn.Module:
    """Instantiates the network that `config` names, computing in `compute_dtype`."""
    if config.name not in MODELS:
        raise ValueError(f"unknown model {config.name!r}; known: {sorted(MODELS)}")
    kwargs = {name: _tuples(value) for name, value in config.kwargs.items()}
    return MODELS[config.name](**kwargs, dtype=_DTYPES[compute_dtype])
