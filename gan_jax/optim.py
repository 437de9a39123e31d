"""Builds optax optimizers from an `OptimizerConfig`."""

import optax

from gan_jax.config import OptimizerConfig


def create_optimizer(config: OptimizerConfig) -> optax.GradientTransformation:
    """Adam or RMSprop with the config's hyperparameters.

    The numeric ones (`sweep_spec.STATE_HYPERPARAMETERS`, the list the sweep's grouping
    and a resume's rules read) are injected as optimizer state, so they can be read from
    a checkpoint, changed on resume and, in sweeps, differ per vmapped run.
    """
    if config.name == "adam":
        return optax.inject_hyperparams(optax.adam)(
            learning_rate=config.learning_rate, b1=config.b1, b2=config.b2, eps=config.eps
        )
    if config.name == "rmsprop":
        return optax.inject_hyperparams(optax.rmsprop, static_args=("eps_in_sqrt",))(
            learning_rate=config.learning_rate,
            decay=config.decay,
            eps=config.eps,
            eps_in_sqrt=config.eps_in_sqrt,
        )
    raise ValueError(f"optimizer must be 'adam' or 'rmsprop', got {config.name!r}")
