"""Tests for gan_jax.metrics.prdc, against the `prdc` 0.2 package where it is installed."""

import contextlib
import io

import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.metrics import prdc


def _gaussian_sets(seed: int, n: int, m: int, dim: int, scale: float, shift: float):
    """Correlated float32 Gaussians; the fakes are scaled and shifted."""
    rng = np.random.default_rng(seed)
    mixing = rng.normal(size=(dim, dim)) / np.sqrt(dim)
    real = rng.normal(size=(n, dim)) @ mixing
    fake = (scale * rng.normal(size=(m, dim)) + shift) @ mixing
    return real.astype(np.float32), fake.astype(np.float32)


def _reference(real: np.ndarray, fake: np.ndarray, k: int) -> dict[str, float]:
    reference = pytest.importorskip("prdc")
    with contextlib.redirect_stdout(io.StringIO()):  # It prints the set sizes.
        return {name: float(v) for name, v in reference.compute_prdc(real, fake, k).items()}


@pytest.mark.parametrize(
    ("n", "m", "scale", "shift", "block_size"),
    [(500, 500, 1.2, 0.2, 1024), (400, 300, 0.8, 0.5, 96)],
)
@pytest.mark.slow
def test_matches_prdc_package(n, m, scale, shift, block_size):
    real, fake = _gaussian_sets(0, n, m, 64, scale, shift)
    ks = (1, 3, 5, 10)
    scores = prdc.precision_recall_density_coverage(real, fake, ks, block_size=block_size)
    for k in ks:
        expected = _reference(real, fake, k)
        # Float32 distances may put a point on the other side of a ball's edge than prdc's
        # float64 ones, which moves a score by 1 / M (1 / N for recall and coverage). On
        # these sets, and on 2000 x 2048 ReLU features, every decision agrees and the scores
        # are bitwise equal.
        for name, value in scores[k]._asdict().items():
            assert value == pytest.approx(expected[name], abs=1.0 / min(n, m)), (k, name)


# Small integers keep every float32 distance exact, so this case pins the conventions: with
# k = 1 each real's radius is its distance to the nearest other real, and "inside" is the
# strict d < r (the fakes at 2 and 9 sit exactly on the edges of the balls of reals 1 and 6).
# Real radii: [1, 1, 2, 3]; fake radii: [1, 1, 7, 11].
_HAND_REAL = np.array([[0.0], [1.0], [3.0], [6.0]], dtype=np.float32)
_HAND_FAKE = np.array([[1.0], [2.0], [9.0], [20.0]], dtype=np.float32)
# Fakes 1 and 2 are each inside one real ball (those of reals 1 and 3), 9 and 20 in none.
# Reals 1, 3 and 6 are inside fake balls (of fakes 1, 9 and 9); 0 is on fake 1's edge.
# Reals 1 and 3 have a fake strictly inside their ball; 0 and 6 only on the edge.
_HAND_SCORES = prdc.PRDC(precision=0.5, recall=0.75, density=0.5, coverage=0.5)


def test_one_dimensional_case_by_hand():
    assert prdc.precision_recall_density_coverage(_HAND_REAL, _HAND_FAKE, (1,)) == {1: _HAND_SCORES}


def test_one_dimensional_case_matches_prdc_package():
    assert _reference(_HAND_REAL, _HAND_FAKE, 1) == _HAND_SCORES._asdict()


def test_identical_sets():
    real, _ = _gaussian_sets(1, 300, 1, 16, 1.0, 0.0)
    for k, scores in prdc.precision_recall_density_coverage(real, real.copy(), (3, 5)).items():
        assert scores.precision == scores.recall == scores.coverage == 1.0, k
        # Each ball strictly holds its centre and k - 1 neighbours (the k-th is on the edge),
        # so density is exactly 1 up to float32 rounding of those edge distances.
        assert scores.density == pytest.approx(1.0, abs=2.0 / 300), k


def test_far_apart_sets_score_zero():
    real, fake = _gaussian_sets(2, 200, 150, 16, 1.0, 0.0)
    scores = prdc.precision_recall_density_coverage(real, fake + 1000.0, (3, 5))
    for k in (3, 5):
        assert scores[k] == prdc.PRDC(0.0, 0.0, 0.0, 0.0), k


def test_accepts_jax_arrays():
    real, fake = _gaussian_sets(3, 120, 100, 8, 1.0, 0.3)
    expected = prdc.precision_recall_density_coverage(real, fake, (3,))
    assert (
        prdc.precision_recall_density_coverage(jnp.asarray(real), jnp.asarray(fake), (3,))
        == expected
    )


@pytest.mark.parametrize(
    ("real_shape", "fake_shape", "ks"),
    [
        ((10, 4), (10, 3), (3,)),
        ((10,), (10, 4), (3,)),
        ((3, 4), (10, 4), (3,)),
        ((10, 4), (10, 4), (0,)),
        ((10, 4), (10, 4), ()),
    ],
)
def test_rejects_bad_inputs(real_shape, fake_shape, ks):
    with pytest.raises(ValueError):
        prdc.precision_recall_density_coverage(np.zeros(real_shape), np.zeros(fake_shape), ks)
