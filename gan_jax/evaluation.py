"""Scoring generators: the metrics that fit each data set, from a state or a checkpoint.

The metrics that fit a data set are those its entry in `gan_jax.data.catalog` names:

- 2-D Gaussian data: the Gaussian fitted to generated points, and its closed-form
  2-Wasserstein distance to the target.
- Image sets, in the features of the networks at hand (`gan_jax.metrics.feature_scores`):
  FID, KID, precision, recall, density, coverage and the inception score
  - in a classifier trained on the data set's own labels (MNIST's digits, the sprites'
    species, a user's class folders; `gan_jax.metrics.domain_classifier`), trained once
    and cached: these keep their plain names (`fid`, `precision`, ...), with the
    histogram of predicted classes, how many classes get half a fair share, and for a
    conditional GAN the accuracy on the labels the samples were generated for;
  - in the FID Inception-v3 (`gan_jax.metrics.inception`) when its weights are found:
    the same scores prefixed `inception_`, with `inception_is`, the Inception Score.
  A set without labels and without Inception weights gets one line saying which scores it
  lacks and how to get them.
- Any image set: Foster's memorisation check, the mean absolute pixel difference (L1)
  between generated images and their nearest training images.

Samples come from a fixed key, so a checkpoint always gets the same score. They are
generated `GENERATION_BATCH` at a time and fed to every feature network in the same pass,
into running sums and a bounded number of kept features, so memory does not grow with the
number of samples. A real set's statistics are computed once per network and cached under
the user cache (`real_features/`), keyed by the set, its images' digest and the network's
weights. The `python -m gan_jax.evaluate` command and the `--eval_every_epochs` training
hook both go through `Evaluator`.
"""

import os
from collections.abc import Iterator
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from absl import logging

from gan_jax import viz
from gan_jax.checkpoint import state_digest
from gan_jax.config import Config
from gan_jax.data import catalog, gaussian, source
from gan_jax.data.pipeline import load_training_data, scale, unscale
from gan_jax.metrics import domain_classifier, feature_scores, frechet, inception
from gan_jax.metrics.feature_scores import FeatureNetwork, FeaturePass, FeatureSet
from gan_jax.metrics.gaussian import wasserstein2_gaussian
from gan_jax.metrics.nearest_neighbour import nearest_neighbours_l1
from gan_jax.sampling import balanced_labels, generated_batches
from gan_jax.state import GAN, GANState
from gan_jax.user_cache import user_cache_dir

# A set needs this many labelled training images for a classifier of its own: fewer give
# scores that measure the classifier's noise more than the generator.
MIN_CLASSIFIER_IMAGES = 1000
# `inception_weights` that turns the Inception scores off.
NO_INCEPTION = "none"
# Inception images per call: about 1 GB of activations on the CPU.
_INCEPTION_BATCH = 50


def gaussian_scores(gan: GAN, state: GANState, num_samples: int, key: jax.Array) -> dict[str, Any]:
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


class FeatureSpace(NamedTuple):
    """A feature network, the prefix of its scores' names and its real set's features."""

    prefix: str
    network: FeatureNetwork
    real: FeatureSet


def reference_split(name: str, data_dir: str | None) -> str:
    """The split generated images are compared with: 'test' where the set has one (MNIST's
    10,000, as in the classifier FID of our README), else 'train'."""
    return "test" if "test" in source.split_names(name, data_dir) else "train"


def real_features(
    network: FeatureNetwork, name: str, data_dir: str | None, batch_size: int = 500
) -> FeatureSet:
    """The reference split's features in `network`, cached under the user cache."""
    split = reference_split(name, data_dir)
    images = source.load(name, split, data_dir).images
    cache = os.path.join(user_cache_dir(), "real_features")
    set_name = f"{source.variant_name(name, data_dir)}:{split}"
    return feature_scores.real_features(network, images, cache, set_name, batch_size)


def classifier_network(
    name: str, data_dir: str | None, classifier_dir: str | None = None
) -> FeatureNetwork | None:
    """The classifier of the set's own labels (trained first, once, if there is none), or
    None, with one line saying why, for a set without labels or with too few images."""
    try:
        labelled = domain_classifier.labelled_set(name, data_dir)
        if classifier_dir is None and len(labelled.train.images) < MIN_CLASSIFIER_IMAGES:
            logging.warning(
                "%s has %d labelled training images, fewer than the %d a classifier of "
                "its own needs: no scores in classifier features",
                name,
                len(labelled.train.images),
                MIN_CLASSIFIER_IMAGES,
            )
            return None
        params, _ = domain_classifier.classifier_for(
            name, data_dir, directory=classifier_dir, data=labelled
        )
    except domain_classifier.NoLabelsError as error:
        logging.warning("%s", error)
        return None
    return FeatureNetwork(
        f"{name} classifier",
        f"classifier-{state_digest(params)}",
        lambda images: domain_classifier.classifier_outputs(params, images),
    )


def inception_network(weights: str | None) -> FeatureNetwork | None:
    """The FID Inception, from `weights` (a path; None: wherever users keep them, see
    `inception.load_inception_variables`), or None when the user turned it off or no
    weights are found (said in one line)."""
    if weights == NO_INCEPTION:
        return None
    try:
        variables = inception.load_inception_variables(weights)
    except inception.NoInceptionWeightsError as error:
        if weights:
            raise  # named by the user: not a thing to skip quietly
        logging.warning("no scores in Inception's features: %s", error)
        return None
    apply = lambda images: inception.inception_outputs(variables, images)
    return FeatureNetwork(
        "inception",
        f"inception-{state_digest(variables)}",
        feature_scores.in_fixed_batches(apply, _INCEPTION_BATCH),
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
    fits = catalog.kind_of(config.data.name).scores
    return catalog.MEMORISATION in fits and memorisation_queries > 0


class Evaluator:
    """Scores generators of one config; the feature networks are found (and a missing
    classifier trained) on first use or by `feature_networks`, real-set statistics are
    computed on first use, and both are kept.

    Args:
      config: the run's config (which data set, scaling, conditioning).
      num_samples: generated samples per score.
      seed: seed of the fixed sampling key.
      data_dir: TFDS data dir of the training data (None: TFDS's default).
      classifier_dir: a classifier of the set's labels that the user named (None: the
        set's cached one, trained first if there is none).
      inception_weights: the FID Inception's weights file (None: wherever users keep them,
        skipped with one line if none are found; `NO_INCEPTION`: no Inception scores).
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
        inception_weights: str | None = None,
        memorisation_queries: int = 64,
    ):
        self.config = config
        # The score families that fit the data set (`catalog.GAUSSIAN_W2`, ...).
        self.fitting_scores = catalog.kind_of(config.data.name).scores
        self.num_samples = num_samples
        self.key = jax.random.key(seed)
        self.data_dir = data_dir
        self.memorisation_queries = memorisation_queries
        self.classifier_dir = classifier_dir
        self.inception_weights = inception_weights
        self._train_images: jax.Array | None = None
        self._networks: list[tuple[str, FeatureNetwork]] | None = None
        self._spaces: list[FeatureSpace] | None = None

    def feature_networks(self) -> list[tuple[str, FeatureNetwork]]:
        """(score-name prefix, network) of each feature network at hand, found once: a
        training run asks before it trains, so that a missing classifier is trained and
        bad weights are refused then, not after it."""
        if self._networks is None:
            self._networks = []
            name, fits = self.config.data.name, self.fitting_scores
            if catalog.CLASSIFIER in fits:  # None for a prepared set without labels
                classifier = classifier_network(name, self.data_dir, self.classifier_dir)
                if classifier is not None:
                    self._networks.append(("", classifier))
            elif catalog.INCEPTION in fits:  # an image set without labels: said in one line
                logging.warning(
                    "dataset %r has no class labels, so no scores in a classifier of its own",
                    name,
                )
            if catalog.INCEPTION in fits:
                found = inception_network(self.inception_weights)
                if found is not None:
                    self._networks.append(("inception_", found))
        return self._networks

    def _training_images(self) -> jax.Array:
        """The uint8 training images, on the device (read once)."""
        if self._train_images is None:
            data = load_training_data(self.config.data, self.config.seed)
            self._train_images = jax.device_put(data.examples)
        return self._train_images

    def feature_spaces(self) -> list[FeatureSpace]:
        """Each feature network with its real set's features (computed once)."""
        if self._spaces is None:
            name = self.config.data.name
            self._spaces = [
                FeatureSpace(prefix, network, real_features(network, name, self.data_dir))
                for prefix, network in self.feature_networks()
            ]
        return self._spaces

    def feature_scores(self, gan: GAN, state: GANState) -> dict[str, Any]:
        """Every feature network's scores of `num_samples` generated images, from one pass
        of generation (see the module docstring for the names)."""
        spaces = self.feature_spaces()
        if not spaces:
            return {}
        passes = [FeaturePass(self.num_samples) for _ in spaces]
        correct = labelled = 0
        names = " and ".join(space.network.name for space in spaces)
        progress = tqdm.tqdm(
            total=self.num_samples, unit="sample", desc=f"scoring in {names}", disable=None
        )
        for images, requested in self.image_batches(gan, state, self.num_samples):
            for space, accumulated in zip(spaces, passes, strict=True):
                predicted = accumulated.add(*space.network.outputs(images))
                if space.prefix == "" and requested is not None:
                    correct += int(np.sum(predicted == requested))
                    labelled += len(requested)
            progress.update(len(images))
        progress.close()
        scores: dict[str, Any] = {}
        for space, accumulated in zip(spaces, passes, strict=True):
            compared = feature_scores.compare(space.real, accumulated.features())
            classes = accumulated.class_scores()
            if space.prefix:  # ImageNet's 1008 classes: only the Inception Score means much
                classes = {
                    "is": classes["inception_score"],
                    "is_std": classes["inception_score_std"],
                }
            scores.update({space.prefix + k: v for k, v in {**compared, **classes}.items()})
        if labelled:
            scores["label_accuracy"] = correct / labelled
        return scores

    def ranking_score_name(self) -> str | None:
        """The name of the score a sweep ranks by and a searching sweep's rungs decide by
        (`sweep_summary.PRIMARY_SCORES`' order): Inception FID when its weights are at
        hand, else the FID in the set's own classifier's features, else the Gaussian's W2;
        None when the set has none of them."""
        prefixes = [prefix for prefix, _ in self.feature_networks()]
        for prefix in ("inception_", ""):
            if prefix in prefixes:
                return f"{prefix}fid"
        return "w2" if catalog.GAUSSIAN_W2 in self.fitting_scores else None

    def ranking_score(self, gan: GAN, state: GANState, num_samples: int) -> float:
        """`ranking_score_name`'s value for `num_samples` generated examples: that score
        alone (FID from the features' running moments, none kept), so a rung is cheap."""
        name = self.ranking_score_name()
        if name == "w2":
            return float(gaussian_scores(gan, state, num_samples, self.key)["w2"])
        if name is None:
            raise ValueError(f"no score ranks runs on {self.config.data.name!r}")
        prefix = name[: -len("fid")]
        (space,) = [space for space in self.feature_spaces() if space.prefix == prefix]
        accumulated = FeaturePass(num_samples, keep=0)
        for images, _ in self.image_batches(gan, state, num_samples):
            accumulated.add(*space.network.outputs(images))
        generated = accumulated.features()
        real = space.real
        return float(frechet.frechet_distance(generated.mean, generated.cov, real.mean, real.cov))

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
        scores = {}
        if catalog.GAUSSIAN_W2 in self.fitting_scores:
            scores.update(gaussian_scores(gan, state, self.num_samples, self.key))
        scores.update(self.feature_scores(gan, state))
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

    The test images (10k) scored as a generator's samples are, against the training
    images (60k) in the classifier's features: `fid_train_vs_test`, KID, precision,
    recall, density, coverage, the inception score and class coverage, the classifier's
    test accuracy, and the L1 distance of `memorisation_queries` test images (drawn with
    `seed`) to their nearest training images.
    """
    network = classifier_network("mnist", data_dir, classifier_dir)
    train = source.load("mnist", "train", data_dir)
    test = source.load("mnist", "test", data_dir)
    reference = feature_scores.feature_pass(network, [scale(train.images, "zero_one")], 60_000)
    tested = FeaturePass(len(test.images))
    predicted = tested.add(*network.outputs(np.asarray(scale(test.images, "zero_one"))))
    scores = {**feature_scores.compare(reference.features(), tested.features())}
    scores["fid_train_vs_test"] = scores.pop("fid")
    scores.update(tested.class_scores())
    scores["label_accuracy_test"] = float(np.mean(predicted == test.labels))
    if memorisation_queries:
        rows = jax.random.choice(
            jax.random.key(seed), len(test.images), (memorisation_queries,), replace=False
        )
        queries = jnp.asarray(test.images[np.asarray(rows)], jnp.float32)
        distances, _ = nearest_neighbours_l1(queries, jnp.asarray(train.images))
        scores["nn_l1_mean"] = float(distances.mean()) / 255.0
        scores["nn_l1_min"] = float(distances.min()) / 255.0
    return scores
