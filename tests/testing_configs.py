"""Small configs for fast tests."""

from gan_jax.config import Config, DataConfig, LossConfig, ModelConfig, OptimizerConfig


def gaussian_config(**changes) -> Config:
    """D2L 20.1's setup on `num_points` points (default 80: 10 steps per epoch)."""
    num_points = changes.pop("num_points", 80)
    config = Config(
        experiment="gaussian_2d_test",
        generator=ModelConfig(
            "mlp", {"hidden_sizes": [], "output_shape": [2], "init_scheme": "normal_0.02"}
        ),
        discriminator=ModelConfig(
            "mlp", {"hidden_sizes": [5, 3], "activation": "tanh", "init_scheme": "normal_0.02"}
        ),
        data=DataConfig("gaussian_2d", scaling="none", kwargs={"num_examples": num_points}),
        g_optimizer=OptimizerConfig("adam", learning_rate=0.005),
        d_optimizer=OptimizerConfig("adam", learning_rate=0.05),
        loss=LossConfig(reduction="sum", d_loss_weight=0.5),
        latent_dim=2,
        g_noise="shared",
        batch_size=8,
        num_epochs=1,
        checkpoint_every_steps=10,
        steps_per_dispatch=1000,
        num_grid_samples=16,
    )
    from gan_jax.config import replace

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
    from gan_jax.config import replace

    return replace(config, **changes)
