"""Writes kid_golden.npz: torch-fidelity 0.4.0's KID on seeded feature sets.

Run by hand, in a Python environment with torch and torch-fidelity==0.4.0 (not the gan_jax
one, which never installs torch), from the repository root:

    /work/torchref/bin/python tests/data/make_kid_golden.py

`tests/metrics_kid_test.py` regenerates the same features with `make_features` (NumPy's
`RandomState`, whose streams NumPy keeps fixed across versions) and compares
`gan_jax.metrics.kid.kernel_inception_distance` with the stored mean and std. For each case
the file holds `{case}/mean`, `{case}/std` and `{case}/checksum` (the sum of both feature sets,
to tell a changed generator from a changed metric).
"""

import pathlib

import numpy as np

# name -> feature generator arguments, KID arguments (gan_jax names) and the feature dtype
# handed to torch-fidelity. float64 cases make it compute in float64 like gan_jax does; the
# float32 case is what it computes on real network features (float32 kernel sums).
CASES = {
    "gauss64": dict(
        features=dict(n1=300, n2=300, dim=64, seed=1, kind="gauss"),
        kid=dict(num_subsets=20, subset_size=100, seed=7),
        dtype="float64",
    ),
    "gauss64_kernel_args": dict(
        features=dict(n1=300, n2=260, dim=64, seed=2, kind="gauss"),
        kid=dict(num_subsets=20, subset_size=100, degree=2, gamma=0.05, coef0=0.5, seed=11),
        dtype="float64",
    ),
    "relu2048": dict(
        features=dict(n1=200, n2=240, dim=2048, seed=3, kind="relu"),
        kid=dict(num_subsets=10, subset_size=100),  # torch-fidelity's default seed, 2020
        dtype="float64",
    ),
    "relu2048_float32": dict(
        features=dict(n1=200, n2=240, dim=2048, seed=3, kind="relu"),
        kid=dict(num_subsets=10, subset_size=100),
        dtype="float32",
    ),
    # A near miss, KID ~1e-3 as for a good generator: float32 sums lose the most here.
    "relu2048_close_float32": dict(
        features=dict(n1=200, n2=240, dim=2048, seed=4, kind="relu", scale=1.02, shift=0.02),
        kid=dict(num_subsets=10, subset_size=100),
        dtype="float32",
    ),
    "relu2048_close": dict(
        features=dict(n1=200, n2=240, dim=2048, seed=4, kind="relu", scale=1.02, shift=0.02),
        kid=dict(num_subsets=10, subset_size=100),
        dtype="float64",
    ),
}

_TORCH_FIDELITY_KWARGS = {
    "num_subsets": "kid_subsets",
    "subset_size": "kid_subset_size",
    "degree": "kid_kernel_poly_degree",
    "gamma": "kid_kernel_poly_gamma",
    "coef0": "kid_kernel_poly_coef0",
    "seed": "rng_seed",
}


def make_features(
    n1: int, n2: int, dim: int, seed: int, kind: str, scale: float = 1.2, shift: float = 0.3
) -> tuple[np.ndarray, ...]:
    """Two float64 feature sets from one seed; the second one's latent is scaled and shifted.

    "gauss": correlated Gaussians. "relu": non-negative, correlated features from a
    32-dimensional latent, a stand-in for Inception pool features (which follow a ReLU).
    """
    rng = np.random.RandomState(seed)
    latent = 32 if kind == "relu" else dim
    mixing = rng.standard_normal((latent, dim)) / np.sqrt(latent)
    real = rng.standard_normal((n1, latent)) @ mixing
    fake = (scale * rng.standard_normal((n2, latent)) + shift) @ mixing
    if kind == "relu":
        noise = 0.1 * rng.standard_normal((n1 + n2, dim))
        real = np.maximum(real + noise[:n1], 0.0)
        fake = np.maximum(fake + noise[n1:], 0.0)
    return real, fake


def main() -> None:
    import torch
    from torch_fidelity.metric_kid import kid_features_to_metric

    out = {}
    for name, case in CASES.items():
        real, fake = make_features(**case["features"])
        kwargs = {_TORCH_FIDELITY_KWARGS[k]: v for k, v in case["kid"].items()}
        metric = kid_features_to_metric(
            torch.from_numpy(real.astype(case["dtype"])),
            torch.from_numpy(fake.astype(case["dtype"])),
            kid_kernel="poly",
            verbose=False,
            **kwargs,
        )
        out[f"{name}/mean"] = np.float64(metric["kernel_inception_distance_mean"])
        out[f"{name}/std"] = np.float64(metric["kernel_inception_distance_std"])
        out[f"{name}/checksum"] = np.float64(real.sum() + fake.sum())
        print(name, out[f"{name}/mean"], out[f"{name}/std"])
    np.savez(pathlib.Path(__file__).with_name("kid_golden.npz"), **out)


if __name__ == "__main__":
    main()
