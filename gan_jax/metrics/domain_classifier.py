"""A classifier for any labelled image set, whose features and logits the scores use.

FID-style scores need a feature extractor that knows the domain: ImageNet's Inception
network sees digits or 64x64 sprites as out-of-distribution blobs. For a prepared data set
with class labels (MNIST, Fashion-MNIST, labelled Pokemon sprites, a user's class folders)
this module trains a small, deterministic conv net on the set itself, once, and caches it:

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
and training, so MNIST classifiers saved before this module existed load unchanged.

It has no dropout or BatchNorm, so one set of parameters is the whole model and inference
has no mode. `classifier_for(name)` returns the cached classifier of a prepared set, or
trains one first; `python -m gan_jax.metrics.train_classifier --dataset=NAME` trains one
explicitly. A classifier is cached under a key naming the data set's variant and a digest
of its training images and labels (`dataset_key`), so a changed set is never scored with a
stale classifier. MNIST keeps its own place, `~/.cache/gan_jax/mnist_classifier`.

Inputs are NHWC images, either uint8 in [0, 255] (the stored data) or float in [0, 1] (a
generator's output mapped there, e.g. `(tanh_output + 1) / 2`).
"""

import dataclasses
import functools
import hashlib
import json
import os
import re
import time
from collections.abc import Mapping
from typing import Any, NamedTuple

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
import optax
import tqdm
from absl import logging

from gan_jax.checkpoint import restore_pytree, save_pytree, state_digest
from gan_jax.data import source
from gan_jax.data.pipeline import scale
from gan_jax.errors import UserError
from gan_jax.user_cache import user_cache_dir

# The first stage's width; each further stage doubles it.
BASE_WIDTH = 32
# Stages are added until the smaller side is at most this.
MAX_FINAL_SIDE = 8
# Bump when the network or its training changes meaning, so an old checkpoint is refused
# with a clear message instead of failing deep inside Orbax.
ARCHITECTURE_VERSION = "v1"
TRAIN_COMMAND = "python -m gan_jax.metrics.train_classifier"
# A set with a training split only is scored on every HOLD_OUT_EVERY-th example (index
# HOLD_OUT_EVERY - 1, 2 * HOLD_OUT_EVERY - 1, ...), which the classifier never trains on.
HOLD_OUT_EVERY = 10
MNIST = "mnist"
# What classifiers saved before this module (MNIST's, whose info has no image shape) take.
_MNIST_SHAPE = (28, 28, 1)
_MNIST_CLASSES = 10

_PARAMS_SUBDIR = "params"
_INFO_FILE = "info.json"
# Keys of `classifier_dir`: readable, and safe as one directory name.
_UNSAFE_KEY_CHARACTERS = re.compile(r"[^\w.+-]+")
_KEY_DIGEST_CHARS = 16
# At most about this many training examples are scored for the reported train accuracy.
_TRAIN_ACCURACY_EXAMPLES = 10_000


class NoClassifierError(UserError, FileNotFoundError):
    """Raised when a directory holds no (usable) trained classifier."""


class NoLabelsError(UserError, ValueError):
    """Raised for a data set without class labels: it can have no domain classifier."""


# ---------------------------------------------------------------------------------------
# The network


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


MNIST_ARCHITECTURE = architecture_for(_MNIST_SHAPE, _MNIST_CLASSES)


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


def _module_of(params: Any) -> DomainClassifier:
    """The network that `params` belong to, read off their shapes."""
    convs = sorted((k for k in params if k.startswith("Conv3x3_")), key=lambda k: int(k[8:]))
    return DomainClassifier(
        widths=tuple(params[k]["kernel"].shape[-1] for k in convs),
        feature_dim=params["Dense_0"]["kernel"].shape[1],
        num_classes=params["Dense_1"]["kernel"].shape[1],
    )


def _to_unit_interval(images: jax.Array) -> jax.Array:
    """uint8 [0, 255] -> float32 [0, 1]; float images are taken to be in [0, 1] already."""
    if images.dtype == jnp.uint8:
        return scale(images, "zero_one")
    return images.astype(jnp.float32)


# ---------------------------------------------------------------------------------------
# Training


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """How a classifier is trained. The defaults are MNIST's: the command's, and what
    scoring uses when it trains one on first use (99.36% test accuracy with seed 0)."""

    seed: int = 0
    num_epochs: int = 8
    batch_size: int = 128
    learning_rate: float = 2e-3
    max_shift: int = 1  # random translation in pixels (0: none)
    num_examples: int | None = None  # train on the first N examples only (None: all)
    flip: bool = False  # mirror a random half of each batch left-right


DEFAULT_TRAINING = TrainingSettings()


def _random_shift(key: jax.Array, images: jax.Array, max_shift: int) -> jax.Array:
    """Translates each image by up to `max_shift` pixels in each direction, zero-filled:
    the augmentation that lifts a small conv net past 99% on the MNIST test set."""
    if max_shift == 0:
        return images
    offsets = jax.random.randint(key, (images.shape[0], 2), 0, 2 * max_shift + 1)
    pad = ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0))
    shape = images.shape[1:]

    def crop(image: jax.Array, offset: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), shape)

    return jax.vmap(crop)(jnp.pad(images, pad), offsets)


def _random_flip(key: jax.Array, images: jax.Array) -> jax.Array:
    """Mirrors each image left-right with probability 1/2."""
    flipped = jax.random.bernoulli(key, 0.5, (images.shape[0], 1, 1, 1))
    return jnp.where(flipped, images[:, :, ::-1], images)


def _loss_and_correct(
    params: Any, images: jax.Array, labels: jax.Array, *, module: DomainClassifier
) -> tuple[jax.Array, jax.Array]:
    _, logits = module.apply({"params": params}, _to_unit_interval(images))
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, jnp.sum(jnp.argmax(logits, axis=-1) == labels)


def _train_epoch(
    state: tuple[Any, Any],
    images: jax.Array,
    labels: jax.Array,
    key: jax.Array,
    *,
    module: DomainClassifier,
    tx: optax.GradientTransformation,
    batch_size: int,
    max_shift: int,
    flip: bool,
) -> tuple[tuple[Any, Any], dict[str, jax.Array]]:
    """One shuffled pass over the data (the last partial batch dropped), in one `lax.scan`.

    Args:
      state: (params, opt_state).
      images: uint8 (N, H, W, C), on device.
      labels: int32 (N,).
      key: this epoch's shuffling key.
      module: the network.
      tx: the optimizer.
      batch_size: examples per step.
      max_shift: the random translation's range in pixels (0: no augmentation).
      flip: whether to mirror a random half of each batch.

    Returns:
      (new state, {'loss': mean training loss, 'accuracy': training accuracy}).
    """
    num_steps = images.shape[0] // batch_size
    shuffle_key, shift_key = jax.random.split(key)
    order = jax.random.permutation(shuffle_key, images.shape[0])
    batches = order[: num_steps * batch_size].reshape(num_steps, batch_size)
    loss_fn = functools.partial(_loss_and_correct, module=module)

    def step(state, xs):
        indices, key = xs
        params, opt_state = state
        grad_fn = jax.value_and_grad(loss_fn, has_aux=True)
        batch = _random_shift(key, _to_unit_interval(images[indices]), max_shift)
        if flip:  # its own stream, so the shifts are those of a run without flips
            batch = _random_flip(jax.random.fold_in(key, 1), batch)
        (loss, correct), grads = grad_fn(params, batch, labels[indices])
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), (loss, correct)

    state, (losses, correct) = jax.lax.scan(
        step, state, (batches, jax.random.split(shift_key, num_steps))
    )
    return state, {"loss": losses.mean(), "accuracy": correct.sum() / (num_steps * batch_size)}


def train_classifier(
    images: npt.ArrayLike,
    labels: npt.ArrayLike,
    num_classes: int,
    settings: TrainingSettings = DEFAULT_TRAINING,
    *,
    feature_dim: int | None = None,
    name: str = "classifier",
) -> Any:
    """Trains the classifier for these images' shape with Adam and a cosine-decayed rate.

    The data is put on the device once. Each epoch is one jitted dispatch: a `lax.scan`
    over `N // batch_size` steps, in the order `jax.random.permutation` gives for a key
    folded from the seed and the epoch number, with the state buffers donated. So the
    result depends only on the arguments: the same seed gives bit-identical parameters
    on CPU.

    Args:
      images: uint8 (N, H, W, C) in [0, 255].
      labels: int (N,) in [0, num_classes).
      num_classes: the logits' width.
      settings: seed, epochs, batch size, learning rate, augmentation; `num_examples`
        trains on the first that many only.
      feature_dim: None for `default_feature_dim`.
      name: what the progress bar calls it.

    Returns:
      The trained parameters (a pytree for `classifier_outputs` and `save_classifier`).
    """
    images = jnp.asarray(np.asarray(images)[: settings.num_examples])
    labels = jnp.asarray(np.asarray(labels)[: settings.num_examples], dtype=jnp.int32)
    if images.dtype != jnp.uint8 or images.ndim != 4:
        raise ValueError(f"expected uint8 (N, H, W, C) images, got {images.dtype} {images.shape}")
    if labels.shape != images.shape[:1]:
        raise ValueError(f"expected {images.shape[0]} labels, got shape {labels.shape}")
    if labels.size and not 0 <= int(labels.min()) <= int(labels.max()) < num_classes:
        raise ValueError(f"labels must lie in [0, {num_classes})")
    batch_size = settings.batch_size
    if not 0 < batch_size <= images.shape[0]:
        raise ValueError(f"batch_size must be in [1, {images.shape[0]}], got {batch_size}")
    module = architecture_for(images.shape[1:], num_classes, feature_dim).module()
    num_epochs = settings.num_epochs
    steps_per_epoch = images.shape[0] // batch_size
    schedule = optax.cosine_decay_schedule(settings.learning_rate, num_epochs * steps_per_epoch)
    tx = optax.adam(schedule)

    init_key, shuffle_key = jax.random.split(jax.random.key(settings.seed))
    params = module.init(init_key, jnp.zeros((1, *images.shape[1:]), jnp.float32))["params"]
    state = (params, tx.init(params))
    run_epoch = jax.jit(
        functools.partial(
            _train_epoch,
            module=module,
            tx=tx,
            batch_size=batch_size,
            max_shift=settings.max_shift,
            flip=settings.flip,
        ),
        donate_argnums=0,
    )
    # One tick an epoch (each is one dispatch), shown only on a terminal.
    progress = tqdm.tqdm(total=num_epochs, unit="epoch", desc=name, disable=None)
    for epoch in range(num_epochs):
        start = time.monotonic()
        state, metrics = run_epoch(state, images, labels, jax.random.fold_in(shuffle_key, epoch))
        metrics = jax.device_get(metrics)
        progress.update()
        logging.info(
            "%s epoch %d/%d: loss %.4f, train accuracy %.4f (%.1f s)",
            name,
            epoch + 1,
            num_epochs,
            metrics["loss"],
            metrics["accuracy"],
            time.monotonic() - start,
        )
    progress.close()
    return state[0]


class LabelledSet(NamedTuple):
    """A labelled image set, split for training a classifier and for scoring it.

    Attributes:
      name: the data set's name, e.g. 'mnist', 'pokemon', 'my_folders'.
      variant: its prepared version, e.g. 'pokemon/sprites/1.1.0' ('' if not known).
      train: what the classifier trains on.
      held_out: what its accuracy is measured on, never trained on.
      held_out_name: 'test' for the set's test split, 'held-out' for every
        `HOLD_OUT_EVERY`-th example of a set with a training split only.
      num_classes: K.
      digest: `data_digest` of the whole training split (held-out examples included).
    """

    name: str
    variant: str
    train: source.ArrayData
    held_out: source.ArrayData
    held_out_name: str
    num_classes: int
    digest: str


def split_held_out(data: source.ArrayData) -> tuple[source.ArrayData, source.ArrayData]:
    """(train, held out): every `HOLD_OUT_EVERY`-th example (index 9, 19, ...) held out.

    By index, so the split is the same every time and spread over sets stored in class
    order. Near-duplicates (an animation's frames) fall on both sides, so the held-out
    accuracy measures how well the classes are told apart, not generalisation to unseen
    individuals.
    """
    held = np.arange(len(data.images)) % HOLD_OUT_EVERY == HOLD_OUT_EVERY - 1
    return (
        source.ArrayData(data.images[~held], data.labels[~held]),
        source.ArrayData(data.images[held], data.labels[held]),
    )


def train_and_save(
    directory: str,
    data: LabelledSet,
    settings: TrainingSettings = DEFAULT_TRAINING,
    *,
    min_accuracy: float = 0.0,
    feature_dim: int | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Trains the classifier on `data.train`, scores it on `data.held_out`, saves it.

    Raises:
      UserError: if the held-out accuracy is below `min_accuracy` (nothing is saved).

    Returns:
      (params, the info saved beside them, as `load_classifier` returns it).
    """
    images, labels = data.train
    if settings.num_examples:
        images, labels = images[: settings.num_examples], labels[: settings.num_examples]
    label = _display_name(data.name)
    logging.info(
        "training the %s classifier on %d images %s of %d classes (%d epochs), scoring it "
        "on %d %s images",
        label,
        len(images),
        images.shape[1:],
        data.num_classes,
        settings.num_epochs,
        len(data.held_out.images),
        data.held_out_name,
    )
    start = time.monotonic()
    params = train_classifier(
        images,
        labels,
        data.num_classes,
        settings,
        feature_dim=feature_dim,
        name=f"{label} classifier",
    )
    train_seconds = time.monotonic() - start
    held_out_accuracy = accuracy(params, *data.held_out)
    logging.info(
        "%s accuracy %.4f after %.0f s of training",
        data.held_out_name,
        held_out_accuracy,
        train_seconds,
    )
    if held_out_accuracy < min_accuracy:
        raise UserError(
            f"{data.held_out_name} accuracy {held_out_accuracy:.4f} is below "
            f"--min_accuracy={min_accuracy}; not saved (train longer or lower --min_accuracy)"
        )
    # On an evenly spaced sample: the whole of a large set would take minutes to score.
    stride = max(1, len(images) // _TRAIN_ACCURACY_EXAMPLES)
    info = {
        "dataset": data.name,
        "variant": data.variant,
        "data_digest": data.digest,
        "held_out": (
            "the test split"
            if data.held_out_name == "test"
            else f"every {HOLD_OUT_EVERY}th training example, not trained on"
        ),
        "held_out_accuracy": held_out_accuracy,
        "num_train": len(images),
        "num_held_out": len(data.held_out.images),
        "train_accuracy": accuracy(params, images[::stride], labels[::stride]),
        **dataclasses.asdict(settings),
        "train_seconds": round(train_seconds, 1),
    }
    if data.held_out_name == "test":
        info["test_accuracy"] = held_out_accuracy
    architecture = architecture_for(images.shape[1:], data.num_classes, feature_dim)
    return params, save_classifier(directory, architecture, params, info)


# ---------------------------------------------------------------------------------------
# Inference


@jax.jit
def _outputs(params: Any, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    return _module_of(params).apply({"params": params}, _to_unit_interval(images))


def _check_fits(params: Any, image_shape: tuple[int, ...]) -> None:
    """Raises a ValueError unless images of `image_shape` fit the network of `params`."""
    module = _module_of(params)
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


def classifier_outputs(
    params: Any, images: npt.ArrayLike, *, batch_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's features and logits for a set of images, computed in batches.

    Args:
      params: from `train_classifier`, `load_classifier` or `classifier_for`.
      images: (N, H, W, C) of the shape the classifier was trained on ((N, H, W) for one
        channel), NumPy or JAX: uint8 in [0, 255], or float in [0, 1]. Generators' outputs
        must be mapped to [0, 1] first (for tanh outputs, `(x + 1) / 2`); floats outside
        [0, 1] are refused rather than silently misread.
      batch_size: images per jitted call; None for about a million pixels a call (1000
        MNIST digits, 256 64x64 sprites). Every call has this shape (the last batch is
        padded), so any N compiles once.

    Returns:
      (features float32 (N, F), logits float32 (N, K)) as NumPy arrays. A uint8 image and
      the same image as float32 `image / 255` give identical outputs.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.ndim != 4:
        raise ValueError(f"expected (N, H, W, C) images, got shape {images.shape}")
    _check_fits(params, images.shape[1:])
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.floating):
            raise ValueError(f"images must be uint8 or float, got {images.dtype}")
        # A little slack for rounding in a generator's own rescaling.
        if images.size and (images.min() < -1e-3 or images.max() > 1 + 1e-3):
            raise ValueError(
                f"float images must lie in [0, 1], got [{images.min():.3f}, {images.max():.3f}]"
            )
    n, image_shape = images.shape[0], images.shape[1:]
    if batch_size is None:
        batch_size = min(1000, 2**20 // (image_shape[0] * image_shape[1]))
    batch_size = max(1, min(batch_size, n))
    features, logits = [], []
    for start in range(0, n, batch_size):
        batch = images[start : start + batch_size]
        pad = batch_size - len(batch)
        if pad:
            batch = np.concatenate([batch, np.zeros((pad, *image_shape), batch.dtype)])
        f, lg = jax.device_get(_outputs(params, batch))
        features.append(f[: batch_size - pad])
        logits.append(lg[: batch_size - pad])
    if not features:
        module = _module_of(params)
        return (
            np.zeros((0, module.feature_dim), np.float32),
            np.zeros((0, module.num_classes), np.float32),
        )
    return np.concatenate(features), np.concatenate(logits)


def accuracy(params: Any, images: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Fraction of `images` (as for `classifier_outputs`) classified as `labels`."""
    _, logits = classifier_outputs(params, images)
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(labels)))


# ---------------------------------------------------------------------------------------
# Saving and loading


def save_classifier(
    directory: str, architecture: Architecture, params: Any, info: Mapping[str, Any]
) -> dict[str, Any]:
    """Writes the parameters (Orbax) and `info` (JSON) into `directory`, replacing any there.

    `info.json` is written last, atomically, and removed first: a directory holds a usable
    classifier exactly when it is present, so an interrupted save reads as "no classifier".

    Args:
      directory: created if needed.
      architecture: the network `params` belong to.
      params: from `train_classifier`.
      info: plain JSON values: held-out accuracy, training settings and the like. The
        architecture (tag, image shape, classes, feature width) and `params_digest` are
        added.

    Returns:
      The info as written, with those added.
    """
    _check_fits(params, architecture.image_shape)
    if _module_of(params).tag != architecture.tag:
        raise ValueError(f"the parameters are {_module_of(params).tag}, not {architecture.tag}")
    directory = os.path.abspath(os.path.expanduser(directory))
    os.makedirs(directory, exist_ok=True)
    info_path = os.path.join(directory, _INFO_FILE)
    if os.path.exists(info_path):
        os.remove(info_path)
    save_pytree(os.path.join(directory, _PARAMS_SUBDIR), params)
    full = {
        **info,
        "architecture": architecture.tag,
        "image_shape": list(architecture.image_shape),
        "num_classes": architecture.num_classes,
        "feature_dim": architecture.feature_dim,
        "params_digest": state_digest(params),
    }
    tmp = f"{info_path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump(full, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, info_path)
    return full


def has_classifier(directory: str) -> bool:
    """Whether `directory` holds a saved classifier (of any architecture)."""
    return os.path.isfile(os.path.join(os.path.expanduser(directory), _INFO_FILE))


def _display_name(dataset: str | None) -> str:
    """How messages name a data set's classifier: 'MNIST', 'pokemon', ..."""
    return "MNIST" if dataset == MNIST else (dataset or "domain")


def _train_command(dataset: str | None, directory: str) -> str:
    """The command that trains a classifier into `directory`."""
    command = TRAIN_COMMAND
    if dataset == MNIST:
        default = directory == os.path.abspath(default_classifier_dir())
    else:
        command += f" --dataset={dataset or 'NAME'}"
        default = os.path.dirname(directory) == os.path.abspath(classifier_dir(""))
    return command if default else f"{command} --out_dir={directory}"


def saved_architecture(info: Mapping[str, Any]) -> Architecture | None:
    """The architecture `info.json` describes, or None for one this code cannot build."""
    if "image_shape" not in info:  # saved before this module: MNIST's classifier
        legacy = info.get("architecture") == MNIST_ARCHITECTURE.tag
        return MNIST_ARCHITECTURE if legacy else None
    try:
        architecture = architecture_for(
            info["image_shape"], info["num_classes"], info["feature_dim"]
        )
    except (KeyError, TypeError, ValueError):
        return None
    return architecture if info.get("architecture") == architecture.tag else None


def load_classifier(
    directory: str,
    *,
    expected: Architecture | None = None,
    data_digest: str | None = None,
    dataset: str | None = None,
) -> tuple[Any, dict[str, Any]]:
    """Reads a classifier written by `save_classifier`, refusing one that does not fit.

    Args:
      directory: where it was saved.
      expected: the architecture it must have (image shape, classes, feature width);
        None for whichever it has.
      data_digest: the `data_digest` of the training split it must have been trained on;
        None to accept any. (MNIST classifiers saved before digests were recorded have
        none, and are accepted.)
      dataset: the data set's name, for the messages' train command.

    Returns:
      (params for `classifier_outputs`, the saved info dict).

    Raises:
      NoClassifierError: if the directory holds no classifier, one of another
        architecture or image shape, or one trained on other data; the one-line
        message names the command that trains one.
    """
    directory = os.path.abspath(os.path.expanduser(directory))
    command = _train_command(dataset, directory)
    info_path = os.path.join(directory, _INFO_FILE)
    params_path = os.path.join(directory, _PARAMS_SUBDIR)
    if not (os.path.isfile(info_path) and os.path.isdir(params_path)):
        raise NoClassifierError(
            f"no {_display_name(dataset)} classifier in {directory}: train one with {command}"
        )
    with open(info_path) as f:
        info = json.load(f)
    architecture = saved_architecture(info)
    if architecture is None or (expected is not None and architecture != expected):
        shape = list(architecture.image_shape) if architecture else info.get("image_shape")
        wanted = f", not {expected.tag!r} for {list(expected.image_shape)}" if expected else ""
        raise NoClassifierError(
            f"the classifier in {directory} is {info.get('architecture')!r} for images "
            f"{shape}{wanted}: retrain it with {command}"
        )
    if data_digest is not None and info.get("data_digest") not in (None, data_digest):
        raise NoClassifierError(
            f"the classifier in {directory} was trained on other data (digest "
            f"{info['data_digest'][:12]}, this set's {data_digest[:12]}): retrain it with "
            f"{command}"
        )
    abstract = jax.eval_shape(functools.partial(init_params, architecture), jax.random.key(0))
    return restore_pytree(params_path, abstract), info


# ---------------------------------------------------------------------------------------
# Prepared data sets and the cache


def default_classifier_dir() -> str:
    """Where the MNIST classifier lives: `$XDG_CACHE_HOME/gan_jax/mnist_classifier`.

    Falls back to `~/.cache/gan_jax/mnist_classifier`, beside the datasets' fetched sources.
    """
    return os.path.join(user_cache_dir(), "mnist_classifier")


def data_digest(images: npt.ArrayLike, labels: npt.ArrayLike) -> str:
    """SHA-256 of a labelled set's images (uint8) and labels (int32), shapes included."""
    images = np.ascontiguousarray(images)
    labels = np.ascontiguousarray(labels, np.int32)
    digest = hashlib.sha256(f"{images.dtype}{images.shape}{labels.shape}".encode())
    digest.update(images)
    digest.update(labels)
    return digest.hexdigest()


def dataset_key(variant: str, digest: str) -> str:
    """A cache key naming a set: its variant and its data's digest, one directory name.

    E.g. `dataset_key('pokemon/sprites/1.1.0', digest)` -> 'pokemon-sprites-1.1.0-3fa2...'
    (the first 16 hex digits: 64 bits).
    """
    name = _UNSAFE_KEY_CHARACTERS.sub("-", variant).strip("-.") or "data"
    return f"{name}-{digest[:_KEY_DIGEST_CHARS]}"


def classifier_dir(key: str) -> str:
    """Where the classifier of the set `key` (from `dataset_key`) is cached:
    `$XDG_CACHE_HOME/gan_jax/classifiers/<key>` (else `~/.cache/...`)."""
    return os.path.join(user_cache_dir(), "classifiers", key)


def labelled_set(name: str, data_dir: str | None = None) -> LabelledSet:
    """A prepared set's training split and held-out part: its test split if it has one,
    else every `HOLD_OUT_EVERY`-th training example (`split_held_out`).

    Raises:
      NoLabelsError: if the set has no class labels (one line, saying what to do).
      DatasetNotPreparedError: if it is not prepared in `data_dir`.
    """
    data = source.load(name, "train", data_dir)
    if data.labels is None:
        raise NoLabelsError(
            f"dataset {name!r} has no class labels, so no classifier of its own: FID, KID, "
            "precision/recall, the inception score and class coverage in such a "
            "classifier's features need labels (prepare it with labels: class subfolders, "
            "python -m gan_jax.data.prepare image_folder --path=DIR --name=NAME, or a "
            "labelled variant of the set), or score it in Inception's features with "
            "--inception_weights=PATH"
        )
    num_classes = int(data.labels.max()) + 1
    if num_classes < 2:
        raise NoLabelsError(f"dataset {name!r} has one class only: a classifier needs two")
    variant = source.variant_name(name, data_dir)
    if "test" in source.split_names(name, data_dir):
        train, held_out, held_out_name = data, source.load(name, "test", data_dir), "test"
    else:
        (train, held_out), held_out_name = split_held_out(data), "held-out"
    digest = data_digest(data.images, data.labels)
    return LabelledSet(name, variant, train, held_out, held_out_name, num_classes, digest)


# Training steps of a set other than MNIST: about MNIST's default training in compute on
# 64x64 sprites (2 epochs of 81,324 at 64x64x3, against 8 of 60,000 at 28x28x1), and
# enough for a small set to converge (a few hundred images get hundreds of epochs).
_TRAIN_STEPS = 1000
_MIN_EPOCHS = 2
# Sets whose classes do not change in a mirror, trained with random flips: a sprite faces
# left or right. (Digits and letters do change, and a user's folders may hold either.) On
# a third of the Pokemon sprites, held out by whole animations, flips lifted accuracy from
# 0.483 to 0.523 after 2 epochs.
_MIRRORED_SETS = ("pokemon",)


def default_settings(data: LabelledSet) -> TrainingSettings:
    """How `classifier_for` trains a set's classifier: MNIST's `DEFAULT_TRAINING`; for
    another set the same batches (no larger than the set) for about `_TRAIN_STEPS` steps,
    in whole epochs (at least `_MIN_EPOCHS`), with flips for `_MIRRORED_SETS`."""
    if data.name == MNIST:
        return DEFAULT_TRAINING
    batch_size = min(DEFAULT_TRAINING.batch_size, len(data.train.images))
    steps_per_epoch = len(data.train.images) // batch_size
    return dataclasses.replace(
        DEFAULT_TRAINING,
        num_epochs=max(_MIN_EPOCHS, -(-_TRAIN_STEPS // steps_per_epoch)),
        batch_size=batch_size,
        flip=data.name.split("/")[0] in _MIRRORED_SETS,
    )


def set_classifier_dir(data: LabelledSet) -> str:
    """Where `data`'s classifier is cached: MNIST's `default_classifier_dir()`, any other
    set's `classifier_dir(dataset_key(...))`."""
    if data.name == MNIST:
        return default_classifier_dir()
    return classifier_dir(dataset_key(data.variant, data.digest))


def classifier_for(
    name: str,
    data_dir: str | None = None,
    *,
    directory: str | None = None,
    train_if_missing: bool = True,
    settings: TrainingSettings | None = None,
    data: LabelledSet | None = None,
) -> tuple[Any, dict[str, Any]]:
    """The classifier of a prepared labelled set: cached, or trained first (once).

    Args:
      name: the prepared set, as for `gan_jax.data.source.load` ('mnist', 'pokemon',
        'fashion_mnist', an image folder's name).
      data_dir: TFDS data dir; None for the default.
      directory: a classifier the user named, which must exist and fit (nothing is
        trained into it); None for the set's cache directory (`set_classifier_dir`).
      train_if_missing: train one into the cache directory if it holds none. A
        directory holding a classifier that does not fit is never overwritten: that is
        an error naming the command that retrains it.
      settings: how to train; None for `default_settings`.
      data: `labelled_set(name, data_dir)`, if the caller has it already (it reads the
        whole training split and hashes it: seconds for a large set).

    Returns:
      (params for `classifier_outputs`, its info: 'image_shape', 'num_classes',
      'feature_dim', 'held_out_accuracy', 'params_digest', ...).

    Raises:
      NoLabelsError: the set has no labels.
      NoClassifierError: none to load (and none to train), or one that does not fit.
    """
    data = labelled_set(name, data_dir) if data is None else data
    expected = architecture_for(data.train.images.shape[1:], data.num_classes)
    target = directory or set_classifier_dir(data)
    try:
        return load_classifier(target, expected=expected, data_digest=data.digest, dataset=name)
    except NoClassifierError:
        if directory is not None or not train_if_missing or has_classifier(target):
            raise
    settings = settings or default_settings(data)
    logging.warning(
        "no %s classifier yet: training one for the scores (%d epochs on %d images %s, "
        "once); it is kept in %s",
        _display_name(name),
        settings.num_epochs,
        len(data.train.images),
        data.train.images.shape[1:],
        target,
    )
    params, info = train_and_save(target, data, settings)
    logging.warning(
        "%s classifier trained: %s accuracy %.4f; kept in %s",
        _display_name(name),
        data.held_out_name,
        info["held_out_accuracy"],
        target,
    )
    return params, info
