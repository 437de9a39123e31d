"""The Inception-v3 network of the FID, in Flax, equal to pytorch-fid's, and its weights.

FID and Inception Score on natural images (CIFAR-10, CelebA, LSUN) are computed on the
features of one specific network: the 2015-12-05 TensorFlow Inception graph of Heusel et
al.'s TTUR code, which pytorch-fid 0.3.0 ports as `pytorch_fid.inception.fid_inception_v3`
(torchvision's `inception_v3` with 1008 classes, no auxiliary head, and patched blocks).
`FIDInceptionV3` reproduces it layer for layer:

    (B, 299, 299, 3) in [-1, 1]
    -> Conv2d_1a_3x3 (32, stride 2) -> Conv2d_2a_3x3 (32) -> Conv2d_2b_3x3 (64, pad 1)
    -> max-pool 3x3 stride 2 -> Conv2d_3b_1x1 (80) -> Conv2d_4a_3x3 (192) -> max-pool
    -> Mixed_5b/c/d (InceptionA)  -> Mixed_6a (InceptionB)
    -> Mixed_6b/c/d/e (InceptionC) -> Mixed_7a (InceptionD)
    -> Mixed_7b (InceptionE, avg-pool branch) -> Mixed_7c (InceptionE, max-pool branch)
    -> global average pool        (the "pool3" features, (B, 2048): the FID's input)
    -> fc                         (the logits, (B, 1008): the Inception Score's input)

Every conv is conv (no bias) -> BatchNorm (running statistics, eps 0.001) -> ReLU. As in
pytorch-fid's `FIDInceptionA/C/E_1`, the 3x3 average pools of the Mixed_5*, Mixed_6b-e and
Mixed_7b pool branches leave the zero padding out of the mean (`count_include_pad=False`,
TensorFlow's behaviour), and Mixed_7c's pool branch is a max-pool (`FIDInceptionE_2`).

Preprocessing (`preprocess`, applied by `inception_outputs`) is pytorch-fid's:
NHWC images in [0, 1] (float; uint8 is divided by 255) of any size; one channel is repeated
to three; the images are resized to 299x299 bilinearly exactly as
`torch.nn.functional.interpolate(mode='bilinear', align_corners=False)` does (two taps, no
antialiasing, also when shrinking); then mapped to [-1, 1] by 2x - 1.

The weights are pytorch-fid's file `pt_inception-2015-12-05-6726825d.pth`.
`load_inception_variables` finds them (a path, `$GAN_JAX_INCEPTION_WEIGHTS`, the user cache,
or a download), reads the torch file without torch (`read_torch_state_dict`), converts it
(`variables_from_state_dict`) and caches the result as `.npz`.

tests/data/make_inception_golden.py records pytorch-fid's outputs for random weights
(`random_state_dict`); tests/metrics_inception_test.py matches them offline (to 1e-6).
"""

import functools
import hashlib
import math
import os
import urllib.request
import zipfile
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from absl import logging
from flax import traverse_util

from gan_jax.data import fetch
from gan_jax.errors import UserError, first_line
from gan_jax.metrics import torch_file
from gan_jax.npz_files import save_npz
from gan_jax.user_cache import user_cache_dir

INCEPTION_FEATURE_DIM = 2048
INCEPTION_NUM_CLASSES = 1008
INPUT_SIZE = 299
# What a cache key built on these features must name: the network, its preprocessing and
# the reference it is equal to. Bump the suffix if any of them changes.
ARCHITECTURE = "fid-inception-v3-pytorch-fid-0.3.0/v1"

FID_WEIGHTS_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
    "pt_inception-2015-12-05-6726825d.pth"
)
FID_WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"
# The file's name follows torch.hub's convention (`check_hash`): the hex digits after the
# last '-' begin its SHA-256. The whole digest (95,628,359 bytes) is the one that
# genforce/genforce's `metrics/inception.py` checks its download of this URL against.
FID_WEIGHTS_SHA256 = "6726825d0af5f729cebd5821db510b11b1cfad8faad88a03f1befd49fb9129b2"
WEIGHTS_ENV_VAR = "GAN_JAX_INCEPTION_WEIGHTS"
WEIGHTS_FLAG = "--inception_weights"
_CONVERTED_FILE = "pt_inception-2015-12-05-6726825d.npz"


class InceptionWeightsError(UserError):
    """Raised for a weights file that is not pytorch-fid's FID Inception (or is damaged)."""


class NoInceptionWeightsError(UserError, FileNotFoundError):
    """Raised when no Inception weights can be found or fetched."""


# ---------------------------------------------------------------------------------------
# The network

# Full float32 products on every backend: GPUs and TPUs would otherwise multiply in
# TF32/bfloat16, and the FID's trace term is sensitive to feature errors of that size.
_PRECISION = jax.lax.Precision.HIGHEST


def _pair(value: int | tuple[int, int]) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else value


class BasicConv2d(nn.Module):
    """torchvision's `BasicConv2d`: conv (no bias) -> inference BatchNorm (eps 0.001) -> ReLU."""

    features: int
    kernel_size: int | tuple[int, int]
    strides: int | tuple[int, int] = 1
    padding: int | tuple[int, int] = 0

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        x = nn.Conv(
            self.features,
            _pair(self.kernel_size),
            _pair(self.strides),
            padding=[(p, p) for p in _pair(self.padding)],
            use_bias=False,
            precision=_PRECISION,
            name="conv",
        )(x)
        x = nn.BatchNorm(use_running_average=True, epsilon=1e-3, name="bn")(x)
        return nn.relu(x)


def _avg_pool_3x3_excluding_padding(x: jax.Array) -> jax.Array:
    """`F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)` (pytorch-fid's patch)."""
    return nn.avg_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)), count_include_pad=False)


def _max_pool_3x3_stride_2(x: jax.Array) -> jax.Array:
    return nn.max_pool(x, (3, 3), (2, 2))


class InceptionA(nn.Module):
    """`FIDInceptionA` (Mixed_5b/c/d)."""

    pool_features: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        branch1x1 = BasicConv2d(64, 1, name="branch1x1")(x)
        branch5x5 = BasicConv2d(48, 1, name="branch5x5_1")(x)
        branch5x5 = BasicConv2d(64, 5, padding=2, name="branch5x5_2")(branch5x5)
        branch3x3dbl = BasicConv2d(64, 1, name="branch3x3dbl_1")(x)
        branch3x3dbl = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_2")(branch3x3dbl)
        branch3x3dbl = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_3")(branch3x3dbl)
        branch_pool = _avg_pool_3x3_excluding_padding(x)
        branch_pool = BasicConv2d(self.pool_features, 1, name="branch_pool")(branch_pool)
        return jnp.concatenate([branch1x1, branch5x5, branch3x3dbl, branch_pool], axis=-1)


class InceptionB(nn.Module):
    """torchvision's `InceptionB` (Mixed_6a), unpatched."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        branch3x3 = BasicConv2d(384, 3, strides=2, name="branch3x3")(x)
        branch3x3dbl = BasicConv2d(64, 1, name="branch3x3dbl_1")(x)
        branch3x3dbl = BasicConv2d(96, 3, padding=1, name="branch3x3dbl_2")(branch3x3dbl)
        branch3x3dbl = BasicConv2d(96, 3, strides=2, name="branch3x3dbl_3")(branch3x3dbl)
        branch_pool = _max_pool_3x3_stride_2(x)
        return jnp.concatenate([branch3x3, branch3x3dbl, branch_pool], axis=-1)


class InceptionC(nn.Module):
    """`FIDInceptionC` (Mixed_6b/c/d/e)."""

    channels_7x7: int

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        c7 = self.channels_7x7
        branch1x1 = BasicConv2d(192, 1, name="branch1x1")(x)
        branch7x7 = BasicConv2d(c7, 1, name="branch7x7_1")(x)
        branch7x7 = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7_2")(branch7x7)
        branch7x7 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7_3")(branch7x7)
        dbl = BasicConv2d(c7, 1, name="branch7x7dbl_1")(x)
        dbl = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_2")(dbl)
        dbl = BasicConv2d(c7, (1, 7), padding=(0, 3), name="branch7x7dbl_3")(dbl)
        dbl = BasicConv2d(c7, (7, 1), padding=(3, 0), name="branch7x7dbl_4")(dbl)
        dbl = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7dbl_5")(dbl)
        branch_pool = _avg_pool_3x3_excluding_padding(x)
        branch_pool = BasicConv2d(192, 1, name="branch_pool")(branch_pool)
        return jnp.concatenate([branch1x1, branch7x7, dbl, branch_pool], axis=-1)


class InceptionD(nn.Module):
    """torchvision's `InceptionD` (Mixed_7a), unpatched."""

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        branch3x3 = BasicConv2d(192, 1, name="branch3x3_1")(x)
        branch3x3 = BasicConv2d(320, 3, strides=2, name="branch3x3_2")(branch3x3)
        branch7x7x3 = BasicConv2d(192, 1, name="branch7x7x3_1")(x)
        branch7x7x3 = BasicConv2d(192, (1, 7), padding=(0, 3), name="branch7x7x3_2")(branch7x7x3)
        branch7x7x3 = BasicConv2d(192, (7, 1), padding=(3, 0), name="branch7x7x3_3")(branch7x7x3)
        branch7x7x3 = BasicConv2d(192, 3, strides=2, name="branch7x7x3_4")(branch7x7x3)
        branch_pool = _max_pool_3x3_stride_2(x)
        return jnp.concatenate([branch3x3, branch7x7x3, branch_pool], axis=-1)


class InceptionE(nn.Module):
    """`FIDInceptionE_1` (Mixed_7b, `max_pool=False`) or `FIDInceptionE_2` (Mixed_7c,
    `max_pool=True`: a 3x3 max-pool where the other has the padding-excluding average)."""

    max_pool: bool

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        branch1x1 = BasicConv2d(320, 1, name="branch1x1")(x)
        branch3x3 = BasicConv2d(384, 1, name="branch3x3_1")(x)
        branch3x3 = jnp.concatenate(
            [
                BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3_2a")(branch3x3),
                BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3_2b")(branch3x3),
            ],
            axis=-1,
        )
        dbl = BasicConv2d(448, 1, name="branch3x3dbl_1")(x)
        dbl = BasicConv2d(384, 3, padding=1, name="branch3x3dbl_2")(dbl)
        dbl = jnp.concatenate(
            [
                BasicConv2d(384, (1, 3), padding=(0, 1), name="branch3x3dbl_3a")(dbl),
                BasicConv2d(384, (3, 1), padding=(1, 0), name="branch3x3dbl_3b")(dbl),
            ],
            axis=-1,
        )
        if self.max_pool:
            # `F.max_pool2d(x, 3, stride=1, padding=1)`: torch pads with -inf, as does Flax.
            branch_pool = nn.max_pool(x, (3, 3), (1, 1), ((1, 1), (1, 1)))
        else:
            branch_pool = _avg_pool_3x3_excluding_padding(x)
        branch_pool = BasicConv2d(192, 1, name="branch_pool")(branch_pool)
        return jnp.concatenate([branch1x1, branch3x3, dbl, branch_pool], axis=-1)


class FIDInceptionV3(nn.Module):
    """Preprocessed images (B, 299, 299, 3) in [-1, 1] -> (pool3 features (B, 2048),
    logits (B, 1008)). Inference only: BatchNorm reads `batch_stats`, there is no dropout.

    Submodules carry the names of pytorch-fid's state dict (`Mixed_5b.branch1x1.conv`), so
    the conversion is a rename plus transposes.
    """

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = BasicConv2d(32, 3, strides=2, name="Conv2d_1a_3x3")(x)
        x = BasicConv2d(32, 3, name="Conv2d_2a_3x3")(x)
        x = BasicConv2d(64, 3, padding=1, name="Conv2d_2b_3x3")(x)
        x = _max_pool_3x3_stride_2(x)
        x = BasicConv2d(80, 1, name="Conv2d_3b_1x1")(x)
        x = BasicConv2d(192, 3, name="Conv2d_4a_3x3")(x)
        x = _max_pool_3x3_stride_2(x)
        x = InceptionA(32, name="Mixed_5b")(x)
        x = InceptionA(64, name="Mixed_5c")(x)
        x = InceptionA(64, name="Mixed_5d")(x)
        x = InceptionB(name="Mixed_6a")(x)
        x = InceptionC(128, name="Mixed_6b")(x)
        x = InceptionC(160, name="Mixed_6c")(x)
        x = InceptionC(160, name="Mixed_6d")(x)
        x = InceptionC(192, name="Mixed_6e")(x)
        x = InceptionD(name="Mixed_7a")(x)
        x = InceptionE(max_pool=False, name="Mixed_7b")(x)
        x = InceptionE(max_pool=True, name="Mixed_7c")(x)
        features = jnp.mean(x, axis=(1, 2))
        logits = nn.Dense(INCEPTION_NUM_CLASSES, precision=_PRECISION, name="fc")(features)
        return features, logits


_MODEL = FIDInceptionV3()


# ---------------------------------------------------------------------------------------
# Preprocessing and inference


def _bilinear_matrix(in_size: int, out_size: int) -> np.ndarray:
    """(out_size, in_size) weights of torch's bilinear resize along one axis.

    `F.interpolate(mode='bilinear', align_corners=False)` without a scale factor reads
    output pixel i from source position (i + 0.5) * in/out - 0.5, clamped below at 0, and
    mixes the two pixels around it: only two taps, also when shrinking (no antialiasing,
    unlike `jax.image.resize`). Computed in float32, as torch does for float32 images.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    dst = np.arange(out_size, dtype=np.float32)
    src = np.maximum(scale * (dst + np.float32(0.5)) - np.float32(0.5), np.float32(0.0))
    lower = np.minimum(src.astype(np.int64), in_size - 1)  # floor, as src >= 0
    upper = np.minimum(lower + 1, in_size - 1)
    frac = src - lower.astype(np.float32)
    weights = np.zeros((out_size, in_size), np.float32)
    rows = np.arange(out_size)
    np.add.at(weights, (rows, lower), np.float32(1.0) - frac)
    np.add.at(weights, (rows, upper), frac)
    return weights


def resize_bilinear(images: jax.Array, height: int, width: int) -> jax.Array:
    """NHWC `images` resized as `F.interpolate(..., mode='bilinear', align_corners=False)`.

    A size that does not change is left exactly as it is (torch's weights are then 1 and 0).
    """
    if images.shape[1] != height:
        matrix = _bilinear_matrix(images.shape[1], height)
        images = jnp.einsum("oh,bhwc->bowc", matrix, images, precision=_PRECISION)
    if images.shape[2] != width:
        matrix = _bilinear_matrix(images.shape[2], width)
        images = jnp.einsum("ow,bhwc->bhoc", matrix, images, precision=_PRECISION)
    return images


def resize_for_inception(images: jax.Array) -> jax.Array:
    """pytorch-fid's input resize: (B, H, W, 1 or 3) in [0, 1] (float, or uint8 in [0, 255])
    -> float32 (B, 299, 299, 3) in [0, 1], one channel repeated to three."""
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"expected NHWC images with 1 or 3 channels, got shape {images.shape}")
    if images.dtype == jnp.uint8:
        images = images.astype(jnp.float32) / 255.0
    images = resize_bilinear(images.astype(jnp.float32), INPUT_SIZE, INPUT_SIZE)
    if images.shape[-1] == 1:
        images = jnp.repeat(images, 3, axis=-1)
    return images


def preprocess(images: jax.Array) -> jax.Array:
    """pytorch-fid's preprocessing: `resize_for_inception`, then 2x - 1 into [-1, 1]."""
    return 2.0 * resize_for_inception(images) - 1.0


@jax.jit
def inception_outputs(variables: Any, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    """The FID Inception's pool3 features and logits for one batch of images.

    Compiles once per input shape: callers scoring many images should feed equal batches.

    Args:
      variables: `{'params', 'batch_stats'}` from `load_inception_variables` or
        `variables_from_state_dict`.
      images: (B, H, W, 1 or 3), any H and W, float in [0, 1] (a tanh generator's output
        mapped by (x + 1) / 2) or uint8 in [0, 255]; preprocessed by `preprocess`.

    Returns:
      (features float32 (B, 2048), logits float32 (B, 1008)); softmax of the logits are the
      Inception Score's class probabilities.
    """
    return _MODEL.apply(variables, preprocess(images))


# ---------------------------------------------------------------------------------------
# pytorch-fid's state dict and the conversion

# (collection, Flax leaf name) -> torch leaf name.
_TORCH_LEAF = {
    ("params", "kernel"): "weight",
    ("params", "scale"): "weight",
    ("params", "bias"): "bias",
    ("batch_stats", "mean"): "running_mean",
    ("batch_stats", "var"): "running_var",
}


def _torch_layout(flax_shape: tuple[int, ...]) -> tuple[int, ...]:
    """A Flax kernel's shape in torch's layout: HWIO -> OIHW, (in, out) -> (out, in)."""
    if len(flax_shape) == 4:
        h, w, i, o = flax_shape
        return (o, i, h, w)
    return tuple(reversed(flax_shape))


def _from_torch_layout(array: np.ndarray) -> np.ndarray:
    """The inverse of `_torch_layout` on an array."""
    if array.ndim == 4:
        return array.transpose(2, 3, 1, 0)
    return array.T


@functools.cache
def _flax_layout() -> dict[tuple[str, ...], tuple[int, ...]]:
    """{(collection, *module path, leaf): shape} of `FIDInceptionV3`'s variables."""
    shapes = jax.eval_shape(
        _MODEL.init, jax.random.key(0), jax.ShapeDtypeStruct((1, INPUT_SIZE, INPUT_SIZE, 3), "f4")
    )
    return {path: leaf.shape for path, leaf in traverse_util.flatten_dict(shapes).items()}


def _torch_key(path: tuple[str, ...]) -> str:
    collection, *modules, leaf = path
    return ".".join([*modules, _TORCH_LEAF[collection, leaf]])


@functools.cache
def state_dict_layout() -> dict[str, tuple[int, ...]]:
    """Every key of pytorch-fid's state dict (`pt_inception-2015-12-05-6726825d.pth`, without
    BatchNorm's `num_batches_tracked`) and its shape, e.g. `Conv2d_1a_3x3.conv.weight`:
    (32, 3, 3, 3), `Conv2d_1a_3x3.bn.running_mean`: (32,), `fc.weight`: (1008, 2048)."""
    layout = {}
    for path, shape in _flax_layout().items():
        is_kernel = path[-1] == "kernel"
        layout[_torch_key(path)] = _torch_layout(shape) if is_kernel else shape
    return layout


def _check_entries(
    shapes: Mapping[str, tuple[int, ...]], expected: Mapping[str, tuple[int, ...]], source: str
) -> None:
    """Raises a one-line `InceptionWeightsError` unless `shapes` has exactly the expected
    keys and shapes."""

    def listed(items: list[str]) -> str:
        return ", ".join(items[:3]) + (f", ... ({len(items)} in all)" if len(items) > 3 else "")

    missing = sorted(set(expected) - set(shapes))
    extra = sorted(set(shapes) - set(expected))
    misshaped = [
        f"{key} {tuple(shapes[key])} (expected {tuple(expected[key])})"
        for key in sorted(set(shapes) & set(expected))
        if tuple(shapes[key]) != tuple(expected[key])
    ]
    problems = []
    if missing:
        problems.append(f"missing {listed(missing)}")
    if extra:
        problems.append(f"unexpected {listed(extra)}")
    if misshaped:
        problems.append(f"wrong shape {listed(misshaped)}")
    if problems:
        raise InceptionWeightsError(
            f"{source} is not pytorch-fid's FID Inception state dict: {'; '.join(problems)}"
        )


def variables_from_state_dict(
    state_dict: Mapping[str, np.ndarray], source: str = "the state dict"
) -> dict[str, Any]:
    """Converts pytorch-fid's Inception state dict into `FIDInceptionV3`'s variables.

    Conv kernels go from OIHW to HWIO and the fc weight is transposed; BatchNorm's weight
    and bias become `scale` and `bias`, its running statistics `batch_stats`.

    Args:
      state_dict: name -> array (NumPy or anything `np.asarray` takes), as
        `read_torch_state_dict` or `{k: v.numpy() for k, v in model.state_dict().items()}`
        give it. `num_batches_tracked` entries are ignored.
      source: names the weights in error messages.

    Returns:
      `{'params': ..., 'batch_stats': ...}` of float32 arrays on the default device.

    Raises:
      InceptionWeightsError: (one line) if an entry is missing, unexpected or mis-shaped.
    """
    arrays = {
        key: np.asarray(value)
        for key, value in state_dict.items()
        if not key.endswith(".num_batches_tracked")
    }
    _check_entries({k: v.shape for k, v in arrays.items()}, state_dict_layout(), source)
    flat = {}
    for path in _flax_layout():
        array = arrays[_torch_key(path)].astype(np.float32)
        flat[path] = _from_torch_layout(array) if path[-1] == "kernel" else array
    return jax.device_put(traverse_util.unflatten_dict(flat))


def random_state_dict(seed: int) -> dict[str, np.ndarray]:
    """Random float32 weights in pytorch-fid's layout, for tests that must not download.

    The scales keep the activations O(1) through the whole network, so a comparison of
    two implementations on them exercises every layer: conv weights N(0, 1.4^2 / fan_in)
    (He's gain, making up for the ReLU), BatchNorm scale U(0.8, 1.2), bias N(0, 0.1^2),
    running mean N(0, 0.1^2), running variance U(0.5, 1.5), fc weight N(0, 1 / 2048) and
    bias N(0, 0.1^2). Entries are drawn in sorted key order from one
    `np.random.default_rng(seed)`, so a seed gives the same weights everywhere.
    """
    rng = np.random.default_rng(seed)
    state_dict = {}
    for key, shape in sorted(state_dict_layout().items()):
        if key.endswith("conv.weight"):
            value = rng.standard_normal(shape) * (1.4 / math.sqrt(math.prod(shape[1:])))
        elif key.endswith("bn.weight"):
            value = rng.uniform(0.8, 1.2, shape)
        elif key.endswith("running_var"):
            value = rng.uniform(0.5, 1.5, shape)
        elif key == "fc.weight":
            value = rng.standard_normal(shape) / math.sqrt(shape[1])
        else:  # BatchNorm bias, running mean; fc bias.
            value = 0.1 * rng.standard_normal(shape)
        state_dict[key] = value.astype(np.float32)
    return state_dict


# ---------------------------------------------------------------------------------------
# Finding, fetching and caching the weights


def default_weights_dir() -> str:
    """Where fetched and converted weights are kept: `<user cache>/inception`."""
    return os.path.join(user_cache_dir(), "inception")


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _check_known_file(path: str, sha256: str) -> None:
    if sha256 != FID_WEIGHTS_SHA256:
        raise InceptionWeightsError(
            f"{path} has SHA-256 {sha256[:16]}..., not {FID_WEIGHTS_SHA256[:16]}... as "
            f"pytorch-fid's {FID_WEIGHTS_FILE} has: a damaged download or another file"
        )


def _save_converted(path: str, variables: Any) -> None:
    """Writes variables as `.npz` (keys `params/Mixed_5b/.../kernel`), whole or not at all."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    save_npz(path, **traverse_util.flatten_dict(jax.device_get(variables), sep="/"))


def _load_npz(path: str) -> dict[str, Any]:
    """A converted `.npz` (Flax keys), or one holding the torch state dict's keys."""
    try:
        with np.load(path) as f:
            arrays = {key: f[key] for key in f.files}
    except (OSError, ValueError, zipfile.BadZipFile) as e:
        raise InceptionWeightsError(f"cannot read {path}: {first_line(e)}") from e
    if not any("/" in key for key in arrays):
        return variables_from_state_dict(arrays, path)
    expected = {"/".join(path): shape for path, shape in _flax_layout().items()}
    _check_entries({k: v.shape for k, v in arrays.items()}, expected, path)
    flat = {tuple(key.split("/")): value.astype(np.float32) for key, value in arrays.items()}
    return jax.device_put(traverse_util.unflatten_dict(flat))


def _load_file(path: str, named_by: str = "") -> dict[str, Any]:
    """Weights from an explicit `.npz` or torch file; pytorch-fid's own file is also
    converted into the cache, where later runs find it without being told."""
    if not os.path.isfile(path):
        raise NoInceptionWeightsError(f"no Inception weights file {path}{named_by}")
    if path.endswith(".npz"):
        return _load_npz(path)
    sha256 = _sha256(path)
    if os.path.basename(path) == FID_WEIGHTS_FILE:
        _check_known_file(path, sha256)
    variables = variables_from_state_dict(torch_file.read_torch_state_dict(path), path)
    cached = os.path.join(default_weights_dir(), _CONVERTED_FILE)
    if sha256 == FID_WEIGHTS_SHA256 and not os.path.isfile(cached):
        _save_converted(cached, variables)
        logging.info("converted %s into %s", path, cached)
    return variables


def _fetch(directory: str) -> dict[str, Any]:
    """Downloads pytorch-fid's weights, checks and converts them, and keeps the `.npz`."""
    os.makedirs(directory, exist_ok=True)
    tmp = os.path.join(directory, f"{FID_WEIGHTS_FILE}.{os.getpid()}.tmp")
    logging.info("fetching %s into %s", FID_WEIGHTS_URL, directory)
    try:
        with urllib.request.urlopen(FID_WEIGHTS_URL, timeout=60) as response, open(tmp, "wb") as f:
            while chunk := response.read(1 << 20):
                f.write(chunk)
        _check_known_file(FID_WEIGHTS_URL, _sha256(tmp))
        state_dict = torch_file.read_torch_state_dict(tmp)
        variables = variables_from_state_dict(state_dict, FID_WEIGHTS_URL)
    except OSError as e:
        raise NoInceptionWeightsError(
            f"fetching {FID_WEIGHTS_URL} failed ({first_line(e)}): download it and pass "
            f"{WEIGHTS_FLAG}=PATH or set {WEIGHTS_ENV_VAR}=PATH"
        ) from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _save_converted(os.path.join(directory, _CONVERTED_FILE), variables)
    return variables


def load_inception_variables(weights_path: str | None = None) -> dict[str, Any]:
    """The FID Inception's variables, found where a user expects them.

    In order: `weights_path`; else the file `$GAN_JAX_INCEPTION_WEIGHTS` names; else the
    converted copy in `default_weights_dir()`; else pytorch-fid's file fetched from
    `FID_WEIGHTS_URL` into that folder, when the network allows. A file is either
    pytorch-fid's `.pth` (read without torch) or a `.npz` this function wrote (or one of
    the state dict's NumPy arrays under its keys). pytorch-fid's `.pth`, given or fetched, is
    checked against its SHA-256 and converted once: the `.npz` is kept in the cache.

    Args:
      weights_path: a `.pth` or `.npz` file, or None to search.

    Returns:
      `{'params', 'batch_stats'}` for `inception_outputs`.

    Raises:
      NoInceptionWeightsError: (one line) if no weights are found or can be fetched; the
        message names the flag, the environment variable and the URL.
      InceptionWeightsError: (one line) if a file is not the expected network's weights.
    """
    if weights_path:
        return _load_file(os.path.expanduser(weights_path))
    if os.environ.get(WEIGHTS_ENV_VAR):
        path = os.path.expanduser(os.environ[WEIGHTS_ENV_VAR])
        return _load_file(path, f" (named by ${WEIGHTS_ENV_VAR})")
    directory = default_weights_dir()
    cached = os.path.join(directory, _CONVERTED_FILE)
    if os.path.isfile(cached):
        return _load_npz(cached)
    if fetch.url_is_reachable(FID_WEIGHTS_URL):
        return _fetch(directory)
    raise NoInceptionWeightsError(
        f"no FID Inception weights in {directory} and {FID_WEIGHTS_URL} is unreachable: "
        f"download that file and pass {WEIGHTS_FLAG}=PATH or set {WEIGHTS_ENV_VAR}=PATH"
    )
