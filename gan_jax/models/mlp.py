"""A configurable multilayer perceptron, used as generator and as discriminator.

It covers the MLP setups of the documents: D2L's 2-D Gaussian GAN (tanh),
the Udacity and university-lecture MNIST GANs (leaky ReLU, dropout) and the
conditional "Make Your Own GAN" networks (leaky ReLU then LayerNorm, one-hot
label concatenated to the input).
"""

from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import initializers, spectral

_ACTIVATIONS = ("leaky_relu", "relu", "tanh", "none")
_OUTPUT_ACTIVATIONS = ("none", "tanh", "sigmoid")


class MLP(nn.Module):
    """Dense layers; each hidden layer is Dense -> activation -> [LayerNorm] -> [Dropout].

    Attributes:
      hidden_sizes: widths of the hidden layers (empty: one affine map).
      output_shape: shape of one output example; () gives one scalar (a logit) each.
      activation: hidden activation, one of 'leaky_relu', 'relu', 'tanh', 'none'.
      negative_slope: leaky ReLU slope for negative inputs.
      layer_norm: LayerNorm after each hidden activation.
      layer_norm_epsilon: 1e-5 is PyTorch's LayerNorm default.
      dropout_rate: dropout after each hidden layer, active when `train` is True.
      output_activation: 'none' (logits), 'tanh' or 'sigmoid'.
      num_classes: if > 0, a one-hot of `labels` is concatenated to the flattened input.
      init_scheme: a scheme of `gan_jax.models.initializers`.
      spectral_norm: every Dense kernel spectrally normalised (an SNGAN discriminator).
      dtype: computation dtype (parameters stay float32).
    """

    convolutional: ClassVar[bool] = False  # see gan_jax.loop.default_loop

    hidden_sizes: Sequence[int]
    output_shape: Sequence[int] = ()
    activation: str = "leaky_relu"
    negative_slope: float = 0.01
    layer_norm: bool = False
    layer_norm_epsilon: float = 1e-5
    dropout_rate: float = 0.0
    output_activation: str = "none"
    num_classes: int = 0
    init_scheme: str = "torch"
    spectral_norm: bool = False
    dtype: Any = jnp.float32

    def _dense(self, x: jax.Array, features: int, train: bool) -> jax.Array:
        layer = nn.Dense(
            features,
            kernel_init=initializers.kernel_init(self.init_scheme),
            bias_init=initializers.bias_init(self.init_scheme, x.shape[-1]),
            dtype=self.dtype,
        )
        return spectral.apply(layer, x, spectral_norm=self.spectral_norm, train=train)

    @nn.compact
    def __call__(self, x: jax.Array, labels: jax.Array | None = None, *, train: bool) -> jax.Array:
        if self.activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {_ACTIVATIONS}, got {self.activation!r}")
        if self.output_activation not in _OUTPUT_ACTIVATIONS:
            raise ValueError(
                f"output_activation must be one of {_OUTPUT_ACTIVATIONS}, "
                f"got {self.output_activation!r}"
            )
        x = x.reshape(x.shape[0], -1).astype(self.dtype)
        if self.num_classes:
            if labels is None:
                raise ValueError("a conditional MLP needs labels")
            x = jnp.concatenate([x, jax.nn.one_hot(labels, self.num_classes, dtype=x.dtype)], -1)
        for width in self.hidden_sizes:
            x = self._dense(x, width, train)
            if self.activation == "leaky_relu":
                x = nn.leaky_relu(x, self.negative_slope)
            elif self.activation == "relu":
                x = nn.relu(x)
            elif self.activation == "tanh":
                x = jnp.tanh(x)
            if self.layer_norm:
                x = nn.LayerNorm(
                    epsilon=self.layer_norm_epsilon,
                    scale_init=initializers.norm_scale_init(self.init_scheme),
                    bias_init=initializers.norm_bias_init(self.init_scheme),
                    dtype=self.dtype,
                )(x)
            if self.dropout_rate:
                x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        output_size = 1
        for size in self.output_shape:
            output_size *= size
        x = self._dense(x, output_size, train)
        if self.output_activation == "tanh":
            x = jnp.tanh(x)
        elif self.output_activation == "sigmoid":
            x = nn.sigmoid(x)
        return x.reshape(x.shape[0], *self.output_shape)
