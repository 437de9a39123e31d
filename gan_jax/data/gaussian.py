"""D2L 20.1's data: points X ~ N(0, I) mapped by an affine map, data = X A + b."""

from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

# D2L's values: the target is N(b, A^T A) = N([1, 2], [[1.01, 1.95], [1.95, 4.25]]).
D2L_MATRIX = ((1.0, 2.0), (-0.1, 0.5))
D2L_OFFSET = (1.0, 2.0)


def make_dataset(
    seed: int,
    num_examples: int = 1000,
    matrix: Sequence[Sequence[float]] = D2L_MATRIX,
    offset: Sequence[float] = D2L_OFFSET,
) -> np.ndarray:
    """Draws `num_examples` points of N(offset, A^T A) as float32 (num_examples, 2)."""
    key = jax.random.fold_in(jax.random.key(seed), 0x9A055)
    x = jax.random.normal(key, (num_examples, len(offset)))
    return np.asarray(x @ jnp.asarray(matrix, jnp.float32) + jnp.asarray(offset, jnp.float32))


def target_moments(
    matrix: Sequence[Sequence[float]] = D2L_MATRIX, offset: Sequence[float] = D2L_OFFSET
) -> tuple[np.ndarray, np.ndarray]:
    """Mean b and covariance A^T A of the distribution the data is drawn from."""
    a = np.asarray(matrix, np.float64)
    return np.asarray(offset, np.float64), a.T @ a
