"""Streamed scoring equals the one-array formulas, and output paths are checked up front."""

import jax
import numpy as np
import pytest
from testing_configs import gaussian_config

from gan_jax import evaluation, sampling, workdir
from gan_jax.errors import UserError
from gan_jax.metrics import frechet, inception_score
from gan_jax.state import build_gan, create_state, sample_latents


def _batches(n: int, sizes: list[int]) -> list[tuple[int, int]]:
    """(start, stop) of consecutive batches of the given sizes, cycling, covering [0, n)."""
    bounds, start, i = [], 0, 0
    while start < n:
        stop = min(n, start + sizes[i % len(sizes)])
        bounds.append((start, stop))
        start, i = stop, i + 1
    return bounds


def test_streamed_moments_equal_feature_statistics():
    rng = np.random.default_rng(0)
    # A mean far from zero next to the spread: raw sums of x x^T would lose digits here.
    features = (rng.normal(size=(1037, 16)) * 0.1 + 50.0).astype(np.float32)
    moments = None
    for start, stop in _batches(len(features), [1, 97, 400, 2]):
        moments = frechet.merge_moments(moments, frechet.batch_moments(features[start:stop]))
    mean, cov = frechet.moments_statistics(moments)
    expected_mean, expected_cov = frechet.feature_statistics(features)
    assert moments.count == len(features)
    np.testing.assert_allclose(mean, expected_mean, rtol=1e-13)
    np.testing.assert_allclose(cov, expected_cov, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(cov, np.cov(features.astype(np.float64), rowvar=False), rtol=1e-9)


@pytest.mark.parametrize("num_rows", [1037, 10, 23])
def test_streamed_inception_score_equals_splits_formula(num_rows):
    rng = np.random.default_rng(1)
    probs = np.array(jax.nn.softmax(rng.normal(size=(num_rows, 10)) * 3, axis=-1), np.float32)
    probs[3] = 0.0  # a one-hot row: exact zeros count as 0 log 0 = 0
    probs[3, 2] = 1.0
    sums = inception_score.empty_split_sums(num_rows, 10, num_splits=10)
    # Batches that straddle split boundaries, added out of order.
    for start, stop in reversed(_batches(num_rows, [97, 3, 250])):
        sums = inception_score.add_to_splits(sums, probs[start:stop], start)
    score, std = inception_score.inception_score_from_sums(sums)
    expected_score, expected_std = inception_score.inception_score(probs, num_splits=10)
    assert score == pytest.approx(expected_score, rel=1e-5)
    assert std == pytest.approx(expected_std, rel=1e-3, abs=1e-6)


def test_inception_sums_refuse_missing_rows():
    sums = inception_score.empty_split_sums(20, 3, num_splits=2)
    sums = inception_score.add_to_splits(sums, np.full((15, 3), 1 / 3), 0)
    with pytest.raises(ValueError, match="rows per split"):
        inception_score.inception_score_from_sums(sums)


def test_latents_are_one_draw_up_to_a_chunk():
    config = gaussian_config()
    key = jax.random.key(3)
    n = sampling.LATENT_CHUNK
    batches = list(sampling.latent_batches(key, n, config, batch_size=30_000))
    assert [start for start, _ in batches] == [0, 30_000, 60_000, 90_000]
    z = np.concatenate([z for _, z in batches])
    np.testing.assert_array_equal(z, sample_latents(key, n, config))
    # Past a chunk, each chunk is its own draw: bounded memory for any count.
    more = list(sampling.latent_batches(key, n + 5, config))
    np.testing.assert_array_equal(
        more[-1][1], sample_latents(jax.random.fold_in(key, 1), 5, config)
    )


@pytest.mark.slow
def test_streamed_gaussian_fit_equals_one_array_fit():
    config = gaussian_config()
    gan = build_gan(config)
    state = create_state(gan, 0)
    key = jax.random.key(4)
    n = sampling.LATENT_CHUNK + 345  # two latent chunks, 21 generator calls
    fit = evaluation.gaussian_scores(gan, state, n, key)
    samples = np.concatenate([x for _, x in sampling.generated_batches(gan, state, n, key)])
    mean, cov = frechet.feature_statistics(samples)
    assert fit["num_samples"] == n
    np.testing.assert_allclose(fit["mean"], mean, rtol=1e-12)
    np.testing.assert_allclose(fit["cov"], cov, rtol=1e-9)


def test_ensure_writable(tmp_path):
    regular = tmp_path / "file.txt"
    regular.write_text("keep")
    # Tests may run as root, which permission bits do not stop: only these paths fail.
    for bad, reason in [
        (regular / "x.json", "is a file, not a directory"),
        (regular / "a" / "b.json", "is a file, not a directory"),
        (tmp_path, "it is a directory"),
    ]:
        with pytest.raises(UserError, match=reason) as error:
            workdir.ensure_writable(str(bad), " (use --out)")
        assert "\n" not in str(error.value) and str(error.value).endswith("(use --out)")
    nested = tmp_path / "new" / "dirs" / "out.json"
    workdir.ensure_writable(str(nested))
    assert nested.parent.is_dir() and not nested.exists()  # no empty file left behind
    workdir.ensure_writable(str(regular))
    assert regular.read_text() == "keep"
