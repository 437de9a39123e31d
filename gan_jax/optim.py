"""Builds optax optimizers from an `OptimizerConfig`."""

import optax

from gan_jax.config import OptimizerConfig


def create_optimizer(config: OptimizerConfig) -> optax.GradientTransformation:
    """Adam or RMSprop with the config's hyperparameters.

    The learning rate is injected as optimizer state so it can be read from a
    checkpoint and, in sweeps, differ per vmapped run.
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
