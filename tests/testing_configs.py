"""Small configs for fast tests."""

from experiments import gaussian_2d
from gan_jax.config import Config, DataConfig, ModelConfig, OptimizerConfig, replace


def gaussian_config(**changes) -> Config:
    """D2L 20.1's setup (experiments/gaussian_2d.py) on `num_points` points, one epoch.

    The default 80 points make 10 steps per epoch. `changes` are `Config` fields (dotted
    names reach into nested configs, e.g. `loss.reduction`).
    """
    num_points = changes.pop("num_points", 80)
    config = gaussian_2d.config(
        num_points=num_points, num_epochs=1, checkpoint_every_steps=10, num_grid_samples=16
    )
    return replace(config, **changes)


def camel_config(**changes) -> Config:
    """Foster's camel GAN (RMSprop, separate D updates, dropout D), narrowed for CPU tests."""
    rmsprop = OptimizerConfig("rmsprop", learning_rate=0.0008, eps=1e-7)
    config = Config(
        experiment="quickdraw_camel_test",
        generator=ModelConfig(
            "upsampling_generator", {"initial_shape": [7, 7, 4], "filters": [8, 4, 4, 1]}
        ),
        discriminator=ModelConfig("conv_discriminator", {"filters": [4, 4, 8, 8]}),
        data=DataConfig("quickdraw_camel", sampling="with_replacement"),
        g_optimizer=rmsprop,
        d_optimizer=rmsprop,
        d_update="separate",
        batch_size=4,
        steps_per_epoch=1,
        num_grid_samples=4,
    )
    return replace(config, **changes)
