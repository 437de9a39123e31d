"""Tests for gan_jax.metrics.nearest_neighbour."""

import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.metrics import nearest_neighbour


def _brute_force(queries: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean absolute difference to every reference in float64, then the first minimum."""
    q = queries.reshape(len(queries), -1).astype(np.float64)
    r = references.reshape(len(references), -1).astype(np.float64)
    dists = np.abs(q[:, None, :] - r[None, :, :]).mean(axis=-1)
    return dists.min(axis=1), dists.argmin(axis=1)


@pytest.mark.parametrize("chunk_size", [1, 8, 37, 64])
def test_float_inputs_match_brute_force(chunk_size):
    # 37 references: not a multiple of 8; 64 exceeds the reference count.
    rng = np.random.default_rng(0)
    references = rng.uniform(-1, 1, size=(37, 4, 4, 2)).astype(np.float32)
    queries = rng.uniform(-1, 1, size=(5, 4, 4, 2)).astype(np.float32)
    queries[2] = references[36]  # Exact match in the (shifted) last chunk.
    distances, indices = nearest_neighbour.nearest_neighbours_l1(
        queries, references, chunk_size=chunk_size
    )
    want_dist, want_index = _brute_force(queries, references)
    assert distances.shape == (5,) and indices.shape == (5,)
    assert distances.dtype == jnp.float32 and indices.dtype == jnp.int32
    np.testing.assert_array_equal(indices, want_index)
    np.testing.assert_allclose(distances, want_dist, rtol=1e-6, atol=1e-7)
    assert indices[2] == 36 and distances[2] == 0.0


def test_uint8_inputs_with_duplicates_take_first_index():
    rng = np.random.default_rng(1)
    references = rng.integers(0, 256, size=(53, 6, 6, 3), dtype=np.uint8)
    # Duplicates across chunk boundaries (chunk 16: [0,16) [16,32) [32,48) and the shifted
    # last chunk [37,53)), including both copies inside the overlap region.
    references[20] = references[3]
    references[40] = references[3]
    references[50] = references[45]
    queries = rng.integers(0, 256, size=(12, 6, 6, 3), dtype=np.uint8)
    queries[0] = references[40]
    queries[1] = references[50]
    # Near-copies: a few pixels nudged, still far closer than any random image.
    queries[2] = references[30]
    queries[2, 0, 0] ^= 1
    distances, indices = nearest_neighbour.nearest_neighbours_l1(
        jnp.asarray(queries), jnp.asarray(references), chunk_size=16
    )
    want_dist, want_index = _brute_force(queries, references)
    np.testing.assert_array_equal(indices, want_index)
    np.testing.assert_allclose(distances, want_dist, rtol=1e-6)
    assert list(np.asarray(indices[:3])) == [3, 45, 30]
    assert distances[0] == 0.0 and distances[1] == 0.0
    # Compared in the given 0-255 scale, not rescaled to [0, 1].
    assert float(np.max(distances[3:])) > 50.0


def test_mixed_dtypes_compare_in_given_scale():
    rng = np.random.default_rng(2)
    references = rng.integers(0, 256, size=(30, 5, 5, 1), dtype=np.uint8)
    queries = references[[7, 19]].astype(np.float32) + 0.5
    distances, indices = nearest_neighbour.nearest_neighbours_l1(queries, references, chunk_size=7)
    np.testing.assert_array_equal(indices, [7, 19])
    np.testing.assert_allclose(distances, [0.5, 0.5])


def test_rejects_mismatched_trailing_shapes():
    with pytest.raises(ValueError):
        nearest_neighbour.nearest_neighbours_l1(np.zeros((2, 4, 4, 1)), np.zeros((3, 4, 4, 3)))
