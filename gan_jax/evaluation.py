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

Samples come from a fixed key, so a checkpoint always gets the same score. They are
generated and scored `GENERATION_BATCH` at a time into running sums (feature moments,
per-split inception sums, class counts), so memory does not grow with the number of
samples. The `python -m gan_jax.evaluate` command and the `--eval_every_epochs` training
hook both go through `Evaluator`.
"""

from collections.abc import Iterable, Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from gan_jax import viz
from gan_jax.config import Config
from gan_jax.data import gaussian, source
from gan_jax.data.pipeline import load_training_data, scale, unscale
from gan_jax.metrics import class_coverage, frechet, inception_score, mnist_classifier
from gan_jax.metrics.gaussian import wasserstein2_gaussian
from gan_jax.metrics.mnist_classifier import (
    NUM_CLASSES,
    NoClassifierError,
    classifier_outputs,
    default_classifier_dir,
    has_classifier,
    load_classifier,
)
from gan_jax.metrics.nearest_neighbour import nearest_neighbours_l1
from gan_jax.sampling import balanced_labels, generated_batches
from gan_jax.state import GAN, GANState

# Splits of the inception score, as in Salimans et al.'s reference code.
INCEPTION_SPLITS = 10


def gaussian_fit(gan: GAN, state: GANState, num_samples: int, key: jax.Array) -> dict[str, Any]:
    """The Gaussian fitted to G's 2-D samples, the data's target, and the W2 between them.

    The fit is accumulated batch by batch (`frechet.Moments`): memory is independent of
    `num_samples`.
    """
    moments = None
    for _, points in generated_batches(gan, state, num_samples, key):
        moments = frechet.merge_moments(moments, frechet.batch_moments(points))
    mean, cov = frechet.moments_statistics(moments)
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


def streamed_classifier_scores(
    classifier_params: Any,
    batches: Iterable[tuple[np.ndarray, np.ndarray | None]],
    num_samples: int,
    reference_statistics: tuple[np.ndarray, np.ndarray],
) -> dict[str, Any]:
    """MNIST-classifier metrics of image batches in [0, 1], in memory independent of the count.

    Each batch only updates running sums: the features' `frechet.Moments`, the inception
    score's per-split sums (its 10 splits cut the whole sequence, as `inception_score` does),
    the predicted-class counts and the number of correctly classified requested labels.

    Args:
      classifier_params: the MNIST classifier.
      batches: (images, requested labels or None) in sample order, `num_samples` images in all.
      num_samples: the total number of images.
      reference_statistics: (mean, cov) of the real data's features.

    Returns:
      fid, inception_score(_std), covered_classes, class_histogram, and label_accuracy when
      the batches carry requested labels.
    """
    moments = None
    splits = inception_score.empty_split_sums(
        num_samples, NUM_CLASSES, min(INCEPTION_SPLITS, num_samples)
    )
    class_counts = np.zeros(NUM_CLASSES, np.int64)
    correct, labelled, start = 0, 0, 0
    for images, requested in batches:
        features, logits = classifier_outputs(classifier_params, images)
        moments = frechet.merge_moments(moments, frechet.batch_moments(features))
        splits = inception_score.add_to_splits(splits, jax.nn.softmax(logits), start)
        predicted = np.argmax(logits, axis=-1)
        class_counts += np.bincount(predicted, minlength=NUM_CLASSES)
        if requested is not None:
            correct += int(np.sum(predicted == requested))
            labelled += len(requested)
        start += len(images)
    score, score_std = inception_score.inception_score_from_sums(splits)
    histogram = class_counts / start
    scores = {
        "fid": frechet.frechet_distance(
            *frechet.moments_statistics(moments), *reference_statistics
        ),
        "inception_score": score,
        "inception_score_std": score_std,
        "covered_classes": class_coverage.covered_classes(histogram),
        "class_histogram": histogram.round(4).tolist(),
    }
    if labelled:
        scores["label_accuracy"] = correct / labelled
    return scores


def classifier_scores(
    classifier_params: Any,
    images: np.ndarray,
    reference_statistics: tuple[np.ndarray, np.ndarray],
    requested_labels: np.ndarray | None = None,
) -> dict[str, Any]:
    """MNIST-classifier metrics of images in [0, 1] against real-data feature statistics."""
    return streamed_classifier_scores(
        classifier_params, [(images, requested_labels)], len(images), reference_statistics
    )


def save_nearest_pairs(
    path: str, queries: np.ndarray, neighbours: np.ndarray, num_cols: int = 16
) -> None:
    """A PNG of generated images (odd rows) above their nearest training images (even rows)."""
    rows = []
    for start in range(0, len(queries), num_cols):
        rows += [queries[start : start + num_cols], neighbours[start : start + num_cols]]
    viz.save_image_grid(path, np.concatenate(rows), min(num_cols, len(queries)))


def checks_memorisation(config: Config, memorisation_queries: int) -> bool:
    """Whether an `Evaluator` of `config` runs the nearest-neighbour check (images only)."""
    return config.data.name != "gaussian_2d" and memorisation_queries > 0


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
            test = source.load("mnist", "test", self.data_dir)
            params = self._classifier(test)
            features, _ = classifier_outputs(params, test.images)
            self._reference = params, frechet.feature_statistics(features)
        return self._reference

    def _classifier(self, test: source.ArrayData) -> Any:
        """The MNIST classifier's parameters; trained first (once) if the default place
        holds none. A directory the user named must hold one: no 7-minute surprise there."""
        try:
            return load_classifier(self.classifier_dir)[0]
        except NoClassifierError:
            if self.classifier_dir is not None or has_classifier(default_classifier_dir()):
                raise  # named by the user, or one of another architecture: say so
        directory = default_classifier_dir()
        settings = mnist_classifier.DEFAULT_TRAINING
        logging.warning(
            "no MNIST classifier yet: training one for the scores (%d epochs, about 4-7 "
            "minutes on 2 CPU cores, once); it is kept in %s",
            settings.num_epochs,
            directory,
        )
        train = source.load("mnist", "train", self.data_dir)
        params, info = mnist_classifier.train_and_save(
            directory, (train.images, train.labels), (test.images, test.labels), settings
        )
        logging.warning(
            "MNIST classifier trained: test accuracy %.4f; kept in %s",
            info["test_accuracy"],
            directory,
        )
        return params

    def image_batches(
        self, gan: GAN, state: GANState, num_samples: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray | None]]:
        """(examples mapped to [0, 1], requested labels or None) in `GENERATION_BATCH`es.

        Conditional GANs get `balanced_labels`; 2-D points are yielded as they are.
        """
        config = gan.config
        labels_of = lambda start, n: balanced_labels(config, n, start)  # None: unconditional
        for start, samples in generated_batches(gan, state, num_samples, self.key, labels_of):
            labels = balanced_labels(config, len(samples), start)
            if samples.ndim == 2:
                yield samples, labels
            else:
                unit = np.asarray(unscale(samples, config.data.scaling))
                yield np.clip(unit, 0.0, 1.0), labels

    def images(self, gan: GAN, state: GANState, num_samples: int) -> np.ndarray:
        """Generated examples mapped to [0, 1] (points are returned as they are), in one array."""
        return np.concatenate([x for x, _ in self.image_batches(gan, state, num_samples)])

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

    @property
    def checks_memorisation(self) -> bool:
        """Whether scores include the nearest-neighbour check (and so have image pairs)."""
        return checks_memorisation(self.config, self.memorisation_queries)

    def memorisation_and_pairs(
        self, gan: GAN, state: GANState
    ) -> tuple[dict[str, float], tuple[np.ndarray, np.ndarray]]:
        """Foster's check, mean and min L1 of generated images to their nearest training
        image, and the (generated, nearest) image pairs for `save_nearest_pairs`."""
        queries, neighbours, distances = self.nearest_neighbours(gan, state)
        scores = {"nn_l1_mean": float(distances.mean()), "nn_l1_min": float(distances.min())}
        return scores, (queries, neighbours)

    def memorisation(
        self, gan: GAN, state: GANState, pairs_path: str | None = None
    ) -> dict[str, float]:
        """Foster's check (see `memorisation_and_pairs`); the pairs go to `pairs_path` if given."""
        scores, pairs = self.memorisation_and_pairs(gan, state)
        if pairs_path:
            save_nearest_pairs(pairs_path, *pairs)
        return scores

    def scores_and_pairs(
        self, gan: GAN, state: GANState
    ) -> tuple[dict[str, Any], tuple[np.ndarray, np.ndarray] | None]:
        """Every metric that fits the config's data set, and the memorisation check's image
        pairs (None without that check), so that a caller can report the scores first."""
        if self.config.data.name == "gaussian_2d":
            return gaussian_fit(gan, state, self.num_samples, self.key), None
        scores: dict[str, Any] = {}
        if self.config.data.name == "mnist":
            params, reference = self._mnist_reference()
            batches = self.image_batches(gan, state, self.num_samples)
            scores.update(streamed_classifier_scores(params, batches, self.num_samples, reference))
        pairs = None
        if self.checks_memorisation:
            memorisation, pairs = self.memorisation_and_pairs(gan, state)
            scores.update(memorisation)
        return scores, pairs

    def __call__(self, gan: GAN, state: GANState, pairs_path: str | None = None) -> dict[str, Any]:
        """Every metric that fits the config's data set; image pairs go to `pairs_path`."""
        scores, pairs = self.scores_and_pairs(gan, state)
        if pairs_path and pairs is not None:
            save_nearest_pairs(pairs_path, *pairs)
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
    params, _ = load_classifier(classifier_dir)
    train = source.load("mnist", "train", data_dir)
    test = source.load("mnist", "test", data_dir)
    train_features, _ = classifier_outputs(params, train.images)
    scores = classifier_scores(
        params,
        np.asarray(scale(test.images, "zero_one")),
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
