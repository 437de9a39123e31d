"""Scoring generators: the metrics that fit each data set, from a state or a checkpoint.

- 2-D Gaussian data: the Gaussian fitted to generated points, and its closed-form
  2-Wasserstein distance to the target.
- MNIST: on the features and logits of the in-project classifier
  (`gan_jax.metrics.mnist_classifier`): Fréchet distance to the real test set
  ("classifier FID"), inception score, the histogram of predicted digits and how
  many digits get at least 5% of samples; for a conditional GAN, the classifier's
  accuracy on the labels the samples were generated for.
- Any image set: Foster's memorisation check, the mean absolute pixel difference
  (L1) between generated images and their nearest training images.

Samples come from a fixed key, so a checkpoint always gets the same score. The
`python -m gan_jax.evaluate` command and the `--eval_every_epochs` training hook
both go through `Evaluator`.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import viz
from gan_jax.config import Config
from gan_jax.data import gaussian
from gan_jax.data.pipeline import load_training_data, unscale
from gan_jax.metrics import class_coverage, frechet, inception_score
from gan_jax.metrics.gaussian import fit_gaussian, wasserstein2_gaussian
from gan_jax.metrics.nearest_neighbour import nearest_neighbours_l1
from gan_jax.state import GAN, GANState, sample_latents


def generate_samples(
    gan: GAN,
    state: GANState,
    num_samples: int,
    key: jax.Array,
    labels: np.ndarray | None = None,
    batch_size: int = 5000,
) -> np.ndarray:
    """G's outputs (inference mode) for latents drawn with `key`, in batches."""
    z = sample_latents(key, num_samples, gan.config)
    batches = []
    for start in range(0, num_samples, batch_size):
        y = None if labels is None else jnp.asarray(labels[start : start + batch_size])
        batches.append(np.asarray(gan.jitted_generate(state, z[start : start + batch_size], y)))
    return np.concatenate(batches)


def balanced_labels(config: Config, num_samples: int) -> np.ndarray | None:
    """Class labels 0, 1, ..., K-1, 0, 1, ... for a conditional GAN; None otherwise."""
    if not config.num_classes:
        return None
    return (np.arange(num_samples) % config.num_classes).astype(np.int32)


def gaussian_fit(gan: GAN, state: GANState, num_samples: int, key: jax.Array) -> dict[str, Any]:
    """The Gaussian fitted to G's 2-D samples, the data's target, and the W2 between them."""
    samples = generate_samples(gan, state, num_samples, key)
    mean, cov = fit_gaussian(samples)
    target_mean, target_cov = gaussian.target_moments(
        **{k: v for k, v in gan.config.data.kwargs.items() if k in ("matrix", "offset")}
    )
    return {
        "mean": mean.tolist(),
        "cov": cov.tolist(),
        "target_mean": target_mean.tolist(),
        "target_cov": target_cov.tolist(),
        "w2": wasserstein2_gaussian(mean, cov, target_mean, target_cov),
        "num_samples": num_samples,
    }


def classifier_scores(
    classifier_params: Any,
    images: np.ndarray,
    reference_statistics: tuple[np.ndarray, np.ndarray],
    requested_labels: np.ndarray | None = None,
) -> dict[str, Any]:
    """MNIST-classifier metrics of images in [0, 1] against real-data feature statistics."""
    from gan_jax.metrics.mnist_classifier import classifier_outputs

    features, logits = classifier_outputs(classifier_params, images)
    mean, cov = frechet.feature_statistics(features)
    score, score_std = inception_score.inception_score(jax.nn.softmax(logits), num_splits=10)
    predicted = np.argmax(logits, axis=-1)
    histogram = class_coverage.class_histogram(predicted, logits.shape[-1])
    scores = {
        "fid": frechet.frechet_distance(mean, cov, *reference_statistics),
        "inception_score": score,
        "inception_score_std": score_std,
        "covered_classes": class_coverage.covered_classes(histogram),
        "class_histogram": histogram.round(4).tolist(),
    }
    if requested_labels is not None:
        scores["label_accuracy"] = class_coverage.label_accuracy(predicted, requested_labels)
    return scores


def save_nearest_pairs(
    path: str, queries: np.ndarray, neighbours: np.ndarray, num_cols: int = 16
) -> None:
    """A PNG of generated images (odd rows) above their nearest training images (even rows)."""
    rows = []
    for start in range(0, len(queries), num_cols):
        rows += [queries[start : start + num_cols], neighbours[start : start + num_cols]]
    viz.save_image_grid(path, np.concatenate(rows), min(num_cols, len(queries)))


class Evaluator:
    """Scores generators of one config; real-data references are loaded once, on first use.

    Args:
      config: the run's config (which data set, scaling, conditioning).
      num_samples: generated samples per score.
      seed: seed of the fixed sampling key.
      data_dir: TFDS data dir of the training data (None: TFDS's default).
      classifier_dir: the MNIST classifier (None: its default directory).
      memorisation_queries: generated images checked against the training set.
    """

    def __init__(
        self,
        config: Config,
        *,
        num_samples: int = 10_000,
        seed: int = 0,
        data_dir: str | None = None,
        classifier_dir: str | None = None,
        memorisation_queries: int = 64,
    ):
        self.config = config
        self.num_samples = num_samples
        self.key = jax.random.key(seed)
        self.data_dir = data_dir
        self.classifier_dir = classifier_dir
        self.memorisation_queries = memorisation_queries
        self._train_images: jax.Array | None = None
        self._reference: tuple[Any, tuple[np.ndarray, np.ndarray]] | None = None
        if config.data.name == "mnist":
            self._mnist_reference()  # fail now, not after training, without a classifier

    def _training_images(self) -> jax.Array:
        """The uint8 training images, on the device (read once)."""
        if self._train_images is None:
            data = load_training_data(self.config.data, self.config.seed)
            self._train_images = jax.device_put(data.examples)
        return self._train_images

    def _mnist_reference(self) -> tuple[Any, tuple[np.ndarray, np.ndarray]]:
        """The classifier and the feature statistics of MNIST's test split (computed once)."""
        if self._reference is None:
            from gan_jax.data import source
            from gan_jax.metrics.mnist_classifier import classifier_outputs, load_classifier

            params, _ = load_classifier(self.classifier_dir)
            test = source.load("mnist", "test", self.data_dir).images
            features, _ = classifier_outputs(params, test)
            self._reference = params, frechet.feature_statistics(features)
        return self._reference

    def images(self, gan: GAN, state: GANState, num_samples: int) -> np.ndarray:
        """Generated examples mapped to [0, 1] (points are returned as they are)."""
        labels = balanced_labels(gan.config, num_samples)
        samples = generate_samples(gan, state, num_samples, self.key, labels)
        if samples.ndim == 2:
            return samples
        return np.clip(np.asarray(unscale(samples, gan.config.data.scaling)), 0.0, 1.0)

    def nearest_neighbours(
        self, gan: GAN, state: GANState
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(generated images, their nearest training images, the L1 distances) in [0, 1]."""
        queries = self.images(gan, state, self.memorisation_queries)
        train = self._training_images()
        # Compared in the stored uint8 scale, so the training set is never copied as floats.
        distances, indices = nearest_neighbours_l1(jnp.asarray(queries * 255.0), train)
        neighbours = np.asarray(train[indices], np.float32) / 255.0
        return queries, neighbours, np.asarray(distances) / 255.0

    def memorisation(
        self, gan: GAN, state: GANState, pairs_path: str | None = None
    ) -> dict[str, float]:
        """Foster's check: mean and min L1 of generated images to their nearest training image.

        Writes the image pairs to `pairs_path` (a PNG) when one is given.
        """
        queries, neighbours, distances = self.nearest_neighbours(gan, state)
        if pairs_path:
            save_nearest_pairs(pairs_path, queries, neighbours)
        return {"nn_l1_mean": float(distances.mean()), "nn_l1_min": float(distances.min())}

    def __call__(self, gan: GAN, state: GANState, pairs_path: str | None = None) -> dict[str, Any]:
        """Every metric that fits the config's data set (see `memorisation` for `pairs_path`)."""
        if self.config.data.name == "gaussian_2d":
            return gaussian_fit(gan, state, self.num_samples, self.key)
        scores: dict[str, Any] = {}
        if self.config.data.name == "mnist":
            params, reference = self._mnist_reference()
            scores.update(
                classifier_scores(
                    params,
                    self.images(gan, state, self.num_samples),
                    reference,
                    balanced_labels(gan.config, self.num_samples),
                )
            )
        if self.memorisation_queries:
            scores.update(self.memorisation(gan, state, pairs_path))
        return scores

    def epoch_hook(self, every_epochs: int):
        """A `train_and_evaluate` epoch hook scoring every `every_epochs` epochs."""

        def hook(gan: GAN, state: GANState, epoch: int) -> dict[str, Any]:
            if epoch % every_epochs:
                return {}
            scores = self(gan, state)
            return {f"eval/{k}": v for k, v in scores.items() if isinstance(v, int | float)}

        return hook


def real_mnist_floor(
    *,
    data_dir: str | None = None,
    classifier_dir: str | None = None,
    memorisation_queries: int = 64,
    seed: int = 0,
) -> dict[str, Any]:
    """The scores of real MNIST: the best a generator can hope for.

    FID between the train (60k) and test (10k) features, and the test images' inception
    score, coverage and L1 distance to their nearest training images (`memorisation_queries`
    test images drawn with `seed`).
    """
    from gan_jax.data import source
    from gan_jax.metrics.mnist_classifier import classifier_outputs, load_classifier

    params, _ = load_classifier(classifier_dir)
    train = source.load("mnist", "train", data_dir)
    test = source.load("mnist", "test", data_dir)
    train_features, _ = classifier_outputs(params, train.images)
    scores = classifier_scores(
        params,
        test.images.astype(np.float32) / 255.0,
        frechet.feature_statistics(train_features),
        test.labels,
    )
    scores["fid_train_vs_test"] = scores.pop("fid")
    scores["label_accuracy_test"] = scores.pop("label_accuracy")
    if memorisation_queries:
        rows = jax.random.choice(
            jax.random.key(seed), len(test.images), (memorisation_queries,), replace=False
        )
        queries = jnp.asarray(test.images[np.asarray(rows)], jnp.float32)
        distances, _ = nearest_neighbours_l1(queries, jnp.asarray(train.images))
        scores["nn_l1_mean"] = float(distances.mean()) / 255.0
        scores["nn_l1_min"] = float(distances.min()) / 255.0
    return scores
