"""The domain classifier: MNIST's net exactly, other shapes, learning, the cache, errors.

The labelled set is generated: coloured shapes (red or blue; square, ring or cross: six
classes) at 32x32x3 on noise, prepared as class folders with `prepare image_folder`.
"""

import functools
import json
import os

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from cli_runs import assert_one_line_error, run
from once import built_once, shared_path
from PIL import Image

from gan_jax.checkpoint import state_digest
from gan_jax.data import image_folder, source
from gan_jax.data.image_files import FitOptions
from gan_jax.metrics import domain_classifier as dc
from gan_jax.metrics import mnist_classifier
from gan_jax.metrics.classifier_data import NoLabelsError, data_digest, labelled_set, split_held_out
from gan_jax.metrics.classifier_net import (
    MNIST_ARCHITECTURE,
    Architecture,
    Conv3x3,
    _max_pool_2x2,
    architecture_for,
    init_params,
    num_stages,
)
from gan_jax.metrics.classifier_store import (
    NoClassifierError,
    classifier_dir,
    dataset_key,
    default_classifier_dir,
    load_classifier,
    save_classifier,
)
from gan_jax.metrics.classifier_training import TrainingSettings, _random_flip, train_classifier

SIZE = 32
COLOURS = {"red": (220, 50, 40), "blue": (40, 80, 220)}
SHAPES = ("square", "ring", "cross")
PER_CLASS = 100  # 600 images: 540 to train on, 60 held out


def _shape_mask(shape: str, radius: int, centre: tuple[int, int]) -> np.ndarray:
    dy, dx = np.mgrid[:SIZE, :SIZE] - np.array(centre)[:, None, None]
    if shape == "square":
        return (abs(dy) <= radius) & (abs(dx) <= radius)
    if shape == "ring":
        return ((radius - 3) ** 2 <= dy**2 + dx**2) & (dy**2 + dx**2 <= radius**2)
    bar = radius // 3
    return ((abs(dy) <= bar) & (abs(dx) <= radius)) | ((abs(dx) <= bar) & (abs(dy) <= radius))


def coloured_shapes(seed: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(uint8 (6 * PER_CLASS, 32, 32, 3), labels, class names): each image one shape of
    random size, place and shade on noise, classes in sorted-name order."""
    rng = np.random.default_rng(seed)
    names = sorted(f"{colour}_{shape}" for colour in COLOURS for shape in SHAPES)
    images, labels = [], []
    for label, name in enumerate(names):
        colour, shape = name.split("_")
        for _ in range(PER_CLASS):
            image = rng.integers(0, 40, (SIZE, SIZE, 3))
            radius = int(rng.integers(7, 12))
            centre = tuple(rng.integers(radius, SIZE - radius, 2))
            shade = np.array(COLOURS[colour]) + rng.integers(-30, 31, 3)
            image[_shape_mask(shape, radius, centre)] = shade
            images.append(image.astype(np.uint8))
            labels.append(label)
    return np.stack(images), np.array(labels, np.int32), names


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory) -> str:
    """A data dir holding 'shapes' (labelled: class folders) and 'plain' (no labels),
    prepared once per session (shared by pytest-xdist workers)."""
    with built_once(tmp_path_factory, "domain_classifier_sets") as root:
        if root is not None:
            images, labels, names = coloured_shapes(seed=0)
            for index, (image, label) in enumerate(zip(images, labels, strict=True)):
                folder = root / "shapes" / names[label]
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(image).save(folder / f"{index:04d}.png")
            (root / "plain").mkdir()
            for index in range(3):
                Image.fromarray(images[index]).save(root / "plain" / f"{index}.png")
            for name in ("shapes", "plain"):
                image_folder.prepare(
                    str(root / "tfds"),
                    path=str(root / name),
                    name=name,
                    options=FitOptions(image_size=SIZE),
                    num_workers=1,
                )
    return str(shared_path(tmp_path_factory, "domain_classifier_sets") / "tfds")


# 192 steps of 32 on the 540 training images. Data seeds 0-3 x training seeds 0-1 on an
# AMD EPYC: held-out accuracy 0.967-1.0 (mean 0.988; 12 and 20 epochs alike).
SHORT = TrainingSettings(num_epochs=12, batch_size=32)


@pytest.fixture(scope="session")
def cache(tmp_path_factory, data_dir) -> str:
    """A user cache, with the classifier of 'shapes' trained into it by `classifier_for`."""
    with built_once(tmp_path_factory, "domain_classifier_cache") as cache_home:
        if cache_home is not None:
            with pytest.MonkeyPatch.context() as patch:
                patch.setenv("XDG_CACHE_HOME", str(cache_home))
                dc.classifier_for("shapes", data_dir, settings=SHORT)
    return str(shared_path(tmp_path_factory, "domain_classifier_cache"))


# --- The MNIST case ----------------------------------------------------------------------


class _OldMnistClassifier(nn.Module):
    """`MnistClassifier` as it was before the domain classifier (commit 8e56f3f)."""

    @nn.compact
    def __call__(self, x):
        x = _max_pool_2x2(nn.relu(Conv3x3(32)(x)))
        x = _max_pool_2x2(nn.relu(Conv3x3(64)(x)))
        features = nn.relu(nn.Dense(128)(x.reshape(x.shape[0], -1)))
        return features, nn.Dense(10)(features)


def _old_mnist_training(images, labels, *, seed, num_epochs, batch_size, learning_rate, shift):
    """The MNIST classifier's training as it was before the domain classifier (8e56f3f)."""
    model = _OldMnistClassifier()
    steps = images.shape[0] // batch_size
    tx = optax.adam(optax.cosine_decay_schedule(learning_rate, num_epochs * steps))
    init_key, shuffle_key = jax.random.split(jax.random.key(seed))
    params = model.init(init_key, jnp.zeros((1, 28, 28, 1), jnp.float32))["params"]

    def loss_and_correct(params, batch, labels):
        _, logits = model.apply({"params": params}, batch.astype(jnp.float32))
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
        return loss, jnp.sum(jnp.argmax(logits, axis=-1) == labels)

    def random_shift(key, batch):
        offsets = jax.random.randint(key, (batch.shape[0], 2), 0, 2 * shift + 1)
        padded = jnp.pad(batch, ((0, 0), (shift, shift), (shift, shift), (0, 0)))
        crop = lambda image, o: jax.lax.dynamic_slice(image, (o[0], o[1], 0), (28, 28, 1))
        return jax.vmap(crop)(padded, offsets)

    def epoch(state, images, labels, key):
        shuffle_key, shift_key = jax.random.split(key)
        order = jax.random.permutation(shuffle_key, images.shape[0])
        batches = order[: steps * batch_size].reshape(steps, batch_size)

        def step(state, xs):
            indices, key = xs
            params, opt_state = state
            grad_fn = jax.value_and_grad(loss_and_correct, has_aux=True)
            batch = random_shift(key, images[indices].astype(jnp.float32) / 255.0)
            (loss, correct), grads = grad_fn(params, batch, labels[indices])
            updates, opt_state = tx.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), (loss, correct)

        keys = jax.random.split(shift_key, steps)
        state, (losses, correct) = jax.lax.scan(step, state, (batches, keys))
        return state, {"loss": losses.mean(), "accuracy": correct.sum() / (steps * batch_size)}

    state = (params, tx.init(params))
    run_epoch = jax.jit(epoch, donate_argnums=0)
    for index in range(num_epochs):
        state, _ = run_epoch(state, images, labels, jax.random.fold_in(shuffle_key, index))
    return state[0]


@pytest.mark.slow
def test_28x28x1_with_10_classes_is_the_mnist_classifier_bit_for_bit():
    images, _, _ = coloured_shapes(seed=1)  # the first 256, as 28x28 grey, 10 labels
    images = images[:256, 2:30, 2:30].mean(axis=-1, keepdims=True).astype(np.uint8)
    labels = np.arange(len(images), dtype=np.int32) % 10
    settings = TrainingSettings(num_epochs=2, batch_size=64, learning_rate=2e-3)
    new = train_classifier(images, labels, 10, settings)
    old = _old_mnist_training(
        images, labels, seed=0, num_epochs=2, batch_size=64, learning_rate=2e-3, shift=1
    )
    assert jax.tree.structure(new) == jax.tree.structure(old)
    for a, b in zip(jax.tree.leaves(new), jax.tree.leaves(old), strict=True):
        np.testing.assert_array_equal(a, b)
    assert architecture_for((28, 28, 1), 10) == MNIST_ARCHITECTURE
    assert mnist_classifier.ARCHITECTURE == "conv32-pool-conv64-pool-dense128-dense10/v1"


# --- Other shapes ------------------------------------------------------------------------


def _param_count(architecture: Architecture) -> int:
    shapes = jax.eval_shape(functools.partial(init_params, architecture), jax.random.key(0))
    return sum(int(np.prod(leaf.shape)) for leaf in jax.tree.leaves(shapes))


def test_stages_widths_and_parameter_counts():
    sprites = architecture_for((64, 64, 3), 650)
    assert sprites.widths == (32, 64, 128) and sprites.feature_dim == 256
    assert sprites.tag == "conv32-pool-conv64-pool-conv128-pool-dense256-dense650/v1"
    # Convs 896 + 18,496 + 73,856; Dense 8*8*128 -> 256: 2,097,408; 256 -> 650: 167,050.
    assert _param_count(sprites) == 2_357_706
    assert _param_count(MNIST_ARCHITECTURE) == 421_642  # flax's MNIST CNN has 825,034
    sides = {8: 1, 9: 1, 16: 1, 17: 2, 28: 2, 32: 2, 33: 3, 64: 3, 96: 4, 256: 5}
    assert {side: num_stages((side, 1000, 3)) for side in sides} == sides


def test_odd_sides_are_pooled_with_a_short_last_window():
    x = jax.random.uniform(jax.random.key(0), (2, 7, 5, 3))  # >= 0, as after a ReLU
    expected = nn.max_pool(x, (2, 2), strides=(2, 2), padding=((0, 1), (0, 1)))
    np.testing.assert_array_equal(_max_pool_2x2(x), expected)
    # 17 x 23 -> 9 x 12 -> 5 x 6: two stages; any N (the last batch is padded).
    architecture = architecture_for((17, 23, 3), 4)
    # Random weights drawn in NumPy (any will do): Flax's init takes seconds here.
    shapes = jax.eval_shape(functools.partial(init_params, architecture), jax.random.key(0))
    rng = np.random.default_rng(0)
    params = jax.tree.map(lambda s: rng.normal(0, 0.05, s.shape).astype(np.float32), shapes)
    assert params["Dense_0"]["kernel"].shape == (5 * 6 * 64, 128)
    images = rng.integers(0, 256, (5, 17, 23, 3), dtype=np.uint8)
    features, logits = dc.classifier_outputs(params, images, batch_size=2)
    assert features.shape == (5, 128) and logits.shape == (5, 4)
    with pytest.raises(ValueError, match="do not fit this classifier"):
        dc.classifier_outputs(params, images[:, :16])


# --- A labelled set, end to end ----------------------------------------------------------


@pytest.mark.slow
def test_learns_coloured_shapes(cache, data_dir, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", cache)
    directory = dc.set_classifier_dir(labelled_set("shapes", data_dir))
    assert directory.startswith(os.path.join(cache, "gan_jax", "classifiers", "image_folder-"))
    with open(os.path.join(directory, "info.json")) as f:
        info = json.load(f)
    assert (info["image_shape"], info["num_classes"], info["feature_dim"]) == ([32, 32, 3], 6, 128)
    assert (info["num_train"], info["num_held_out"]) == (540, 60)
    # At most 2 of 60 wrong over 8 seeds (`SHORT`); the bound allows 9 (chance: 50).
    assert info["held_out_accuracy"] >= 0.85
    assert info["architecture"] == architecture_for((32, 32, 3), 6).tag


@pytest.mark.slow
def test_the_cached_classifier_is_loaded_not_retrained(cache, data_dir, monkeypatch, caplog):
    monkeypatch.setenv("XDG_CACHE_HOME", cache)
    monkeypatch.setattr(dc, "train_and_save", None)  # any training would fail
    params, info = dc.classifier_for("shapes", data_dir)
    assert "training one" not in caplog.text
    data = labelled_set("shapes", data_dir)
    assert info["data_digest"] == data.digest
    assert info["params_digest"] == state_digest(params)
    assert dc.accuracy(params, *data.held_out) == info["held_out_accuracy"]


def test_save_returns_the_info_that_load_reads(tmp_path):
    architecture = architecture_for((12, 12, 2), 3)
    params = init_params(architecture, jax.random.key(1))
    saved = save_classifier(str(tmp_path), architecture, params, {"held_out_accuracy": 0.5})
    restored, info = load_classifier(str(tmp_path), expected=architecture)
    assert info == saved and info["architecture"] == architecture.tag
    assert info["params_digest"] == state_digest(restored) == state_digest(params)


@pytest.mark.slow
def test_a_changed_set_gets_another_key_and_a_stale_classifier_is_refused(cache, data_dir):
    data = labelled_set("shapes", data_dir)
    images = data.train.images.copy()
    images[123, 4, 5, 0] ^= 1  # one bit of one pixel
    digest = data_digest(images, data.train.labels)
    assert digest != data.digest
    assert dataset_key(data.variant, digest) != dataset_key(data.variant, data.digest)
    relabelled = data_digest(data.train.images, np.roll(data.train.labels, 1))
    assert relabelled != data.digest
    directory = os.path.join(
        cache, "gan_jax", "classifiers", dataset_key(data.variant, data.digest)
    )
    with pytest.raises(NoClassifierError, match="trained on other data") as error:
        load_classifier(directory, data_digest=digest, dataset="shapes")
    assert "\n" not in str(error.value)
    other_shape = architecture_for((64, 64, 3), 6)
    with pytest.raises(NoClassifierError, match="retrain it with"):
        load_classifier(directory, expected=other_shape, dataset="shapes")


def test_a_set_without_labels_is_refused_in_one_line(data_dir, tmp_path):
    with pytest.raises(NoLabelsError) as error:
        dc.classifier_for("plain", data_dir)
    assert "\n" not in str(error.value) and "--inception_weights" in str(error.value)
    result = run(
        "gan_jax.metrics.train_classifier",
        "--dataset=plain",
        f"--data_dir={data_dir}",
        f"--out_dir={tmp_path}",
    )
    assert_one_line_error(result, "error: dataset 'plain' has no class labels")
    assert os.listdir(tmp_path) == []


def test_mnist_keeps_its_place(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_classifier_dir() == str(tmp_path / "gan_jax" / "mnist_classifier")
    assert mnist_classifier.default_classifier_dir() == default_classifier_dir()
    key = dataset_key("pokemon/sprites/1.1.0", "0123456789abcdef" * 4)
    assert key == "pokemon-sprites-1.1.0-0123456789abcdef"
    assert classifier_dir(key) == str(tmp_path / "gan_jax" / "classifiers" / key)


def test_flip_mirrors_about_half_of_the_images():
    images = jnp.arange(64 * 2 * 3, dtype=jnp.float32).reshape(64, 2, 3, 1)
    flipped = np.asarray(_random_flip(jax.random.key(0), images))
    mirrored = np.all(flipped == np.asarray(images)[:, :, ::-1], axis=(1, 2, 3))
    kept = np.all(flipped == np.asarray(images), axis=(1, 2, 3))
    assert np.all(mirrored ^ kept) and 16 <= mirrored.sum() <= 48


def test_split_held_out_takes_every_tenth():
    data = source.ArrayData(np.zeros((25, 2, 2, 1), np.uint8), np.arange(25, dtype=np.int32))
    train, held_out = split_held_out(data)
    assert held_out.labels.tolist() == [9, 19]
    assert len(train.labels) == 23 and not set(train.labels) & {9, 19}
