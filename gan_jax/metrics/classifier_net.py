"""The domain classifier's network: its architecture for an image shape, and the Flax module.

    image (H, W, C) in [0, 1]
    -> [Conv 3x3, width 32 * 2^i -> ReLU -> max-pool 2x2] for i < S
    -> Dense F -> ReLU           (the features: FID, KID, precision/recall)
    -> Dense K                   (the logits: inception score, class coverage)

S, the number of stages, is the fewest (at least one) that bring the smaller side to 8 or
less: 28 -> 14 -> 7 (S = 2), 64 -> 32 -> 16 -> 8 (S = 3). A side that is odd at a stage is
pooled with its last window cut short (zero padding after the ReLU, which never wins the
max), so no row is dropped: 7 -> 4. F is 128 for nets of up to two stages and 256 beyond
(`default_feature_dim`). For (28, 28, 1) and 10 classes this is exactly the MNIST
classifier (`gan_jax.metrics.mnist_classifier`): the same parameter tree, initialisation
and training, so MNIST classifiers saved before the domain classifier existed load
unchanged.

It has no dropout or BatchNorm, so one set of parameters is the whole model and inference
has no mode. The parameters alone say which network they belong to (`module_of`).
"""

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from gan_jax.data.pipeline import scale

# The first stage's width; each further stage doubles it.
BASE_WIDTH = 32
# Stages are added until the smaller side is at most this.
MAX_FINAL_SIDE = 8
# Bump when the network or its training changes meaning, so an old checkpoint is refused
# with a clear message instead of failing deep inside Orbax.
ARCHITECTURE_VERSION = "v1"


def num_stages(image_shape: tuple[int, ...]) -> int:
    """Conv-pool stages for images of this (H, W, C): the fewest, and at least one, that
    bring the smaller side to `MAX_FINAL_SIDE` or less (each halves it, rounding up)."""
    side, stages = min(image_shape[:2]), 0
    while stages == 0 or side > MAX_FINAL_SIDE:
        side, stages = -(-side // 2), stages + 1
    return stages


def default_feature_dim(image_shape: tuple[int, ...]) -> int:
    """The feature layer's width: 128 up to two stages (MNIST's), 256 beyond.

    Larger images hold more detail, and their sets more classes (649 Pokemon species), than
    a 128-wide bottleneck keeps apart. Not wider: the Fréchet distance fits a D x D
    covariance to the real set's features, which needs several times D images to be
    estimated well (a sample covariance is singular below D + 1), and the sets that reach
    three stages (64x64 sprites, a user's folders) hold thousands of images, not millions.
    """
    return 128 if num_stages(image_shape) <= 2 else 256


@dataclasses.dataclass(frozen=True)
class Architecture:
    """Which network: its input shape, its class count and its feature width.

    Attributes:
      image_shape: (H, W, C) of the images it takes.
      num_classes: K, the logits' width.
      feature_dim: F, the features' width.
    """

    image_shape: tuple[int, int, int]
    num_classes: int
    feature_dim: int

    @property
    def widths(self) -> tuple[int, ...]:
        """The conv stages' widths: 32, 64, 128, ..."""
        return tuple(BASE_WIDTH * 2**i for i in range(num_stages(self.image_shape)))

    @property
    def tag(self) -> str:
        """E.g. 'conv32-pool-conv64-pool-dense128-dense10/v1' (MNIST's, as it always was).

        The image shape is not part of it (two shapes can share the layers); `info.json`
        records it beside the tag.
        """
        return self.module().tag

    def module(self) -> "DomainClassifier":
        return DomainClassifier(self.widths, self.feature_dim, self.num_classes)


def architecture_for(
    image_shape: tuple[int, ...], num_classes: int, feature_dim: int | None = None
) -> Architecture:
    """The classifier's architecture for images of `image_shape` and `num_classes` classes.

    Args:
      image_shape: (H, W, C), any positive sizes.
      num_classes: at least 2.
      feature_dim: None for `default_feature_dim(image_shape)`.
    """
    shape = tuple(int(d) for d in image_shape)
    if len(shape) != 3 or min(shape) < 1:
        raise ValueError(f"expected an image shape (H, W, C), got {image_shape}")
    if num_classes < 2:
        raise ValueError(f"a classifier needs at least 2 classes, got {num_classes}")
    feature_dim = default_feature_dim(shape) if feature_dim is None else feature_dim
    if feature_dim < 1:
        raise ValueError(f"feature_dim must be positive, got {feature_dim}")
    return Architecture(shape, int(num_classes), int(feature_dim))


# MNIST's (28, 28, 1) digits in 10 classes; also what an `info.json` without an image shape
# (an MNIST classifier saved before the domain classifier existed) describes.
MNIST_ARCHITECTURE = architecture_for((28, 28, 1), 10)


_CONV_DIMENSIONS = ("NHWC", "HWIO", "NHWC")


def _conv(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """Stride-1 'SAME' convolution, NHWC input, HWIO kernel."""
    return jax.lax.conv_general_dilated(
        x, kernel, (1, 1), "SAME", dimension_numbers=_CONV_DIMENSIONS
    )


def _patches_3x3(x: jax.Array) -> jax.Array:
    """(B, H, W, C) -> (B, H, W, 9, C): each pixel's zero-padded 3x3 neighbourhood."""
    height, width = x.shape[1:3]
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    return jnp.stack(
        [padded[:, i : i + height, j : j + width] for i in range(3) for j in range(3)], axis=3
    )


@jax.custom_vjp
def conv3x3(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """`_conv` for 3x3 kernels, with a gradient that stays fast inside `lax.scan` on CPU.

    XLA:CPU runs the kernel-gradient convolution that autodiff emits about 50 times slower
    inside a loop body than outside one (jax-ml/jax#12868), which made a scanned MNIST
    epoch take minutes instead of seconds. The backward pass below computes the same
    gradients from ops that stay fast there: the input gradient as an ordinary convolution
    with the flipped, transposed kernel, and the kernel gradient as one matmul of the
    input's 3x3 patches with the output gradient.

    Args:
      x: (B, H, W, C_in).
      kernel: (3, 3, C_in, C_out).

    Returns:
      (B, H, W, C_out).
    """
    return _conv(x, kernel)


def _conv3x3_fwd(x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, tuple[jax.Array, ...]]:
    return _conv(x, kernel), (x, kernel)


def _conv3x3_bwd(
    residuals: tuple[jax.Array, jax.Array], grad: jax.Array
) -> tuple[jax.Array, jax.Array]:
    x, kernel = residuals
    grad_x = _conv(grad, jnp.flip(kernel, axis=(0, 1)).swapaxes(2, 3))
    grad_kernel = jnp.einsum("bhwkc,bhwo->kco", _patches_3x3(x), grad).reshape(kernel.shape)
    return grad_x, grad_kernel


conv3x3.defvjp(_conv3x3_fwd, _conv3x3_bwd)


def _max_pool_2x2(x: jax.Array) -> jax.Array:
    """2x2 max-pooling, stride 2, as a reshape and a max: faster on CPU than `nn.max_pool`,
    whose gradient is a select-and-scatter.

    An odd side is padded by one zero row (column) first. The inputs are ReLU outputs, so
    the zero never exceeds the window's real values: the last window is just cut short
    (PyTorch's `ceil_mode`), and no row is dropped.
    """
    batch, height, width, channels = x.shape
    if height % 2 or width % 2:
        x = jnp.pad(x, ((0, 0), (0, height % 2), (0, width % 2), (0, 0)))
        height, width = x.shape[1:3]
    return x.reshape(batch, height // 2, 2, width // 2, 2, channels).max(axis=(2, 4))


class Conv3x3(nn.Module):
    """`nn.Conv(features, (3, 3), padding='SAME')` (same parameters and initialisers),
    computed with `conv3x3`."""

    features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.param(
            "kernel", nn.initializers.lecun_normal(), (3, 3, x.shape[-1], self.features)
        )
        bias = self.param("bias", nn.initializers.zeros_init(), (self.features,))
        return conv3x3(x, kernel) + bias


class DomainClassifier(nn.Module):
    """Images (B, H, W, C) float in [0, 1] -> (features (B, F), logits (B, K)).

    Parameters: `Conv3x3_0` ... `Conv3x3_{S-1}`, `Dense_0` (features), `Dense_1` (logits).
    """

    widths: tuple[int, ...]
    feature_dim: int
    num_classes: int

    @property
    def tag(self) -> str:
        """The layers and `ARCHITECTURE_VERSION`, e.g. 'conv32-pool-...-dense10/v1'."""
        convs = "-".join(f"conv{width}-pool" for width in self.widths)
        dense = f"dense{self.feature_dim}-dense{self.num_classes}"
        return f"{convs}-{dense}/{ARCHITECTURE_VERSION}"

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        for width in self.widths:
            x = _max_pool_2x2(nn.relu(Conv3x3(width)(x)))
        features = nn.relu(nn.Dense(self.feature_dim)(x.reshape(x.shape[0], -1)))
        logits = nn.Dense(self.num_classes)(features)
        return features, logits


def init_params(architecture: Architecture, key: jax.Array) -> Any:
    """Fresh parameters (Flax's default initialisers) for `architecture`."""
    dummy = jnp.zeros((1, *architecture.image_shape), jnp.float32)
    return architecture.module().init(key, dummy)["params"]


def module_of(params: Any) -> DomainClassifier:
    """The network that `params` belong to, read off their shapes."""
    convs = sorted((k for k in params if k.startswith("Conv3x3_")), key=lambda k: int(k[8:]))
    return DomainClassifier(
        widths=tuple(params[k]["kernel"].shape[-1] for k in convs),
        feature_dim=params["Dense_0"]["kernel"].shape[1],
        num_classes=params["Dense_1"]["kernel"].shape[1],
    )


def to_unit_interval(images: jax.Array) -> jax.Array:
    """uint8 [0, 255] -> float32 [0, 1]; float images are taken to be in [0, 1] already."""
    if images.dtype == jnp.uint8:
        return scale(images, "zero_one")
    return images.astype(jnp.float32)


def check_fits(params: Any, image_shape: tuple[int, ...]) -> None:
    """Raises a ValueError unless images of `image_shape` fit the network of `params`."""
    module = module_of(params)
    channels = params["Conv3x3_0"]["kernel"].shape[2]
    height, width = image_shape[:2]
    for _ in module.widths:
        height, width = -(-height // 2), -(-width // 2)
    inputs = params["Dense_0"]["kernel"].shape[0]
    if image_shape[2] != channels or height * width * module.widths[-1] != inputs:
        raise ValueError(
            f"images of shape {tuple(image_shape)} do not fit this classifier: it takes "
            f"{channels}-channel images whose {len(module.widths)} poolings leave "
            f"{inputs // module.widths[-1]} positions"
        )
