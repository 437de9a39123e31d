"""The Udacity deep-learning lecture's MLP GAN on MNIST, with one-sided label smoothing.

Document: "Learning GAN", a blog post by Jun (2017-07-01) on the Udacity Deep Learning
Foundation course's notebook (TF1 code). G: z (100) -> Dense 128 -> leaky ReLU
(alpha 0.01) -> Dense 784 -> tanh. D: 784 -> Dense 128 -> leaky ReLU (0.01) ->
Dense 1 (logit; sigmoid in the loss). Losses: sigmoid cross-entropy from logits,
averaged; D's real targets smoothed to 0.9 (smooth = 0.1), d_loss = real + fake;
G's loss against target 1. Adam lr 0.002 for both (TF1's defaults b1 0.9,
b2 0.999, eps 1e-8); batch 100; 100 epochs; z ~ U(-1, 1); images scaled to
[-1, 1] (`batch * 2 - 1`). The same `batch_z` feeds D's and G's update. TF1's
`tf.layers.dense` initialises kernels glorot-uniform and biases to zero. The
lecture saves the generator every epoch and 16 samples per epoch.

Run (after `python -m gan_jax.data.prepare mnist`, once):
  python experiments/mlp_gan_mnist.py [--workdir=runs/mlp_gan_mnist]
  python -m gan_jax.sample --workdir=runs/mlp_gan_mnist --num_samples=16 --out=new.png

Where we differ: TF1's `read_data_sets` trains on 55,000 images (it holds 5,000
out for validation); we train on the standard 60,000 (600 steps per epoch, not
550). The lecture prints the losses of the epoch's last batch; metrics.jsonl
holds epoch means (and `--steps_per_dispatch` only changes how often the host
reads them back).
"""

import dataclasses
import sys

from gan_jax import run_experiment
from gan_jax.config import Config, DataConfig, LossConfig, ModelConfig, OptimizerConfig
from gan_jax.settings import (
    HALF_OPEN_UNIT_INTERVAL,
    POSITIVE,
    UNIT_INTERVAL,
    RunSettings,
    dataset_setting,
    setting,
)

NAME = "mlp_gan_mnist"


@dataclasses.dataclass(frozen=True)
class Settings(RunSettings):
    """The lecture's values."""

    batch_size: int = 100
    num_epochs: int = 100
    checkpoint_every_steps: int = 600  # every epoch of 60,000 / 100
    keep_checkpoints: int = 5  # tf.train.Saver's default
    num_grid_samples: int = 16
    lr: float = setting(0.002, "Adam learning rate of D and G.", POSITIVE)
    b1: float = setting(0.9, "Adam beta1 (TF1 default).")
    b2: float = setting(0.999, "Adam beta2 (TF1 default).")
    smooth: float = setting(
        0.1, "One-sided label smoothing: real targets 1 - smooth.", HALF_OPEN_UNIT_INTERVAL
    )
    alpha: float = setting(0.01, "Leaky ReLU slope.", UNIT_INTERVAL)
    z_size: int = setting(100, "Latent size; z ~ U(-1, 1).", POSITIVE)
    g_hidden_size: int = setting(128, "G's hidden units.", POSITIVE)
    d_hidden_size: int = setting(128, "D's hidden units.", POSITIVE)
    dataset: str = dataset_setting("mnist", "28x28x1")


def config(**overrides) -> Config:
    """The run, from the lecture's values and `overrides` (any `Settings` field)."""
    s = Settings(**overrides)
    adam = OptimizerConfig("adam", learning_rate=s.lr, b1=s.b1, b2=s.b2)
    hidden = {"activation": "leaky_relu", "negative_slope": s.alpha}
    return s.with_gan_options(
        Config(
            experiment=NAME,
            generator=ModelConfig(
                "mlp",
                {
                    "hidden_sizes": [s.g_hidden_size],
                    "output_shape": [28, 28, 1],
                    "output_activation": "tanh",
                    "init_scheme": "glorot_uniform",
                    **hidden,
                },
            ),
            discriminator=ModelConfig(
                "mlp",
                {"hidden_sizes": [s.d_hidden_size], "init_scheme": "glorot_uniform", **hidden},
            ),
            data=DataConfig(s.dataset, scaling="minus_one_one", **s.data_fields()),
            g_optimizer=adam,
            d_optimizer=adam,
            loss=LossConfig(reduction="mean", label_smoothing=s.smooth),
            latent_dim=s.z_size,
            latent_distribution="uniform",
            d_update="joint",
            g_noise="shared",
            **s.run_fields(),
        )
    )


if __name__ == "__main__":
    run_experiment.main(sys.modules[__name__])
