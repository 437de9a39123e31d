"""D's spectral normalisation and G's moving average: their numbers and their plumbing."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from testing_configs import gaussian_config

from experiments import mlp_gan_mnist
from gan_jax import models
from gan_jax import steps as steps_lib
from gan_jax.state import build_gan, create_state, for_sampling

_SN_CASES = {
    "mlp": ({"hidden_sizes": (30,)}, (3, 20)),
    "dcgan_discriminator": ({"base_channels": 4}, (2, 64, 64, 3)),
    "conv_discriminator": ({"filters": (4, 4, 8, 8)}, (2, 28, 28, 1)),
}


def _power_iterations(name, iterations):
    """D's variables after `iterations` training-mode calls, and D's module."""
    kwargs, shape = _SN_CASES[name]
    module = models.build(name, {**kwargs, "spectral_norm": True})
    x = jax.random.normal(jax.random.key(1), shape)
    # Jitted: run op by op, a conv net's initialisation compiles each operation alone.
    variables = jax.jit(lambda key: module.init(key, x, None, train=False))(jax.random.key(0))

    @jax.jit
    def call(variables):
        _, mutated = module.apply(
            variables, x, None, train=True, rngs={"dropout": jax.random.key(2)}, mutable=True
        )
        return {"params": variables["params"], "batch_stats": mutated["batch_stats"]}

    for _ in range(iterations):
        variables = call(variables)
    return module, variables


def _first_layer(variables):
    """(kernel as a fan_in x out matrix, its power-iteration sigma) of D's first layer."""
    stats = variables["batch_stats"]["SpectralNorm_0"]
    layer = next(iter(variables["params"]))
    kernel = variables["params"][layer]["kernel"]
    return kernel.reshape(-1, kernel.shape[-1]), stats[f"{layer}/kernel/sigma"]


@pytest.mark.parametrize("name", sorted(_SN_CASES))
@pytest.mark.slow
def test_spectral_norm_estimate_converges_to_the_largest_singular_value(name):
    _, variables = _power_iterations(name, 30)
    matrix, sigma = _first_layer(variables)
    largest = float(jnp.linalg.svd(matrix, compute_uv=False)[0])
    # One power iteration per call: after 30 the estimate is within 0.1% for these sizes.
    assert float(sigma) == pytest.approx(largest, rel=1e-3)
    # Power iteration approaches it from below.
    _, once = _power_iterations(name, 1)
    assert float(_first_layer(once)[1]) <= largest * (1 + 1e-6)


def test_normalised_layer_is_the_kernel_divided_by_its_estimate():
    module, variables = _power_iterations("mlp", 30)
    x = jax.random.normal(jax.random.key(1), _SN_CASES["mlp"][1])
    # The plain MLP with every kernel divided by its largest singular value.
    params = {
        layer: {**p, "kernel": p["kernel"] / jnp.linalg.svd(p["kernel"], compute_uv=False)[0]}
        for layer, p in variables["params"].items()
    }
    expected = models.build("mlp", {"hidden_sizes": (30,)}).apply(
        {"params": params}, x, None, train=False
    )
    got = module.apply(variables, x, None, train=False)
    np.testing.assert_allclose(got, expected, rtol=2e-3, atol=1e-5)


@pytest.mark.slow
def test_spectral_norm_keeps_parameter_names_and_drops_conv_batch_norm():
    for name, (kwargs, shape) in _SN_CASES.items():
        x = jnp.zeros(shape)

        def names_and_shapes(module, x=x):  # traced, not run: only the tree is compared
            init = lambda key: module.init(key, x, None, train=False)
            return jax.eval_shape(init, jax.random.key(0))

        plain = names_and_shapes(models.build(name, kwargs))
        normalised = names_and_shapes(models.build(name, {**kwargs, "spectral_norm": True}))
        names = set(normalised["params"])
        assert names == {n for n in plain["params"] if not n.startswith("BatchNorm")}, name
        assert all(k.startswith("SpectralNorm_") for k in normalised["batch_stats"])


def test_settings_reach_the_config():
    config = mlp_gan_mnist.config(spectral_norm=True, g_ema_decay=0.999)
    assert config.discriminator.kwargs["spectral_norm"] is True
    assert "spectral_norm" not in config.generator.kwargs
    assert config.g_ema_decay == 0.999
    default = mlp_gan_mnist.config()
    assert default.g_ema_decay == 0.0 and "spectral_norm" not in default.discriminator.kwargs


def test_no_average_by_default_and_the_state_tree_is_unchanged():
    gan = build_gan(gaussian_config())
    state = create_state(gan, 0)
    assert state.generator_ema is None
    # None adds no leaves: checkpoints of runs from before the option restore as they were.
    leaves_before = len(jax.tree.leaves(state.replace(generator_ema=None)))
    assert len(jax.tree.leaves(state)) == leaves_before
    assert for_sampling(state) is state


@pytest.mark.slow
def test_g_average_after_k_steps_equals_its_closed_form():
    decay, k = 0.8, 6
    config = dataclasses.replace(gaussian_config(), g_ema_decay=decay)
    gan = build_gan(config)
    state = create_state(gan, 0)
    step = jax.jit(lambda s, x: steps_lib.train_step(gan, s, x, None))
    real = jax.random.normal(jax.random.key(3), (k, config.batch_size, 2))
    history = [state.generator.params]
    for i in range(k):
        state, _ = step(state, real[i])
        history.append(state.generator.params)
    # ema_k = decay^k p_0 + sum_{t=1..k} (1 - decay) decay^(k - t) p_t
    weights = [decay**k] + [(1 - decay) * decay ** (k - t) for t in range(1, k + 1)]
    expected = jax.tree.map(
        lambda *ps: sum(w * p for w, p in zip(weights, ps, strict=True)), *history
    )
    jax.tree.map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
        state.generator_ema,
        expected,
    )
    # Sampling uses the average; asked for the raw G, the trained parameters.
    assert for_sampling(state).generator.params is state.generator_ema
    raw = for_sampling(state, raw_generator=True)
    assert raw.generator.params is state.generator.params
