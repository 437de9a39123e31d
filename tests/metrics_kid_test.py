"""Tests for gan_jax.metrics.kid, against torch-fidelity 0.4.0 values stored by hand.

`data/kid_golden.npz` comes from `data/make_kid_golden.py` (run in an environment with torch;
see its docstring), so these tests need neither torch nor a network.
"""

import importlib.util
import pathlib

import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax.metrics import kid

_DATA = pathlib.Path(__file__).parent / "data"


def _load_golden_script():
    spec = importlib.util.spec_from_file_location("make_kid_golden", _DATA / "make_kid_golden.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_GOLDEN_SCRIPT = _load_golden_script()
_GOLDEN = dict(np.load(_DATA / "kid_golden.npz"))


@pytest.mark.parametrize("name", sorted(_GOLDEN_SCRIPT.CASES))
def test_matches_torch_fidelity(name):
    case = _GOLDEN_SCRIPT.CASES[name]
    real, fake = _GOLDEN_SCRIPT.make_features(**case["features"])
    assert real.sum() + fake.sum() == pytest.approx(_GOLDEN[f"{name}/checksum"], rel=1e-12)
    real, fake = real.astype(case["dtype"]), fake.astype(case["dtype"])
    mean, std = kid.kernel_inception_distance(real, fake, **case["kid"])
    # Where torch-fidelity itself worked in float64 the two agree to ~1e-14. On float32
    # features it sums the kernels in float32 and is the one off, by up to 3e-6 (mean) and
    # 2e-5 (std) relative on these cases.
    rtol = 1e-6 if case["dtype"] == "float64" else 1e-4
    assert mean == pytest.approx(_GOLDEN[f"{name}/mean"], rel=rtol)
    assert std == pytest.approx(_GOLDEN[f"{name}/std"], rel=rtol)


def test_identical_sets_give_the_expected_small_negative_value():
    # Two subsets of one set share rows, and a shared row adds its k(x, x) to the cross sum,
    # which the within sums leave out. Over the random draws the estimate's expectation is
    # 2 (mean off-diagonal k - mean diagonal k) / N: slightly negative, -> 0 as N grows.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 64))
    k = kid.polynomial_kernel(x, x)
    n = x.shape[0]
    off_diagonal = (k.sum() - np.trace(k)) / (n * (n - 1))
    expected = 2.0 * (off_diagonal - np.mean(np.diag(k))) / n
    num_subsets = 40
    mean, std = kid.kernel_inception_distance(x, x, num_subsets=num_subsets, subset_size=150)
    assert expected < 0
    assert mean == pytest.approx(expected, abs=4 * std / np.sqrt(num_subsets))


def test_same_distribution_is_near_zero_and_a_shift_is_not():
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(600, 64)), rng.normal(size=(600, 64))
    same_mean, same_std = kid.kernel_inception_distance(x, y, num_subsets=20, subset_size=150)
    # Independent samples of one distribution: the unbiased estimate is 0 in expectation.
    assert abs(same_mean) < 4 * same_std / np.sqrt(20)
    shifted_mean, shifted_std = kid.kernel_inception_distance(
        x, y + 0.2, num_subsets=20, subset_size=150
    )
    assert shifted_mean > 10 * shifted_std / np.sqrt(20) + abs(same_mean)


def test_full_subsets_match_closed_form_for_linear_kernel():
    # With subset_size = N every subset is the whole set (in some order), and with the linear
    # kernel x.y the unbiased MMD^2 has a closed form in the sums and norms of the rows.
    rng = np.random.default_rng(1)
    x, y = rng.normal(size=(40, 8)), rng.normal(size=(40, 8)) + 0.5
    m = x.shape[0]
    sx, sy = x.sum(0), y.sum(0)
    nx, ny = np.sum(x * x), np.sum(y * y)
    expected = (sx @ sx - nx + sy @ sy - ny) / (m * (m - 1)) - 2 * (sx @ sy) / m**2
    mean, std = kid.kernel_inception_distance(
        x, y, num_subsets=3, subset_size=m, degree=1, gamma=1.0, coef0=0.0
    )
    assert mean == pytest.approx(expected, rel=1e-12)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_accepts_jax_arrays():
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(60, 8)), rng.normal(size=(60, 8))
    expected = kid.kernel_inception_distance(x, y, num_subsets=4, subset_size=30)
    got = kid.kernel_inception_distance(
        jnp.asarray(x), jnp.asarray(y), num_subsets=4, subset_size=30
    )
    # JAX arrays are float32 unless x64 is on: equal up to that rounding.
    np.testing.assert_allclose(got, expected, rtol=1e-4)


def test_rejects_sets_smaller_than_a_subset():
    x = np.zeros((99, 4))
    with pytest.raises(ValueError, match="subset_size 100"):
        kid.kernel_inception_distance(x, np.zeros((200, 4)), subset_size=100)
    with pytest.raises(ValueError):
        kid.kernel_inception_distance(np.zeros((10, 4)), np.zeros((10, 3)), subset_size=5)
