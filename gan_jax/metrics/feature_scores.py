"""One pass of an image set through a feature network, and every score from its features.

A feature network maps images in [0, 1] to (features, logits): Inception-v3's pool3 and
1008 logits (`gan_jax.metrics.inception`), or a domain classifier's penultimate layer and
class logits (`gan_jax.metrics.domain_classifier`). From one pass over the generated images
and one over the real set, in that network's features:

- FID: the Fréchet distance between Gaussians fitted to the two sets (`frechet`), from
  moments accumulated over every image;
- KID: the unbiased polynomial-kernel MMD over random subsets, mean and std, as
  torch-fidelity computes it (`kid`);
- precision and recall (Kynkäänniemi et al. 2019, k = 3) and density and coverage (Naeem
  et al. 2020, k = 5), as the `prdc` package computes them (`prdc`);
- the inception score from the logits' softmax (`inception_score`, 10 splits), the
  histogram of predicted classes and how many classes get at least half a fair share.

Memory: images are never held (they come in batches); FID and IS keep running sums
(O(D^2) and O(K)); KID and the k-NN scores need feature vectors, so the first
`KEEP_FEATURES` rows of each set are kept (10,000 x 2048 float32 = 80 MB for Inception),
and those scores use at most that many samples, whatever `--num_samples` is (StudioGAN
computes its precision, recall, density and coverage on 10,000 too).
"""

import hashlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any, NamedTuple

import numpy as np
import tqdm
from absl import logging

from gan_jax.metrics import class_coverage, frechet, inception_score, kid, prdc
from gan_jax.npz_files import save_npz

# Rows of each set kept for KID and the k-NN scores.
KEEP_FEATURES = 10_000
PRECISION_RECALL_K = 3
DENSITY_COVERAGE_K = 5
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
# Splits of the inception score, as in Salimans et al.'s reference code.
INCEPTION_SPLITS = 10


class FeatureNetwork(NamedTuple):
    """A network whose features the scores are computed in.

    Attributes:
      name: what the scores' report calls it, e.g. 'inception' or 'pokemon classifier'.
      tag: names the architecture and the weights (a digest), so that cached real-set
        statistics of other weights are never reused.
      outputs: images (B, H, W, C) float in [0, 1] -> (features (B, D), logits (B, K)),
        NumPy or JAX arrays.
    """

    name: str
    tag: str
    outputs: Callable[[np.ndarray], tuple[Any, Any]]


class FeatureSet(NamedTuple):
    """What the scores need of one image set's features.

    Attributes:
      count: images seen.
      mean: (D,) float64 mean of all their features.
      cov: (D, D) float64 unbiased covariance of all their features.
      kept: (min(count, keep), D) float32, the features of the first `keep` images.
    """

    count: int
    mean: np.ndarray
    cov: np.ndarray
    kept: np.ndarray


class FeaturePass:
    """Accumulates one image set's features batch by batch, in bounded memory.

    Args:
      num_images: how many images will be added in all (the inception score's splits
        are cut from that count, as `inception_score` cuts them).
      keep: how many feature rows to keep for KID and the k-NN scores.
      keep_rows: instead of the first `keep` images, keep the images of these indices
        (a fixed random choice from a real set stored in class order).
    """

    def __init__(
        self, num_images: int, keep: int = KEEP_FEATURES, keep_rows: np.ndarray | None = None
    ):
        self.num_images = num_images
        self.seen = 0
        self._moments: frechet.Moments | None = None
        self._kept: list[np.ndarray] = []
        self._keep_mask = np.zeros(num_images, bool)
        if keep_rows is None:
            self._keep_mask[: min(keep, num_images)] = True
        else:
            self._keep_mask[keep_rows] = True
        self._splits: inception_score.SplitSums | None = None
        self._class_counts: np.ndarray | None = None

    def add(self, features: Any, logits: Any) -> np.ndarray:
        """Adds the next batch's outputs; returns its predicted classes."""
        features = np.asarray(features, np.float32)
        logits = np.asarray(logits, np.float64)
        stop = self.seen + len(features)
        if stop > self.num_images:
            raise ValueError(f"{stop} images added to a pass of {self.num_images}")
        self._moments = frechet.merge_moments(self._moments, frechet.batch_moments(features))
        self._kept.append(features[self._keep_mask[self.seen : stop]])
        if self._splits is None:
            splits = min(INCEPTION_SPLITS, self.num_images)
            self._splits = inception_score.empty_split_sums(
                self.num_images, logits.shape[1], splits
            )
            self._class_counts = np.zeros(logits.shape[1], np.int64)
        probs = np.exp(logits - logits.max(axis=1, keepdims=True))
        probs /= probs.sum(axis=1, keepdims=True)
        self._splits = inception_score.add_to_splits(self._splits, probs, self.seen)
        predicted = np.argmax(logits, axis=1)
        self._class_counts += np.bincount(predicted, minlength=len(self._class_counts))
        self.seen = stop
        return predicted

    def features(self) -> FeatureSet:
        """The set's statistics and kept rows, once every image has been added."""
        if self.seen != self.num_images:
            raise ValueError(f"{self.seen} of {self.num_images} images added")
        mean, cov = frechet.moments_statistics(self._moments)
        return FeatureSet(self.seen, mean, cov, np.concatenate(self._kept))

    def class_scores(self) -> dict[str, Any]:
        """The inception score (mean, std over splits) from the logits' softmax, the
        histogram of predicted classes and the classes holding half a fair share or more."""
        score, score_std = inception_score.inception_score_from_sums(self._splits)
        histogram = self._class_counts / self.seen
        fair_half = 0.5 / len(histogram)  # 0.05 for MNIST's 10 digits
        return {
            "inception_score": score,
            "inception_score_std": score_std,
            "covered_classes": class_coverage.covered_classes(histogram, fair_half),
            "class_histogram": histogram.round(4).tolist(),
        }


def feature_pass(
    network: FeatureNetwork,
    batches: Iterable[np.ndarray],
    num_images: int,
    keep: int = KEEP_FEATURES,
    keep_rows: np.ndarray | None = None,
) -> FeaturePass:
    """`network`'s features of image batches in [0, 1], accumulated into a `FeaturePass`."""
    accumulated = FeaturePass(num_images, keep, keep_rows)
    for images in batches:
        accumulated.add(*network.outputs(images))
    return accumulated


def compare(real: FeatureSet, generated: FeatureSet) -> dict[str, float]:
    """FID, KID (mean and std), precision, recall, density and coverage of `generated`
    against `real`.

    KID's subsets hold `KID_SUBSET_SIZE` rows, or all the kept rows of the smaller set
    when it has fewer (torch-fidelity refuses such sets instead); they are drawn as
    torch-fidelity draws them, from its fixed seed, so a score is a pure function of the
    two feature sets.
    """
    subset_size = min(KID_SUBSET_SIZE, len(real.kept), len(generated.kept))
    kid_mean, kid_std = kid.kernel_inception_distance(
        real.kept, generated.kept, num_subsets=KID_SUBSETS, subset_size=subset_size
    )
    neighbourhoods = prdc.precision_recall_density_coverage(
        real.kept, generated.kept, (PRECISION_RECALL_K, DENSITY_COVERAGE_K)
    )
    precision_recall = neighbourhoods[PRECISION_RECALL_K]
    density_coverage = neighbourhoods[DENSITY_COVERAGE_K]
    return {
        "fid": frechet.frechet_distance(generated.mean, generated.cov, real.mean, real.cov),
        "kid": kid_mean,
        "kid_std": kid_std,
        "precision": precision_recall.precision,
        "recall": precision_recall.recall,
        "density": density_coverage.density,
        "coverage": density_coverage.coverage,
    }


def in_fixed_batches(
    outputs: Callable[[np.ndarray], tuple[Any, Any]], batch_size: int
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    """`outputs` applied to any number of images, `batch_size` at a time, the last batch
    padded to full size: a jitted network then compiles for one shape only."""

    def apply(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        features, logits = [], []
        for start in range(0, len(images), batch_size):
            batch = np.asarray(images[start : start + batch_size], np.float32)
            count = len(batch)
            if count < batch_size:
                padding = np.zeros((batch_size - count, *batch.shape[1:]), batch.dtype)
                batch = np.concatenate([batch, padding])
            batch_features, batch_logits = outputs(batch)
            features.append(np.asarray(batch_features)[:count])
            logits.append(np.asarray(batch_logits)[:count])
        return np.concatenate(features), np.concatenate(logits)

    return apply


def images_digest(images: np.ndarray) -> str:
    """A digest of a uint8 image array's shape and pixels (about 1 s a GB)."""
    digest = hashlib.blake2b(repr(images.shape).encode(), digest_size=16)
    for start in range(0, len(images), 4096):  # a memory-mapped set is read in pieces
        digest.update(np.ascontiguousarray(images[start : start + 4096]).data)
    return digest.hexdigest()


def _unit_batches(images: np.ndarray, batch_size: int, description: str) -> Iterator[np.ndarray]:
    """uint8 images as float32 batches in [0, 1], with a progress bar on a terminal."""
    with tqdm.tqdm(total=len(images), unit="image", desc=description, disable=None) as bar:
        for start in range(0, len(images), batch_size):
            batch = images[start : start + batch_size]
            yield np.asarray(batch, np.float32) / 255.0
            bar.update(len(batch))


def real_features(
    network: FeatureNetwork,
    images: np.ndarray,
    cache_dir: str,
    set_name: str,
    batch_size: int = 500,
    keep: int = KEEP_FEATURES,
) -> FeatureSet:
    """A real set's `FeatureSet` in `network`'s features, computed once and cached.

    The cache file is named by the set, the image shape and the network's tag, and holds
    the images' digest: a set that changed (re-prepared, other images under the same
    name) is computed again, never scored against stale statistics. The kept rows are a
    fixed random choice (seed 0), since stored sets are often in class order.

    Args:
      network: the feature network.
      images: uint8 (N, H, W, C), the whole split.
      cache_dir: where the statistics are kept.
      set_name: names the data set and split, e.g. 'pokemon/sprites/1.1.0:train'.
      batch_size: images per network call.
      keep: feature rows kept for KID and the k-NN scores.
    """
    shape = "x".join(map(str, images.shape[1:]))
    stem = re.sub(r"[^\w.+-]+", "_", f"{set_name}-{shape}-{network.tag}")
    path = os.path.join(cache_dir, stem + ".npz")
    digest = images_digest(images)
    try:
        with np.load(path) as cached:
            if str(cached["digest"]) == digest and int(cached["keep"]) == keep:
                return FeatureSet(
                    int(cached["count"]), cached["mean"], cached["cov"], cached["kept"]
                )
            logging.warning("%s holds statistics of other images: computing them again", path)
    except (OSError, KeyError, ValueError):
        pass  # none yet, or unreadable: computed below
    count = len(images)
    keep_rows = np.sort(np.random.default_rng(0).permutation(count)[:keep])
    batches = _unit_batches(images, batch_size, f"{network.name} features of {set_name}")
    features = feature_pass(network, batches, count, keep, keep_rows).features()
    os.makedirs(cache_dir, exist_ok=True)
    save_npz(
        path,
        digest=np.asarray(digest),
        keep=np.asarray(keep),
        count=np.asarray(features.count),
        mean=features.mean,
        cov=features.cov,
        kept=features.kept,
    )
    return features
