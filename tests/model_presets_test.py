"""Exact parameter counts of every network the six experiments build.

The networks come from each experiment's `config()` with its document's values. Each
count is worked out by hand from the source document's architecture. Networks are
initialised under `jax.eval_shape`, so only shapes are computed.
"""

import importlib
import math

import jax
import jax.numpy as jnp
import pytest

from gan_jax import models

MNIST = (28, 28, 1)
EXAMPLE_SHAPES = {"gaussian_2d": (2,), "dcgan_pokemon": (64, 64, 3)}  # others: MNIST

# (experiment, network, parameter count worked out by hand from the document)
COUNTS = [
    # gaussian_2d (D2L 20.1): G = Linear(2, 2): 2*2 + 2.
    ("gaussian_2d", "generator", 2 * 2 + 2),
    # D = Linear(2, 5), Tanh, Linear(5, 3), Tanh, Linear(3, 1): (2*5 + 5) + (5*3 + 3) + (3 + 1).
    ("gaussian_2d", "discriminator", (2 * 5 + 5) + (5 * 3 + 3) + (3 * 1 + 1)),
    # mlp_gan_mnist (Udacity): G 100 -> 128 -> 784: (100*128 + 128) + (128*784 + 784).
    ("mlp_gan_mnist", "generator", (100 * 128 + 128) + (128 * 784 + 784)),
    # D 784 -> 128 -> 1: (784*128 + 128) + (128 + 1).
    ("mlp_gan_mnist", "discriminator", (784 * 128 + 128) + (128 * 1 + 1)),
    # mlp_gan_mnist_deep (lecture): G 100 -> 256 -> 256 -> 256 -> 784, dropout has no
    # parameters: (100*256 + 256) + 2 * (256*256 + 256) + (256*784 + 784).
    (
        "mlp_gan_mnist_deep",
        "generator",
        (100 * 256 + 256) + 2 * (256 * 256 + 256) + (256 * 784 + 784),
    ),
    # D 784 -> 256 -> 256 -> 256 -> 1: (784*256 + 256) + 2 * (256*256 + 256) + (256 + 1).
    (
        "mlp_gan_mnist_deep",
        "discriminator",
        (784 * 256 + 256) + 2 * (256 * 256 + 256) + (256 * 1 + 1),
    ),
    # cgan_mnist (Make Your Own GAN): G Linear(100 + 10, 200), LeakyReLU, LayerNorm(200),
    # Linear(200, 784): (110*200 + 200) + 2*200 + (200*784 + 784).
    ("cgan_mnist", "generator", (110 * 200 + 200) + 2 * 200 + (200 * 784 + 784)),
    # D Linear(784 + 10, 200), LeakyReLU, LayerNorm(200), Linear(200, 1):
    # (794*200 + 200) + 2*200 + (200 + 1).
    ("cgan_mnist", "discriminator", (794 * 200 + 200) + 2 * 200 + (200 * 1 + 1)),
    # dcgan_pokemon (D2L 20.2, n_G = 64), as PyTorch's sum(p.numel()) for net_G: each
    # ConvTranspose2d(in, out, 4, bias=False) has in*out*16 weights; BatchNorm2d(c) has
    # weight and bias, 2*c (running_mean/var are buffers, not parameters):
    #   ConvT(100 -> 512) 819,200 + BN 1,024 + ConvT(512 -> 256) 2,097,152 + BN 512
    #   + ConvT(256 -> 128) 524,288 + BN 256 + ConvT(128 -> 64) 131,072 + BN 128
    #   + ConvT(64 -> 3) 3,072 = 3,576,704.
    (
        "dcgan_pokemon",
        "generator",
        100 * 512 * 16
        + 2 * 512
        + 512 * 256 * 16
        + 2 * 256
        + 256 * 128 * 16
        + 2 * 128
        + 128 * 64 * 16
        + 2 * 64
        + 64 * 3 * 16,
    ),
    # net_D (n_D = 64): four D_blocks, each Conv2d(in, out, 4, bias=False) + BatchNorm2d(out)
    # (D2L's first block is normalised too), then Conv2d(512, 1, 4, bias=False):
    #   Conv(3 -> 64) 3,072 + BN 128 + Conv(64 -> 128) 131,072 + BN 256
    #   + Conv(128 -> 256) 524,288 + BN 512 + Conv(256 -> 512) 2,097,152 + BN 1,024
    #   + Conv(512 -> 1) 8,192 = 2,765,696.
    (
        "dcgan_pokemon",
        "discriminator",
        3 * 64 * 16
        + 2 * 64
        + 64 * 128 * 16
        + 2 * 128
        + 128 * 256 * 16
        + 2 * 256
        + 256 * 512 * 16
        + 2 * 512
        + 512 * 1 * 16,
    ),
    # quickdraw_camel (Foster ch. 4, Keras): G Dense(100 -> 7*7*64 = 3136) 316,736
    # + BN(3136) 6,272 (trainable gamma, beta) + UpSampling, Conv(64 -> 128, k5) 204,928
    # + BN 256 + UpSampling, Conv(128 -> 64, k5) 204,864 + BN 128
    # + ConvT(64 -> 64, k5) 102,464 + BN 128 + ConvT(64 -> 1, k5) 1,601 = 837,377
    # (the book's summary: 844,161 total, of which 6,784 are non-trainable moving stats).
    (
        "quickdraw_camel",
        "generator",
        (100 * 3136 + 3136)
        + 2 * 3136
        + (64 * 128 * 25 + 128)
        + 2 * 128
        + (128 * 64 * 25 + 64)
        + 2 * 64
        + (64 * 64 * 25 + 64)
        + 2 * 64
        + (64 * 1 * 25 + 1),
    ),
    # D Conv(1 -> 64, k5, s2) 1,664 + Conv(64 -> 64, k5, s2) 102,464
    # + Conv(64 -> 128, k5, s2) 204,928 + Conv(128 -> 128, k5, s1) 409,728
    # (28 -> 14 -> 7 -> 4 -> 4, 'same') + Dense(4*4*128 = 2048 -> 1) 2,049 = 720,833.
    (
        "quickdraw_camel",
        "discriminator",
        (1 * 64 * 25 + 64)
        + (64 * 64 * 25 + 64)
        + (64 * 128 * 25 + 128)
        + (128 * 128 * 25 + 128)
        + (2048 + 1),
    ),
]


def count(tree) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(tree))


def network(experiment: str, which: str) -> tuple:
    """(model name, kwargs, input shape, num_classes, output shape) of an experiment's G or D."""
    config = importlib.import_module(f"experiments.{experiment}").config()
    example_shape = EXAMPLE_SHAPES.get(experiment, MNIST)
    model = getattr(config, which)
    if which == "generator":
        return model.name, model.kwargs, (config.latent_dim,), config.num_classes, example_shape
    return model.name, model.kwargs, example_shape, config.num_classes, ()


def init_shapes(name, kwargs, input_shape, num_classes, compute_dtype="float32"):
    """(variables, output) as shapes, initialised as gan_jax.state.create_state does."""
    module = models.build(name, kwargs, compute_dtype)
    x = jnp.zeros((2, *input_shape), jnp.float32)
    labels = jnp.zeros((2,), jnp.int32) if num_classes else None

    def init_and_apply(x, labels):
        variables = module.init(jax.random.key(0), x, labels, train=False)
        return variables, module.apply(variables, x, labels, train=False)

    return jax.eval_shape(init_and_apply, x, labels)


@pytest.mark.parametrize(
    "experiment, which, want", [pytest.param(*c, id=f"{c[0]}/{c[1]}") for c in COUNTS]
)
def test_parameter_count(experiment, which, want):
    name, kwargs, input_shape, num_classes, output_shape = network(experiment, which)
    variables, output = init_shapes(name, kwargs, input_shape, num_classes)
    assert output.shape == (2, *output_shape)
    assert count(variables["params"]) == want


def test_dcgan_counts_equal_pytorch_d2l_figures():
    # PyTorch sum(p.numel() for p in net.parameters()) for D2L 20.2's net_G and net_D.
    figures = {"generator": 3_576_704, "discriminator": 2_765_696}
    for which, figure in figures.items():
        variables, _ = init_shapes(*network("dcgan_pokemon", which)[:4])
        assert count(variables["params"]) == figure
        # BatchNorm running mean and variance: PyTorch buffers, Flax batch_stats.
        assert count(variables["batch_stats"]) == 2 * (512 + 256 + 128 + 64)


def test_parameter_counts_do_not_depend_on_compute_dtype():
    for experiment, which, want in COUNTS:
        variables, _ = init_shapes(*network(experiment, which)[:4], compute_dtype="bfloat16")
        assert count(variables["params"]) == want, (experiment, which)
        assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables["params"]))


def test_every_model_family_is_counted():
    built = {network(experiment, which)[0] for experiment, which, _ in COUNTS}
    assert built == set(models.MODELS)
