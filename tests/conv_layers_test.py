"""The CPU formulations of convolution layers equal Flax's own: same parameters, outputs
and gradients within float32 rounding, whichever formulation wrote a checkpoint."""

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gan_jax import models
from gan_jax.models import conv_layers

PHASE_PADDING = conv_layers.PHASE_PADDING


def _outputs_and_grads(module, variables, x):
    def loss(params, x):
        y = module.apply({**variables, "params": params}, x)
        return jnp.sum(jnp.sin(y)), y

    # Jitted: run op by op, each of the layer's many small operations compiles alone.
    value_and_grad = jax.jit(jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))
    (_, y), grads = value_and_grad(variables["params"], x)
    return y, grads


def _assert_close(ours, theirs):
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs), strict=True):
        a, b = np.asarray(a), np.asarray(b)
        scale = float(np.max(np.abs(b))) or 1.0
        np.testing.assert_allclose(a / scale, b / scale, atol=2e-5, rtol=0)


@pytest.mark.parametrize(
    "ours, flax_layer, input_shape",
    [
        # D2L's upsampling blocks: 4x4, stride 2, PyTorch padding 1.
        (
            conv_layers.ConvTranspose(16, (4, 4), (2, 2), PHASE_PADDING, formulation="phases"),
            nn.ConvTranspose(16, (4, 4), (2, 2), PHASE_PADDING),
            (3, 4, 4, 24),
        ),
        (
            conv_layers.ConvTranspose(
                8, (4, 4), (2, 2), PHASE_PADDING, use_bias=False, formulation="phases"
            ),
            nn.ConvTranspose(8, (4, 4), (2, 2), PHASE_PADDING, use_bias=False),
            (2, 5, 7, 16),
        ),
        # D2L's downsampling and last layers, Foster's 'same' 5x5 layers.
        (
            conv_layers.Conv(8, (4, 4), (2, 2), ((1, 1), (1, 1)), formulation="patches"),
            nn.Conv(8, (4, 4), (2, 2), ((1, 1), (1, 1))),
            (3, 16, 16, 16),
        ),
        (
            conv_layers.Conv(1, (4, 4), padding="VALID", formulation="patches"),
            nn.Conv(1, (4, 4), padding="VALID"),
            (3, 4, 4, 32),
        ),
        (
            conv_layers.Conv(12, (5, 5), (2, 2), "SAME", formulation="patches"),
            nn.Conv(12, (5, 5), (2, 2), "SAME"),
            (2, 7, 7, 16),
        ),
        (
            conv_layers.Conv(12, (5, 5), padding="SAME", formulation="patches"),
            nn.Conv(12, (5, 5), padding="SAME"),
            (2, 4, 4, 16),
        ),
    ],
)
@pytest.mark.slow
def test_each_formulation_equals_flaxs_layer(ours, flax_layer, input_shape):
    x = jax.random.normal(jax.random.key(0), input_shape)
    variables = jax.jit(ours.init)(jax.random.key(1), x)
    # Same names, shapes and initial values as Flax's layer: checkpoints interchange.
    reference = jax.jit(flax_layer.init)(jax.random.key(1), x)
    assert jax.tree.structure(variables) == jax.tree.structure(reference)
    for a, b in zip(jax.tree.leaves(variables), jax.tree.leaves(reference), strict=True):
        np.testing.assert_array_equal(a, b)
    _assert_close(
        _outputs_and_grads(ours, variables, x), _outputs_and_grads(flax_layer, variables, x)
    )


def test_auto_keeps_xlas_layer_where_the_formulation_does_not_apply_or_pay():
    x = jnp.ones((1, 8, 8, 3))
    # Three input channels: XLA's convolution, bit for bit.
    layer = conv_layers.Conv(8, (4, 4), (2, 2), ((1, 1), (1, 1)))
    variables = layer.init(jax.random.key(0), x)
    flax_layer = nn.Conv(8, (4, 4), (2, 2), ((1, 1), (1, 1)))
    np.testing.assert_array_equal(layer.apply(variables, x), flax_layer.apply(variables, x))
    with pytest.raises(ValueError, match="4x4, stride-2"):
        conv_layers.ConvTranspose(8, (5, 5), (1, 1), "SAME", formulation="phases").init(
            jax.random.key(0), x
        )


@pytest.mark.parametrize("family", ["dcgan", "camel"])
@pytest.mark.slow
def test_whole_networks_agree_across_formulations_from_one_set_of_weights(family):
    if family == "dcgan":
        g_kwargs, d_kwargs = {"base_channels": 16}, {"base_channels": 16}
        g, d = (
            models.build("dcgan_generator", g_kwargs),
            models.build("dcgan_discriminator", d_kwargs),
        )
    else:
        g, d = models.build("upsampling_generator", {}), models.build("conv_discriminator", {})
    z = jax.random.normal(jax.random.key(0), (2, 100))
    g_vars = g.init(jax.random.key(1), z, train=False)
    images = g.apply(g_vars, z, train=False)
    d_vars = d.init(jax.random.key(2), images, train=False)

    def images_and_logits():
        fake = g.apply(g_vars, z, train=False)
        return fake, d.apply(d_vars, fake, train=False)

    ours = images_and_logits()
    with conv_layers.xla_everywhere():
        _assert_close(ours, images_and_logits())
