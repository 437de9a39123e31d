"""D2L 20.2's DCGAN for 64x64 RGB images, in NHWC.

Generator: z (B, latent) as a 1x1 image -> ConvTranspose(8n, k4, s1, p0) -> 4x4
-> three ConvTranspose(k4, s2, p1) blocks (4n, 2n, n channels) -> 32x32 ->
ConvTranspose(3, k4, s2, p1) -> 64x64 -> tanh. Each block is
ConvTranspose (no bias) -> BatchNorm -> ReLU.

Discriminator: four Conv(k4, s2, p1) blocks (n, 2n, 4n, 8n channels), each
Conv (no bias) -> BatchNorm -> LeakyReLU(0.2), then Conv(1, k4, p0) on the 4x4
map -> one logit. D2L (unlike Radford et al.) normalises the first block too.

PyTorch's padding p of a k x k transposed convolution corresponds to Flax's
explicit padding k - 1 - p on each side (LIBRARY_NOTES, checked shape for shape);
BatchNorm momentum 0.9 in Flax equals PyTorch's momentum 0.1.
"""

import functools
from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.models import conv_layers, initializers, spectral


def _batch_norm(train: bool, init_scheme: str, dtype: Any) -> nn.BatchNorm:
    return nn.BatchNorm(
        use_running_average=not train,
        momentum=0.9,
        epsilon=1e-5,
        scale_init=initializers.norm_scale_init(init_scheme),
        bias_init=initializers.norm_bias_init(init_scheme),
        dtype=dtype,
    )


def _torch_transpose_padding(kernel: int, padding: int) -> tuple[tuple[int, int], ...]:
    side = kernel - 1 - padding
    return ((side, side), (side, side))


class DCGANGenerator(nn.Module):
    """Latents (B, latent_dim) -> images (B, 64, 64, channels) in [-1, 1].

    Attributes:
      base_channels: n_G; the first block has 8 * n_G channels.
      channels: output image channels.
      init_scheme: D2L draws every parameter (BatchNorm's too) from N(0, 0.02).
      dtype: computation dtype; parameters stay float32.
    """

    convolutional: ClassVar[bool] = True  # see gan_jax.loop.default_loop

    base_channels: int = 64
    channels: int = 3
    init_scheme: str = "normal_0.02"
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, z: jax.Array, labels: jax.Array | None = None, *, train: bool) -> jax.Array:
        if labels is not None:
            raise ValueError("DCGANGenerator is unconditional")
        x = z.reshape(z.shape[0], 1, 1, -1).astype(self.dtype)
        kernel_init = initializers.kernel_init(self.init_scheme)
        widths = [self.base_channels * m for m in (8, 4, 2, 1)]
        for i, width in enumerate(widths):
            x = conv_layers.ConvTranspose(
                width,
                (4, 4),
                strides=(1, 1) if i == 0 else (2, 2),
                padding=_torch_transpose_padding(4, 0 if i == 0 else 1),
                use_bias=False,
                kernel_init=kernel_init,
                dtype=self.dtype,
            )(x)
            x = nn.relu(_batch_norm(train, self.init_scheme, self.dtype)(x))
        x = conv_layers.ConvTranspose(
            self.channels,
            (4, 4),
            strides=(2, 2),
            padding=_torch_transpose_padding(4, 1),
            use_bias=False,
            kernel_init=kernel_init,
            dtype=self.dtype,
        )(x)
        return jnp.tanh(x)


class DCGANDiscriminator(nn.Module):
    """Images (B, 64, 64, C) -> logits (B,).

    Attributes:
      base_channels: n_D; the last block has 8 * n_D channels.
      negative_slope: LeakyReLU slope (D2L: 0.2).
      init_scheme: D2L draws every parameter (BatchNorm's too) from N(0, 0.02).
      spectral_norm: every kernel spectrally normalised, and no BatchNorm (SNGAN's
        discriminators, and StudioGAN's DCGAN with SN, drop it: the two normalisations
        pull the layer's scale two ways).
      dtype: computation dtype; parameters stay float32.
    """

    convolutional: ClassVar[bool] = True  # see gan_jax.loop.default_loop

    base_channels: int = 64
    negative_slope: float = 0.2
    init_scheme: str = "normal_0.02"
    spectral_norm: bool = False
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, labels: jax.Array | None = None, *, train: bool) -> jax.Array:
        if labels is not None:
            raise ValueError("DCGANDiscriminator is unconditional")
        x = x.astype(self.dtype)
        kernel_init = initializers.kernel_init(self.init_scheme)
        normalised = functools.partial(
            spectral.apply, spectral_norm=self.spectral_norm, train=train
        )
        for multiple in (1, 2, 4, 8):
            conv = conv_layers.Conv(
                self.base_channels * multiple,
                (4, 4),
                strides=(2, 2),
                padding=((1, 1), (1, 1)),
                use_bias=False,
                kernel_init=kernel_init,
                dtype=self.dtype,
            )
            x = normalised(conv, x)
            if not self.spectral_norm:
                x = _batch_norm(train, self.init_scheme, self.dtype)(x)
            x = nn.leaky_relu(x, self.negative_slope)
        conv = conv_layers.Conv(
            1, (4, 4), padding="VALID", use_bias=False, kernel_init=kernel_init, dtype=self.dtype
        )
        return normalised(conv, x).reshape(x.shape[0])
