"""Flax's convolution layers, with formulations that XLA:CPU runs faster.

`ConvTranspose` is `flax.linen.ConvTranspose` with the same parameters (names, shapes,
initializers), so checkpoints move between formulations and backends. On the CPU it
computes DCGAN's 4x4, stride-2 transposed convolutions by output phase: each of the
four phases of the output (even/odd row, even/odd column) is a 2x2 convolution of the
input with a quarter of the kernel's taps, done as one patch matrix times a matrix.
XLA:CPU's own transposed convolution dilates the input with zeros, and the gradient
of that (with respect to the kernel) is its slowest path: on 2 Zen 4 cores, batch 64,
D2L's 4->8 (512->256 channels) layer took 1,143 ms forward and backward, and 114 ms
by phases (plain forward alone: 30 ms; numbers from benchmarks/conv_layers.py).

`Conv` is `flax.linen.Conv` likewise, computed as one patch matrix times the kernel
where that measured faster (small outputs; D2L's stride-2 layers).

`formulation` picks the computation: 'auto' (the reformulation where it measured
faster, on the CPU, for layers of at least `MIN_REFORMULATED_MULTIPLY_ADDS`; XLA's own
elsewhere), 'xla', or 'phases' / 'patches'. tests/conv_layers_test.py checks that the
formulations agree in outputs and gradients.
"""

import contextlib
import math
from collections.abc import Iterator, Sequence
from typing import Literal

import flax.linen as nn
import jax
import jax.numpy as jnp
from jax import lax

Formulation = Literal["auto", "xla", "phases", "patches"]

# D2L's last layer (64 -> 3 channels) ran 62 ms plain and 239 ms by phases: with few
# outputs the four skinny matmuls lose to XLA's convolution.
MIN_PHASE_FEATURES = 16
# Where patches measured faster than XLA:CPU's convolution (forward and backward, 2 Zen 4
# cores; benchmarks/conv_layers.py): D2L's 4x4 stride-2 layers with 64 or more inputs
# (batch 256, 32->16 px, 64->128 channels: 1,235 -> 731 ms; 8->4 px: 446 -> 376 ms)
# and any layer with a 4x4 or smaller output (Foster's 5x5 layers at batch 64:
# 7->4 px, 64->128: 44 -> 9 ms; 4->4 px, 128->128: 141 -> 17 ms). XLA's own stays
# faster on larger outputs of 5x5 kernels (14->14 px, 64->128: 82 against 155 ms)
# and on 3-channel inputs (the same either way).
MIN_PATCH_INPUTS = 16
MAX_SMALL_OUTPUT_POSITIONS = 16
MIN_REFORMULATED_MULTIPLY_ADDS = 50_000_000
# PyTorch's ConvTranspose2d(k=4, s=2, p=1) as Flax padding (k - 1 - p on each side).
PHASE_PADDING = ((2, 2), (2, 2))


_xla_everywhere = False


@contextlib.contextmanager
def xla_everywhere() -> Iterator[None]:
    """Within it, every layer traced computes as Flax's does (formulation 'xla'): to
    compare whole networks, or time them, against the plain layers."""
    global _xla_everywhere
    before, _xla_everywhere = _xla_everywhere, True
    try:
        yield
    finally:
        _xla_everywhere = before


def conv_transpose_by_phases(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """`lax.conv_transpose(x, kernel, (2, 2), PHASE_PADDING)` in NHWC/HWIO, by phases.

    Output row 2i + a takes input rows i - 1 + a and i + a with kernel rows a and a + 2
    (columns likewise), so phase (a, b) is the 2x2-window patches of the input padded
    by one, starting at (a, b), times the taps kernel[a::2, b::2].

    Args:
      x: (B, H, W, C_in).
      kernel: (4, 4, C_in, C_out), Flax's ConvTranspose layout (not flipped).

    Returns:
      (B, 2H, 2W, C_out).
    """
    batch, height, width, in_features = x.shape
    padded = jnp.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
    rows = []
    for a in (0, 1):
        phases = []
        for b in (0, 1):
            windows = [
                padded[:, a + i : a + i + height, b + j : b + j + width]
                for i in (0, 1)
                for j in (0, 1)
            ]
            patches = jnp.concatenate(windows, axis=-1)  # (B, H, W, 4 C_in)
            taps = kernel[a::2, b::2].reshape(4 * in_features, -1)
            phases.append(patches @ taps)
        rows.append(jnp.stack(phases, axis=3))  # (B, H, W, 2, C_out)
    # (B, H, 2, W, 2, C_out): row phase beside the row index, column phase likewise.
    return jnp.stack(rows, axis=2).reshape(batch, 2 * height, 2 * width, -1)


def conv_by_patches(
    x: jax.Array,
    kernel: jax.Array,
    strides: tuple[int, int],
    padding: str | Sequence[tuple[int, int]],
) -> jax.Array:
    """`lax.conv_general_dilated(x, kernel, strides, padding)` in NHWC/HWIO, as one patch
    matrix (each output position's kh x kw window, all channels) times the kernel.

    Args:
      x: (B, H, W, C_in).
      kernel: (kh, kw, C_in, C_out).
      strides: (sh, sw).
      padding: 'SAME', 'VALID' or ((top, bottom), (left, right)).

    Returns:
      (B, H_out, W_out, C_out).
    """
    kh, kw, in_features, _ = kernel.shape
    sh, sw = strides
    if isinstance(padding, str):
        padding = lax.padtype_to_pads(x.shape[1:3], (kh, kw), strides, padding)
    pads = tuple(map(tuple, padding))
    padded = jnp.pad(x, ((0, 0), *pads, (0, 0)))
    out_h = (padded.shape[1] - kh) // sh + 1
    out_w = (padded.shape[2] - kw) // sw + 1
    windows = [
        padded[:, i : i + sh * (out_h - 1) + 1 : sh, j : j + sw * (out_w - 1) + 1 : sw]
        for i in range(kh)
        for j in range(kw)
    ]
    patches = jnp.concatenate(windows, axis=-1)  # (B, H_out, W_out, kh kw C_in)
    return patches @ kernel.reshape(kh * kw * in_features, -1)


def _worth_reformulating(multiply_adds: int) -> bool:
    """Whether a layer is large enough for its faster run to repay the longer compilation.

    The reformulations' programs (slices, concatenations, their gradients) take XLA
    longer to compile: a narrow DCGAN's training step (n = 8, batch 8) compiled in 9.0 s
    with them and 3.4 s without, and ran no faster. Below this many multiply-adds per
    call, XLA's layer is kept: D2L's wide layers at batch 64 are about 2 G, at a
    quarter of the width 134 M; the tests' narrow networks at batch 8 about 4 M.
    """
    return multiply_adds >= MIN_REFORMULATED_MULTIPLY_ADDS


def _parameters(
    layer: nn.Conv | nn.ConvTranspose, inputs: jax.Array, kernel_size: tuple[int, int]
) -> tuple[jax.Array, jax.Array, jax.Array | None]:
    """The layer's kernel and bias as Flax's layer creates them (names, shapes,
    initializers), with `inputs`, promoted to its computation dtype."""
    shape = (*kernel_size, inputs.shape[-1], layer.features)
    kernel = layer.param("kernel", layer.kernel_init, shape, layer.param_dtype)
    bias = (
        layer.param("bias", layer.bias_init, (layer.features,), layer.param_dtype)
        if layer.use_bias
        else None
    )
    return nn.dtypes.promote_dtype(inputs, kernel, bias, dtype=layer.dtype)


def _pair(value: int | Sequence[int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else (value[0], value[1])


def _is_dcgan_upsampling(layer: nn.ConvTranspose) -> bool:
    padding = layer.padding
    explicit = not isinstance(padding, str) and tuple(map(tuple, padding)) == PHASE_PADDING
    return (
        tuple(layer.kernel_size) == (4, 4)
        and _pair(layer.strides or 1) == (2, 2)
        and explicit
        and layer.kernel_dilation in (None, 1, (1, 1))
        and not layer.transpose_kernel
        and layer.mask is None
    )


class ConvTranspose(nn.ConvTranspose):
    """`nn.ConvTranspose`, by phases where that is faster (see the module docstring).

    Attributes:
      formulation: 'auto', 'xla' (Flax's computation) or 'phases' (4x4, stride-2 layers
        with PyTorch's padding 1 only).
    """

    formulation: Formulation = "auto"

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        if not self.uses_phases(inputs):
            return super().__call__(inputs)
        inputs, kernel, bias = _parameters(self, inputs, (4, 4))
        y = conv_transpose_by_phases(inputs, kernel)
        return y if bias is None else y + bias

    def uses_phases(self, inputs: jax.Array) -> bool:
        """Whether this layer computes by phases."""
        if self.formulation == "xla" or _xla_everywhere:
            return False
        if not _is_dcgan_upsampling(self):
            if self.formulation == "phases":
                raise ValueError("formulation 'phases' needs a 4x4, stride-2 layer, padding 1")
            return False
        if self.formulation == "phases":
            return True
        return (
            jax.default_backend() == "cpu"
            and self.features >= MIN_PHASE_FEATURES
            # Each input value meets each of the 16 taps once per output feature.
            and _worth_reformulating(math.prod(inputs.shape) * 16 * self.features)
        )


class Conv(nn.Conv):
    """`nn.Conv`, as patches times a matrix where that is faster (see the module docstring).

    Attributes:
      formulation: 'auto', 'xla' (Flax's computation) or 'patches' (2-D convolutions
        without dilation, groups or masks).
    """

    formulation: Formulation = "auto"

    @nn.compact
    def __call__(self, inputs: jax.Array) -> jax.Array:
        if not self.uses_patches(inputs):
            return super().__call__(inputs)
        inputs, kernel, bias = _parameters(self, inputs, tuple(self.kernel_size))
        y = conv_by_patches(inputs, kernel, _pair(self.strides or 1), self.padding)
        return y if bias is None else y + bias

    def uses_patches(self, inputs: jax.Array) -> bool:
        """Whether this layer computes as patches times a matrix on `inputs`."""
        if self.formulation == "xla" or _xla_everywhere:
            return False
        simple = (
            inputs.ndim == 4
            and len(self.kernel_size) == 2
            and self.kernel_dilation in (None, 1, (1, 1))
            and self.input_dilation in (None, 1, (1, 1))
            and self.feature_group_count == 1
            and self.mask is None
            and (not isinstance(self.padding, str) or self.padding in ("SAME", "VALID"))
        )
        if not simple:
            if self.formulation == "patches":
                raise ValueError("formulation 'patches' needs a plain 2-D convolution")
            return False
        if self.formulation == "patches":
            return True
        if jax.default_backend() != "cpu" or inputs.shape[-1] < MIN_PATCH_INPUTS:
            return False
        strides = _pair(self.strides or 1)
        dcgan_downsampling = tuple(self.kernel_size) == (4, 4) and strides == (2, 2)
        # At most this many positions with 'SAME' padding; fewer with 'VALID'.
        out_positions = -(-inputs.shape[1] // strides[0]) * -(-inputs.shape[2] // strides[1])
        kh, kw = self.kernel_size
        macs = inputs.shape[0] * out_positions * kh * kw * inputs.shape[3] * self.features
        small_output = out_positions <= MAX_SMALL_OUTPUT_POSITIONS
        return (dcgan_downsampling or small_output) and _worth_reformulating(macs)
