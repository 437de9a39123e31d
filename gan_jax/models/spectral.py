"""Spectral normalisation (Miyato et al. 2018) as an option of any layer.

Flax's `nn.SpectralNorm` divides a wrapped layer's kernel by an estimate of its largest
singular value (one power iteration per call, kernels of convolutions flattened to
(fan_in, out), as PyTorch's `spectral_norm` does up to a transpose). Its power
iteration vector `u` and the last estimate `sigma` live in the 'batch_stats'
collection, so the training state carries them and checkpoints store them like
BatchNorm statistics; parameter names are those of the plain layer.
"""

import flax.linen as nn
import jax


def apply(layer: nn.Module, x: jax.Array, *, spectral_norm: bool, train: bool) -> jax.Array:
    """`layer(x)`, with the layer's kernel spectrally normalised when `spectral_norm`.

    In training the power iteration's vector is updated (as PyTorch's training mode
    does on every forward pass); in inference it is read and left as it is.
    """
    if not spectral_norm:
        return layer(x)
    return nn.SpectralNorm(layer)(x, update_stats=train)
