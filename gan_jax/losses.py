"""Adversarial losses, computed in float32 from the discriminator's logits.

D's "sigmoid output + binary cross-entropy" of the documents is written here as
binary cross-entropy *with logits*: the same function, without the log(0) that
PyTorch's BCELoss clamps at -100 and Keras clips at 1e-7.
"""

from typing import Literal

import jax
import jax.numpy as jnp

Reduction = Literal["mean", "sum"]


def binary_cross_entropy_with_logits(logits: jax.Array, targets: jax.Array | float) -> jax.Array:
    """Elementwise -[t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))], stable for any x."""
    logits = logits.astype(jnp.float32)
    # log sigmoid(x) = -softplus(-x) and log(1 - sigmoid(x)) = -softplus(x).
    return targets * jax.nn.softplus(-logits) + (1 - targets) * jax.nn.softplus(logits)


def reduce(losses: jax.Array, reduction: Reduction) -> jax.Array:
    """Sums or averages per-example losses."""
    if reduction == "mean":
        return jnp.mean(losses)
    if reduction == "sum":
        return jnp.sum(losses)
    raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")


def discriminator_real_loss(
    real_logits: jax.Array, *, label_smoothing: float = 0.0, reduction: Reduction = "mean"
) -> jax.Array:
    """BCE of D on real examples against targets 1 - label_smoothing (one-sided smoothing)."""
    return reduce(binary_cross_entropy_with_logits(real_logits, 1.0 - label_smoothing), reduction)


def discriminator_fake_loss(fake_logits: jax.Array, *, reduction: Reduction = "mean") -> jax.Array:
    """BCE of D on generated examples against target 0 (never smoothed)."""
    return reduce(binary_cross_entropy_with_logits(fake_logits, 0.0), reduction)


def discriminator_loss(
    real_logits: jax.Array,
    fake_logits: jax.Array,
    *,
    label_smoothing: float = 0.0,
    reduction: Reduction = "mean",
    weight: float = 1.0,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """weight * (real loss + fake loss); also returns the two terms unweighted."""
    real = discriminator_real_loss(
        real_logits, label_smoothing=label_smoothing, reduction=reduction
    )
    fake = discriminator_fake_loss(fake_logits, reduction=reduction)
    return weight * (real + fake), (real, fake)


def generator_loss(
    fake_logits: jax.Array,
    *,
    kind: Literal["non_saturating", "minimax"] = "non_saturating",
    reduction: Reduction = "mean",
) -> jax.Array:
    """G's loss on D's logits for generated examples.

    'non_saturating' minimises -log D(G(z)) (BCE against target 1), the usual
    practice; 'minimax' minimises log(1 - D(G(z))) = -BCE against target 0, the
    objective of the original minimax game, whose gradient vanishes when D wins.
    """
    if kind == "non_saturating":
        losses = binary_cross_entropy_with_logits(fake_logits, 1.0)
    elif kind == "minimax":
        losses = -binary_cross_entropy_with_logits(fake_logits, 0.0)
    else:
        raise ValueError(f"generator loss must be 'non_saturating' or 'minimax', got {kind!r}")
    return reduce(losses, reduction)
