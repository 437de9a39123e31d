"""The MNIST classifier whose features and logits the sample-quality metrics are computed on.

FID-style scores on MNIST need a feature extractor trained on MNIST (ImageNet's Inception
network sees digits as out-of-distribution blobs). This is a small, deterministic conv net:

    image (28, 28, 1) in [0, 1]
    -> Conv 3x3 32 -> ReLU -> max-pool 2x2 -> Conv 3x3 64 -> ReLU -> max-pool 2x2
    -> Dense 128 -> ReLU          (the features: `frechet`'s input)
    -> Dense 10                   (the logits: `inception_score` and `class_coverage`)

It has no dropout or BatchNorm, so one set of parameters is the whole model and inference
has no mode. `python -m gan_jax.metrics.train_classifier` trains it and saves it to
`default_classifier_dir()`, where `load_classifier` reads it back with no flags; scoring an
MNIST run with no classifier there yet trains one first (`gan_jax.evaluation`).

Inputs are NHWC MNIST-shaped images, either uint8 in [0, 255] (the stored data) or float in
[0, 1] (a generator's output mapped there, e.g. `(tanh_output + 1) / 2`).
"""

import dataclasses
import functools
import json
import os
import time
from collections.abc import Mapping
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import numpy.typing as npt
import optax
import tqdm
from absl import logging

from gan_jax.checkpoint import restore_pytree, save_pytree
from gan_jax.data.pipeline import scale
from gan_jax.errors import UserError
from gan_jax.user_cache import user_cache_dir

IMAGE_SHAPE = (28, 28, 1)
NUM_CLASSES = 10
FEATURE_DIM = 128
# Bump when the architecture changes, so an old checkpoint is refused with a clear message
# instead of failing deep inside Orbax.
ARCHITECTURE = "conv32-pool-conv64-pool-dense128-dense10/v1"
TRAIN_COMMAND = "python -m gan_jax.metrics.train_classifier"

_PARAMS_SUBDIR = "params"
_INFO_FILE = "info.json"


class NoClassifierError(UserError, FileNotFoundError):
    """Raised when a directory holds no (usable) trained classifier."""


@dataclasses.dataclass(frozen=True)
class TrainingSettings:
    """How the classifier is trained: the command's defaults, and what `evaluate` uses
    when it trains one on first use (99.36% test accuracy with seed 0)."""

    seed: int = 0
    num_epochs: int = 8
    batch_size: int = 128
    learning_rate: float = 2e-3
    max_shift: int = 1  # random translation in pixels (0: none)
    num_examples: int | None = None  # train on the first N examples only (None: all)


DEFAULT_TRAINING = TrainingSettings()


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
    whose gradient is a select-and-scatter."""
    batch, height, width, channels = x.shape
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


class MnistClassifier(nn.Module):
    """Images (B, 28, 28, 1) float in [0, 1] -> (features (B, 128), logits (B, 10))."""

    @nn.compact
    def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
        x = _max_pool_2x2(nn.relu(Conv3x3(32)(x)))
        x = _max_pool_2x2(nn.relu(Conv3x3(64)(x)))
        features = nn.relu(nn.Dense(FEATURE_DIM)(x.reshape(x.shape[0], -1)))
        logits = nn.Dense(NUM_CLASSES)(features)
        return features, logits


_MODEL = MnistClassifier()


def default_classifier_dir() -> str:
    """Where the trained classifier lives: `$XDG_CACHE_HOME/gan_jax/mnist_classifier`.

    Falls back to `~/.cache/gan_jax/mnist_classifier`, beside the datasets' fetched sources.
    """
    return os.path.join(user_cache_dir(), "mnist_classifier")


def init_params(key: jax.Array) -> Any:
    """Fresh parameters (Flax's default initialisers) for `MnistClassifier`."""
    return _MODEL.init(key, jnp.zeros((1, *IMAGE_SHAPE), jnp.float32))["params"]


def _to_unit_interval(images: jax.Array) -> jax.Array:
    """uint8 [0, 255] -> float32 [0, 1]; float images are taken to be in [0, 1] already."""
    if images.dtype == jnp.uint8:
        return scale(images, "zero_one")
    return images.astype(jnp.float32)


# ---------------------------------------------------------------------------------------
# Training


def _random_shift(key: jax.Array, images: jax.Array, max_shift: int) -> jax.Array:
    """Translates each image by up to `max_shift` pixels in each direction, zero-filled:
    the augmentation that lifts a small conv net past 99% on the MNIST test set."""
    if max_shift == 0:
        return images
    offsets = jax.random.randint(key, (images.shape[0], 2), 0, 2 * max_shift + 1)
    pad = ((0, 0), (max_shift, max_shift), (max_shift, max_shift), (0, 0))

    def crop(image: jax.Array, offset: jax.Array) -> jax.Array:
        return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0), IMAGE_SHAPE)

    return jax.vmap(crop)(jnp.pad(images, pad), offsets)


def _loss_and_correct(
    params: Any, images: jax.Array, labels: jax.Array
) -> tuple[jax.Array, jax.Array]:
    _, logits = _MODEL.apply({"params": params}, _to_unit_interval(images))
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    return loss, jnp.sum(jnp.argmax(logits, axis=-1) == labels)


def _train_epoch(
    state: tuple[Any, Any],
    images: jax.Array,
    labels: jax.Array,
    key: jax.Array,
    *,
    tx: optax.GradientTransformation,
    batch_size: int,
    max_shift: int,
) -> tuple[tuple[Any, Any], dict[str, jax.Array]]:
    """One shuffled pass over the data (the last partial batch dropped), in one `lax.scan`.

    Args:
      state: (params, opt_state).
      images: uint8 (N, 28, 28, 1), on device.
      labels: int32 (N,).
      key: this epoch's shuffling key.
      tx: the optimizer.
      batch_size: examples per step.
      max_shift: the random translation's range in pixels (0: no augmentation).

    Returns:
      (new state, {'loss': mean training loss, 'accuracy': training accuracy}).
    """
    num_steps = images.shape[0] // batch_size
    shuffle_key, shift_key = jax.random.split(key)
    order = jax.random.permutation(shuffle_key, images.shape[0])
    batches = order[: num_steps * batch_size].reshape(num_steps, batch_size)

    def step(state, xs):
        indices, key = xs
        params, opt_state = state
        grad_fn = jax.value_and_grad(_loss_and_correct, has_aux=True)
        batch = _random_shift(key, _to_unit_interval(images[indices]), max_shift)
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
    *,
    seed: int,
    num_epochs: int,
    batch_size: int,
    learning_rate: float,
    max_shift: int = 1,
) -> Any:
    """Trains `MnistClassifier` with Adam and a cosine-decayed learning rate.

    The data is put on the device once. Each epoch is one jitted dispatch: a `lax.scan`
    over `N // batch_size` steps, in the order `jax.random.permutation` gives for a key
    folded from `seed` and the epoch number, with the state buffers donated. So the result
    depends only on the arguments: the same seed gives bit-identical parameters on CPU.

    Args:
      images: uint8 (N, 28, 28, 1) in [0, 255].
      labels: int (N,) in [0, 10).
      seed: seeds the initialisation and the data order.
      num_epochs: passes over the data.
      batch_size: examples per step, at most N.
      learning_rate: Adam's peak learning rate, decayed to 0 along a cosine.
      max_shift: each training image is shifted by up to this many pixels (0: none).

    Returns:
      The trained parameters (a pytree for `classifier_outputs` and `save_classifier`).
    """
    images = jnp.asarray(images)
    labels = jnp.asarray(labels, dtype=jnp.int32)
    if images.dtype != jnp.uint8 or images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"expected uint8 (N, 28, 28, 1) images, got {images.dtype} {images.shape}")
    if labels.shape != images.shape[:1]:
        raise ValueError(f"expected {images.shape[0]} labels, got shape {labels.shape}")
    if not 0 < batch_size <= images.shape[0]:
        raise ValueError(f"batch_size must be in [1, {images.shape[0]}], got {batch_size}")
    steps_per_epoch = images.shape[0] // batch_size
    tx = optax.adam(optax.cosine_decay_schedule(learning_rate, num_epochs * steps_per_epoch))

    init_key, shuffle_key = jax.random.split(jax.random.key(seed))
    params = init_params(init_key)
    state = (params, tx.init(params))
    run_epoch = jax.jit(
        functools.partial(_train_epoch, tx=tx, batch_size=batch_size, max_shift=max_shift),
        donate_argnums=0,
    )
    # One tick an epoch (each is one dispatch), shown only on a terminal.
    progress = tqdm.tqdm(total=num_epochs, unit="epoch", desc="MNIST classifier", disable=None)
    for epoch in range(num_epochs):
        start = time.monotonic()
        state, metrics = run_epoch(state, images, labels, jax.random.fold_in(shuffle_key, epoch))
        metrics = jax.device_get(metrics)
        progress.update()
        logging.info(
            "epoch %d/%d: loss %.4f, train accuracy %.4f (%.1f s)",
            epoch + 1,
            num_epochs,
            metrics["loss"],
            metrics["accuracy"],
            time.monotonic() - start,
        )
    progress.close()
    return state[0]


def train_and_save(
    directory: str,
    train: tuple[np.ndarray, np.ndarray],
    test: tuple[np.ndarray, np.ndarray],
    settings: TrainingSettings = DEFAULT_TRAINING,
    min_accuracy: float = 0.0,
) -> tuple[Any, dict[str, Any]]:
    """Trains the classifier on `train` (images, labels), scores it on `test`, saves it.

    Raises:
      UserError: if the test accuracy is below `min_accuracy` (nothing is saved).

    Returns:
      (params, the info saved beside them).
    """
    images, labels = train
    if settings.num_examples:
        images, labels = images[: settings.num_examples], labels[: settings.num_examples]
    start = time.monotonic()
    params = train_classifier(
        images,
        labels,
        seed=settings.seed,
        num_epochs=settings.num_epochs,
        batch_size=settings.batch_size,
        learning_rate=settings.learning_rate,
        max_shift=settings.max_shift,
    )
    train_seconds = time.monotonic() - start
    test_accuracy = accuracy(params, *test)
    logging.info("test accuracy %.4f after %.0f s of training", test_accuracy, train_seconds)
    if test_accuracy < min_accuracy:
        raise UserError(
            f"test accuracy {test_accuracy:.4f} is below --min_accuracy={min_accuracy}; "
            "not saved (train longer or lower --min_accuracy)"
        )
    info = {
        "test_accuracy": test_accuracy,
        "train_accuracy": accuracy(params, images, labels),
        **dataclasses.asdict(settings),
        "train_seconds": round(train_seconds, 1),
    }
    save_classifier(directory, params, info)
    return params, info


# ---------------------------------------------------------------------------------------
# Inference


@jax.jit
def _outputs(params: Any, images: jax.Array) -> tuple[jax.Array, jax.Array]:
    return _MODEL.apply({"params": params}, _to_unit_interval(images))


def classifier_outputs(
    params: Any, images: npt.ArrayLike, *, batch_size: int = 1000
) -> tuple[np.ndarray, np.ndarray]:
    """The classifier's features and logits for a set of images, computed in batches.

    Args:
      params: from `train_classifier` or `load_classifier`.
      images: (N, 28, 28, 1) (or (N, 28, 28)), NumPy or JAX: uint8 in [0, 255], or float
        in [0, 1]. Generators' outputs must be mapped to [0, 1] first (for tanh outputs,
        `(x + 1) / 2`); floats outside [0, 1] are refused rather than silently misread.
      batch_size: images per jitted call. Every call has this shape (the last batch is
        padded), so any N compiles once.

    Returns:
      (features float32 (N, 128), logits float32 (N, 10)) as NumPy arrays. A uint8 image
      and the same image as float32 `image / 255` give identical outputs.
    """
    images = np.asarray(images)
    if images.ndim == 3:
        images = images[..., None]
    if images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"expected (N, 28, 28, 1) images, got shape {images.shape}")
    if images.dtype != np.uint8:
        if not np.issubdtype(images.dtype, np.floating):
            raise ValueError(f"images must be uint8 or float, got {images.dtype}")
        # A little slack for rounding in a generator's own rescaling.
        if images.size and (images.min() < -1e-3 or images.max() > 1 + 1e-3):
            raise ValueError(
                f"float images must lie in [0, 1], got [{images.min():.3f}, {images.max():.3f}]"
            )
    n = images.shape[0]
    batch_size = max(1, min(batch_size, n))
    features, logits = [], []
    for start in range(0, n, batch_size):
        batch = images[start : start + batch_size]
        pad = batch_size - len(batch)
        if pad:
            batch = np.concatenate([batch, np.zeros((pad, *IMAGE_SHAPE), batch.dtype)])
        f, lg = jax.device_get(_outputs(params, batch))
        features.append(f[: batch_size - pad])
        logits.append(lg[: batch_size - pad])
    if not features:
        return np.zeros((0, FEATURE_DIM), np.float32), np.zeros((0, NUM_CLASSES), np.float32)
    return np.concatenate(features), np.concatenate(logits)


def accuracy(params: Any, images: npt.ArrayLike, labels: npt.ArrayLike) -> float:
    """Fraction of `images` (as for `classifier_outputs`) classified as `labels`."""
    _, logits = classifier_outputs(params, images)
    return float(np.mean(np.argmax(logits, axis=-1) == np.asarray(labels)))


# ---------------------------------------------------------------------------------------
# Saving and loading


def save_classifier(directory: str, params: Any, info: Mapping[str, Any]) -> None:
    """Writes the parameters (Orbax) and `info` (JSON) into `directory`, replacing any there.

    `info.json` is written last, atomically, and removed first: a directory holds a usable
    classifier exactly when it is present, so an interrupted save reads as "no classifier".

    Args:
      directory: created if needed.
      params: from `train_classifier`.
      info: plain JSON values: test accuracy, training settings and the like. The
        architecture tag is added.
    """
    directory = os.path.abspath(os.path.expanduser(directory))
    os.makedirs(directory, exist_ok=True)
    info_path = os.path.join(directory, _INFO_FILE)
    if os.path.exists(info_path):
        os.remove(info_path)
    save_pytree(os.path.join(directory, _PARAMS_SUBDIR), params)
    tmp = f"{info_path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        json.dump({**info, "architecture": ARCHITECTURE}, f, indent=2, sort_keys=True)
        f.write("\n")
    os.replace(tmp, info_path)


def has_classifier(directory: str) -> bool:
    """Whether `directory` holds a saved classifier (of any architecture)."""
    return os.path.isfile(os.path.join(os.path.expanduser(directory), _INFO_FILE))


def load_classifier(directory: str | None = None) -> tuple[Any, dict[str, Any]]:
    """Reads a classifier written by `save_classifier`.

    Args:
      directory: None for `default_classifier_dir()`.

    Returns:
      (params for `classifier_outputs`, the saved info dict).

    Raises:
      NoClassifierError: if the directory holds no classifier, or one of another
        architecture; the message names the command that trains one.
    """
    directory = os.path.abspath(os.path.expanduser(directory or default_classifier_dir()))
    command = TRAIN_COMMAND
    if directory != os.path.abspath(default_classifier_dir()):
        command += f" --out_dir={directory}"
    info_path = os.path.join(directory, _INFO_FILE)
    params_path = os.path.join(directory, _PARAMS_SUBDIR)
    if not (os.path.isfile(info_path) and os.path.isdir(params_path)):
        raise NoClassifierError(f"no MNIST classifier in {directory}: train one with {command}")
    with open(info_path) as f:
        info = json.load(f)
    if info.get("architecture") != ARCHITECTURE:
        raise NoClassifierError(
            f"the classifier in {directory} is {info.get('architecture')!r}, not "
            f"{ARCHITECTURE!r}: retrain it with {command}"
        )
    params = restore_pytree(params_path, jax.eval_shape(init_params, jax.random.key(0)))
    return params, info
