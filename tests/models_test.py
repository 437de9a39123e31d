"""Output shapes and exact parameter counts of the networks."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import models
from gan_jax.models import initializers


def param_count(params) -> int:
    return sum(int(np.prod(p.shape)) for p in jax.tree.leaves(params))


def init(module, x, labels=None):
    # Jitted: run op by op, each operation of the initialisation compiles alone.
    return jax.jit(lambda key: module.init(key, x, labels, train=False))(jax.random.key(0))


@pytest.mark.parametrize(
    "kwargs, input_shape, output_shape, count",
    [
        # D2L 20.1: G = Linear(2, 2); D = 2 -> 5 -> 3 -> 1.
        ({"hidden_sizes": [], "output_shape": [2]}, (4, 2), (4, 2), 6),
        ({"hidden_sizes": [5, 3], "activation": "tanh"}, (4, 2), (4,), 15 + 18 + 4),
        # Udacity: G 100 -> 128 -> 784 as 28x28x1 images; D 784 -> 128 -> 1.
        (
            {"hidden_sizes": [128], "output_shape": [28, 28, 1], "output_activation": "tanh"},
            (4, 100),
            (4, 28, 28, 1),
            100 * 128 + 128 + 128 * 784 + 784,
        ),
        ({"hidden_sizes": [128]}, (4, 28, 28, 1), (4,), 784 * 128 + 128 + 129),
    ],
)
@pytest.mark.slow
def test_mlp_shapes_and_parameter_counts(kwargs, input_shape, output_shape, count):
    module = models.build("mlp", kwargs)
    x = jnp.zeros(input_shape)
    variables = init(module, x)
    assert module.apply(variables, x, None, train=False).shape == output_shape
    assert param_count(variables["params"]) == count


@pytest.mark.slow
def test_conditional_mlp_concatenates_one_hot_labels():
    # "Make Your Own GAN" D: Linear(784 + 10, 200), LeakyReLU, LayerNorm(200), Linear(200, 1).
    module = models.build("mlp", {"hidden_sizes": [200], "layer_norm": True, "num_classes": 10})
    x, labels = jnp.zeros((3, 28, 28, 1)), jnp.array([0, 5, 9])
    variables = init(module, x, labels)
    assert param_count(variables["params"]) == 794 * 200 + 200 + 2 * 200 + 201
    logits = module.apply(variables, x, labels, train=False)
    assert logits.shape == (3,)
    # With a zero image, only the label moves the output.
    assert len(set(np.asarray(logits).round(6).tolist())) == 3


@pytest.mark.slow
def test_dropout_is_active_only_in_training():
    module = models.build("mlp", {"hidden_sizes": [64], "dropout_rate": 0.5})
    x = jnp.ones((2, 8))
    variables = init(module, x)
    eval_out = module.apply(variables, x, None, train=False)
    np.testing.assert_array_equal(eval_out, module.apply(variables, x, None, train=False))
    train_a = module.apply(variables, x, None, train=True, rngs={"dropout": jax.random.key(1)})
    train_b = module.apply(variables, x, None, train=True, rngs={"dropout": jax.random.key(2)})
    assert not np.allclose(train_a, train_b)


@pytest.mark.slow
def test_torch_init_scheme_bounds():
    module = models.build("mlp", {"hidden_sizes": [256], "init_scheme": "torch"})
    params = init(module, jnp.zeros((1, 784)))["params"]
    bound = 1 / np.sqrt(784)
    for leaf in jax.tree.leaves(params["Dense_0"]):
        assert np.abs(leaf).max() <= bound
        assert np.abs(leaf).max() > 0.9 * bound


def test_normal_init_scheme_draws_biases_too():
    module = models.build("mlp", {"hidden_sizes": [500], "init_scheme": "normal_0.02"})
    params = init(module, jnp.zeros((1, 400)))["params"]
    assert np.std(params["Dense_0"]["kernel"]) == pytest.approx(0.02, rel=0.05)
    assert np.std(params["Dense_0"]["bias"]) == pytest.approx(0.02, rel=0.2)


def test_unknown_model_name():
    with pytest.raises(ValueError, match="unknown model"):
        models.build("transformer", {})


@pytest.mark.parametrize(
    "scheme, reference",
    [
        ("torch", jax.nn.initializers.variance_scaling(1 / 3, "fan_in", "uniform")),
        ("normal_0.02", jax.nn.initializers.normal(0.02)),
        ("glorot_uniform", jax.nn.initializers.glorot_uniform()),
        ("lecun_normal", jax.nn.initializers.lecun_normal()),
    ],
)
@pytest.mark.parametrize("shape", [(2, 5), (784, 128), (4, 4, 8, 16), (5, 5, 1, 64)])
@pytest.mark.slow
def test_kernel_draws_equal_jaxs_initializers_bit_for_bit(scheme, reference, shape):
    # Ours draw on the flat shape (faster to compile); the values must not change.
    key = jax.random.key(7)
    ours = initializers.kernel_init(scheme)(key, shape, jnp.float32)
    assert ours.shape == shape
    np.testing.assert_array_equal(ours, reference(key, shape, jnp.float32))


def test_bias_and_norm_draws_equal_jaxs_initializers_bit_for_bit():
    key = jax.random.key(3)
    np.testing.assert_array_equal(
        initializers.norm_scale_init("normal_0.02")(key, (64,), jnp.float32),
        jax.nn.initializers.normal(0.02)(key, (64,), jnp.float32),
    )
    limit = 1 / 20**0.5
    np.testing.assert_array_equal(
        initializers.bias_init("torch", 20)(key, (7,), jnp.float32),
        jax.random.uniform(key, (7,), jnp.float32, -limit, limit),
    )
