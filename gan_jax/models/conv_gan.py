"""The configurable convolutional GAN of Foster, *Generative Deep Learning*, ch. 4 (Keras).

Discriminator: for each layer i, Conv2D(filters[i], kernel[i], strides[i],
padding 'same') -> [BatchNorm, not on the first layer] -> activation ->
[Dropout]; then Flatten -> Dense(1) (the logit; the book's sigmoid is in the loss).

Generator: Dense(prod(initial_shape)) -> [BatchNorm] -> activation -> Reshape ->
[Dropout]; then for each layer i, UpSampling2D + Conv2D(padding 'same') where
upsample[i] == 2, or Conv2DTranspose(strides[i], padding 'same') where it is 1;
every layer but the last is followed by [BatchNorm] -> activation, the last by
tanh.

Keras' BatchNormalization momentum m is Flax's momentum m; its epsilon is 1e-3.
"""

import functools
from collections.abc import Sequence
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import conv_layers, initializers, spectral


def _activation(name: str, x: jax.Array) -> jax.Array:
    if name == "relu":
        return nn.relu(x)
    if name == "leaky_relu":
        return nn.leaky_relu(x, 0.2)
    raise ValueError(f"activation must be 'relu' or 'leaky_relu', got {name!r}")


def _batch_norm(momentum: float, train: bool, dtype: Any) -> nn.BatchNorm:
    return nn.BatchNorm(use_running_average=not train, momentum=momentum, epsilon=1e-3, dtype=dtype)


class ConvDiscriminator(nn.Module):
    """Images (B, H, W, C) -> logits (B,).

    Attributes:
      filters, kernel_sizes, strides: one entry per convolution.
      batch_norm_momentum: None for no BatchNorm (the camel setup).
      activation: 'relu' or 'leaky_relu'.
      dropout_rate: dropout after each convolution block, active in training.
      init_scheme: the book's RandomNormal(0, 0.02) is 'normal_0.02' (biases zero
        in Keras, so only kernels follow the scheme here).
      spectral_norm: every kernel spectrally normalised, and no BatchNorm (as in
        SNGAN's discriminators).
      dtype: computation dtype; parameters stay float32.
    """

    convolutional: ClassVar[bool] = True  # see gan_jax.loop.default_loop

    filters: Sequence[int] = (64, 64, 128, 128)
    kernel_sizes: Sequence[int] = (5, 5, 5, 5)
    strides: Sequence[int] = (2, 2, 2, 1)
    batch_norm_momentum: float | None = None
    activation: str = "relu"
    dropout_rate: float = 0.4
    init_scheme: str = "normal_0.02"
    spectral_norm: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, labels: jax.Array | None = None, *, train: bool) -> jax.Array:
        if labels is not None:
            raise ValueError("ConvDiscriminator is unconditional")
        x = x.astype(self.dtype)
        kernel_init = initializers.kernel_init(self.init_scheme)
        normalised = functools.partial(
            spectral.apply, spectral_norm=self.spectral_norm, train=train
        )
        for i, (width, kernel, stride) in enumerate(
            zip(self.filters, self.kernel_sizes, self.strides, strict=True)
        ):
            conv = conv_layers.Conv(
                width,
                (kernel, kernel),
                (stride, stride),
                padding="SAME",
                kernel_init=kernel_init,
                dtype=self.dtype,
            )
            x = normalised(conv, x)
            if self.batch_norm_momentum and i > 0 and not self.spectral_norm:
                x = _batch_norm(self.batch_norm_momentum, train, self.dtype)(x)
            x = _activation(self.activation, x)
            if self.dropout_rate:
                x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        x = x.reshape(x.shape[0], -1)
        dense = nn.Dense(1, kernel_init=kernel_init, dtype=self.dtype)
        return normalised(dense, x).reshape(x.shape[0])


class UpsamplingGenerator(nn.Module):
    """Latents (B, latent_dim) -> images (B, H, W, filters[-1]) in [-1, 1].

    Attributes:
      initial_shape: (h, w, c) that the first Dense layer's output is reshaped to.
      upsample: per layer, 2 for UpSampling2D + Conv2D, 1 for Conv2DTranspose.
      filters, kernel_sizes, strides: one entry per convolution.
      batch_norm_momentum: None for no BatchNorm.
      activation: 'relu' or 'leaky_relu'.
      dropout_rate: dropout after the reshape, if any.
      init_scheme: kernel initialisation (Keras biases start at zero).
      dtype: computation dtype; parameters stay float32.
    """

    convolutional: ClassVar[bool] = True  # see gan_jax.loop.default_loop

    initial_shape: Sequence[int] = (7, 7, 64)
    upsample: Sequence[int] = (2, 2, 1, 1)
    filters: Sequence[int] = (128, 64, 64, 1)
    kernel_sizes: Sequence[int] = (5, 5, 5, 5)
    strides: Sequence[int] = (1, 1, 1, 1)
    batch_norm_momentum: float | None = 0.9
    activation: str = "relu"
    dropout_rate: float | None = None
    init_scheme: str = "normal_0.02"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array, labels: jax.Array | None = None, *, train: bool) -> jax.Array:
        if labels is not None:
            raise ValueError("UpsamplingGenerator is unconditional")
        kernel_init = initializers.kernel_init(self.init_scheme)
        h, w, c = self.initial_shape
        x = nn.Dense(h * w * c, kernel_init=kernel_init, dtype=self.dtype)(z.astype(self.dtype))
        if self.batch_norm_momentum:
            x = _batch_norm(self.batch_norm_momentum, train, self.dtype)(x)
        x = _activation(self.activation, x).reshape(z.shape[0], h, w, c)
        if self.dropout_rate:
            x = nn.Dropout(self.dropout_rate, deterministic=not train)(x)
        layers = list(
            zip(self.upsample, self.filters, self.kernel_sizes, self.strides, strict=True)
        )
        for i, (factor, width, kernel, stride) in enumerate(layers):
            if factor == 2:
                # UpSampling2D: nearest neighbour, each pixel repeated 2x2.
                x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
                x = conv_layers.Conv(
                    width,
                    (kernel, kernel),
                    padding="SAME",
                    kernel_init=kernel_init,
                    dtype=self.dtype,
                )(x)
            else:
                x = conv_layers.ConvTranspose(
                    width,
                    (kernel, kernel),
                    (stride, stride),
                    padding="SAME",
                    kernel_init=kernel_init,
                    dtype=self.dtype,
                )(x)
            if i < len(layers) - 1:
                if self.batch_norm_momentum:
                    x = _batch_norm(self.batch_norm_momentum, train, self.dtype)(x)
                x = _activation(self.activation, x)
        return jnp.tanh(x)
