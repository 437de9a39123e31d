"""The closed-form 2-Wasserstein distance between Gaussians.

For N(m1, C1) and N(m2, C2),

    W2^2 = ||m1 - m2||^2 + tr(C1 + C2 - 2 (C2^{1/2} C1 C2^{1/2})^{1/2}),

which is exactly the Fréchet distance: (C2^{1/2} C1 C2^{1/2}) and (C1^{1/2} C2 C1^{1/2}) share
their eigenvalues with C1 C2, so the two trace terms agree. The matrix square root therefore
lives only in `frechet`, and this module is a thin, differently named view of it for toy 2-D
experiments where a distance (rather than its square) is the natural number to report. A
Gaussian is fitted to samples with `frechet.feature_statistics` (or, streamed, with
`frechet.batch_moments`; `gan_jax.evaluation.gaussian_scores` does so for a generator).
"""

import math

import numpy.typing as npt

from gan_jax.metrics import frechet


def wasserstein2_gaussian(
    mean1: npt.ArrayLike, cov1: npt.ArrayLike, mean2: npt.ArrayLike, cov2: npt.ArrayLike
) -> float:
    """2-Wasserstein distance between N(mean1, cov1) and N(mean2, cov2).

    Args:
        mean1: (D,) mean of the first Gaussian.
        cov1: (D, D) symmetric PSD covariance of the first Gaussian.
        mean2: (D,) mean of the second Gaussian.
        cov2: (D, D) symmetric PSD covariance of the second Gaussian.

    Returns:
        The distance (not squared) as a non-negative Python float.
    """
    return math.sqrt(frechet.frechet_distance(mean1, cov1, mean2, cov2))
