"""Comparing training states leaf by leaf (typed PRNG keys through their key data)."""

import jax
import numpy as np


def leaves(state) -> list[np.ndarray]:
    """Every leaf of a pytree as a NumPy array, PRNG keys as their raw key data."""
    out = []
    for x in jax.tree.leaves(state):
        if jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        out.append(np.asarray(x))
    return out


def assert_states_equal(a, b) -> None:
    """Same tree structure and bit-identical leaves."""
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(leaves(a), leaves(b), strict=True):
        np.testing.assert_array_equal(x, y)
