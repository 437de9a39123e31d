"""Exact parameter counts of every network the six experiments build.

The kwargs are copied from experiments/*.py with their flag defaults (an experiment
module defines absl flags at import, so two cannot be imported into one process).
Each count is worked out by hand from the source document's architecture. Networks
are initialised under `jax.eval_shape`, so only shapes are computed.
"""

import math

import jax
import jax.numpy as jnp
import pytest

from gan_jax import models

MNIST = (28, 28, 1)

# (id, model name, kwargs, input shape of one example, num_classes, output shape, count)
PRESETS = [
    # gaussian_2d (D2L 20.1): G = Linear(2, 2): 2*2 + 2.
    ("gaussian_2d/G", "mlp",
     {"hidden_sizes": [], "output_shape": [2], "init_scheme": "normal_0.02"},
     (2,), 0, (2,), 2 * 2 + 2),
    # D = Linear(2, 5), Tanh, Linear(5, 3), Tanh, Linear(3, 1): (2*5 + 5) + (5*3 + 3) + (3 + 1).
    ("gaussian_2d/D", "mlp",
     {"hidden_sizes": [5, 3], "activation": "tanh", "init_scheme": "normal_0.02"},
     (2,), 0, (), (2 * 5 + 5) + (5 * 3 + 3) + (3 * 1 + 1)),
    # mlp_gan_mnist (Udacity): G 100 -> 128 -> 784: (100*128 + 128) + (128*784 + 784).
    ("mlp_gan_mnist/G", "mlp",
     {"hidden_sizes": [128], "output_shape": [28, 28, 1], "output_activation": "tanh",
      "init_scheme": "glorot_uniform", "activation": "leaky_relu", "negative_slope": 0.01},
     (100,), 0, MNIST, (100 * 128 + 128) + (128 * 784 + 784)),
    # D 784 -> 128 -> 1: (784*128 + 128) + (128 + 1).
    ("mlp_gan_mnist/D", "mlp",
     {"hidden_sizes": [128], "init_scheme": "glorot_uniform", "activation": "leaky_relu",
      "negative_slope": 0.01},
     MNIST, 0, (), (784 * 128 + 128) + (128 * 1 + 1)),
    # mlp_gan_mnist_deep (lecture): G 100 -> 256 -> 256 -> 256 -> 784, dropout has no
    # parameters: (100*256 + 256) + 2 * (256*256 + 256) + (256*784 + 784).
    ("mlp_gan_mnist_deep/G", "mlp",
     {"hidden_sizes": [256] * 3, "activation": "leaky_relu", "negative_slope": 0.01,
      "dropout_rate": 0.1, "init_scheme": "torch", "output_shape": [28, 28, 1],
      "output_activation": "tanh"},
     (100,), 0, MNIST, (100 * 256 + 256) + 2 * (256 * 256 + 256) + (256 * 784 + 784)),
    # D 784 -> 256 -> 256 -> 256 -> 1: (784*256 + 256) + 2 * (256*256 + 256) + (256 + 1).
    ("mlp_gan_mnist_deep/D", "mlp",
     {"hidden_sizes": [256] * 3, "activation": "leaky_relu", "negative_slope": 0.01,
      "dropout_rate": 0.1, "init_scheme": "torch"},
     MNIST, 0, (), (784 * 256 + 256) + 2 * (256 * 256 + 256) + (256 * 1 + 1)),
    # cgan_mnist (Make Your Own GAN): G Linear(100 + 10, 200), LeakyReLU, LayerNorm(200),
    # Linear(200, 784): (110*200 + 200) + 2*200 + (200*784 + 784).
    ("cgan_mnist/G", "mlp",
     {"hidden_sizes": [200], "activation": "leaky_relu", "negative_slope": 0.02,
      "layer_norm": True, "num_classes": 10, "init_scheme": "torch",
      "output_shape": [28, 28, 1], "output_activation": "sigmoid"},
     (100,), 10, MNIST, (110 * 200 + 200) + 2 * 200 + (200 * 784 + 784)),
    # D Linear(784 + 10, 200), LeakyReLU, LayerNorm(200), Linear(200, 1):
    # (794*200 + 200) + 2*200 + (200 + 1).
    ("cgan_mnist/D", "mlp",
     {"hidden_sizes": [200], "activation": "leaky_relu", "negative_slope": 0.02,
      "layer_norm": True, "num_classes": 10, "init_scheme": "torch"},
     MNIST, 10, (), (794 * 200 + 200) + 2 * 200 + (200 * 1 + 1)),
    # dcgan_pokemon (D2L 20.2, n_G = 64), as PyTorch's sum(p.numel()) for net_G: each
    # ConvTranspose2d(in, out, 4, bias=False) has in*out*16 weights; BatchNorm2d(c) has
    # weight and bias, 2*c (running_mean/var are buffers, not parameters):
    #   ConvT(100 -> 512) 819,200 + BN 1,024 + ConvT(512 -> 256) 2,097,152 + BN 512
    #   + ConvT(256 -> 128) 524,288 + BN 256 + ConvT(128 -> 64) 131,072 + BN 128
    #   + ConvT(64 -> 3) 3,072 = 3,576,704.
    ("dcgan_pokemon/G", "dcgan_generator", {"base_channels": 64},
     (100,), 0, (64, 64, 3),
     100 * 512 * 16 + 2 * 512 + 512 * 256 * 16 + 2 * 256 + 256 * 128 * 16 + 2 * 128
     + 128 * 64 * 16 + 2 * 64 + 64 * 3 * 16),
    # net_D (n_D = 64): four D_blocks, each Conv2d(in, out, 4, bias=False) + BatchNorm2d(out)
    # (D2L's first block is normalised too), then Conv2d(512, 1, 4, bias=False):
    #   Conv(3 -> 64) 3,072 + BN 128 + Conv(64 -> 128) 131,072 + BN 256
    #   + Conv(128 -> 256) 524,288 + BN 512 + Conv(256 -> 512) 2,097,152 + BN 1,024
    #   + Conv(512 -> 1) 8,192 = 2,765,696.
    ("dcgan_pokemon/D", "dcgan_discriminator", {"base_channels": 64, "negative_slope": 0.2},
     (64, 64, 3), 0, (),
     3 * 64 * 16 + 2 * 64 + 64 * 128 * 16 + 2 * 128 + 128 * 256 * 16 + 2 * 256
     + 256 * 512 * 16 + 2 * 512 + 512 * 1 * 16),
    # quickdraw_camel (Foster ch. 4, Keras): G Dense(100 -> 7*7*64 = 3136) 316,736
    # + BN(3136) 6,272 (trainable gamma, beta) + UpSampling, Conv(64 -> 128, k5) 204,928
    # + BN 256 + UpSampling, Conv(128 -> 64, k5) 204,864 + BN 128
    # + ConvT(64 -> 64, k5) 102,464 + BN 128 + ConvT(64 -> 1, k5) 1,601 = 837,377
    # (the book's summary: 844,161 total, of which 6,784 are non-trainable moving stats).
    ("quickdraw_camel/G", "upsampling_generator",
     {"initial_shape": [7, 7, 64], "upsample": [2, 2, 1, 1], "filters": [128, 64, 64, 1],
      "kernel_sizes": [5, 5, 5, 5], "strides": [1, 1, 1, 1], "batch_norm_momentum": 0.9,
      "activation": "relu", "init_scheme": "normal_0.02"},
     (100,), 0, MNIST,
     (100 * 3136 + 3136) + 2 * 3136 + (64 * 128 * 25 + 128) + 2 * 128
     + (128 * 64 * 25 + 64) + 2 * 64 + (64 * 64 * 25 + 64) + 2 * 64 + (64 * 1 * 25 + 1)),
    # D Conv(1 -> 64, k5, s2) 1,664 + Conv(64 -> 64, k5, s2) 102,464
    # + Conv(64 -> 128, k5, s2) 204,928 + Conv(128 -> 128, k5, s1) 409,728
    # (28 -> 14 -> 7 -> 4 -> 4, 'same') + Dense(4*4*128 = 2048 -> 1) 2,049 = 720,833.
    ("quickdraw_camel/D", "conv_discriminator",
     {"filters": [64, 64, 128, 128], "kernel_sizes": [5, 5, 5, 5], "strides": [2, 2, 2, 1],
      "batch_norm_momentum": None, "activation": "relu", "dropout_rate": 0.4,
      "init_scheme": "normal_0.02"},
     MNIST, 0, (),
     (1 * 64 * 25 + 64) + (64 * 64 * 25 + 64) + (64 * 128 * 25 + 128)
     + (128 * 128 * 25 + 128) + (2048 + 1)),
]  # fmt: skip


def count(tree) -> int:
    return sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(tree))


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
    "name, kwargs, input_shape, num_classes, output_shape, want",
    [pytest.param(*preset[1:], id=preset[0]) for preset in PRESETS],
)
def test_preset_parameter_count(name, kwargs, input_shape, num_classes, output_shape, want):
    variables, output = init_shapes(name, kwargs, input_shape, num_classes)
    assert output.shape == (2, *output_shape)
    assert count(variables["params"]) == want


def test_dcgan_counts_equal_pytorch_d2l_figures():
    # PyTorch sum(p.numel() for p in net.parameters()) for D2L 20.2's net_G and net_D.
    figures = {"dcgan_pokemon/G": 3_576_704, "dcgan_pokemon/D": 2_765_696}
    for preset in PRESETS:
        if preset[0] in figures:
            variables, _ = init_shapes(*preset[1:5])
            assert count(variables["params"]) == figures[preset[0]]
            # BatchNorm running mean and variance: PyTorch buffers, Flax batch_stats.
            assert count(variables["batch_stats"]) == 2 * (512 + 256 + 128 + 64)


def test_parameter_counts_do_not_depend_on_compute_dtype():
    for preset in PRESETS:
        variables, _ = init_shapes(*preset[1:5], compute_dtype="bfloat16")
        assert count(variables["params"]) == preset[-1], preset[0]
        assert all(leaf.dtype == jnp.float32 for leaf in jax.tree.leaves(variables["params"]))


def test_all_tested():
    assert {preset[1] for preset in PRESETS} == set(models.MODELS)
