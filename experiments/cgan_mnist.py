"""The conditional MNIST GAN of "Make Your Own GAN" (PyTorch), one example at a time.

Document: "Conditional GAN - MNIST", a blog post by 송용호 (Song Yong-ho, 2024-04-26)
on the book's conditional GAN. D: Linear(784 + 10, 200) -> LeakyReLU(0.02) ->
LayerNorm(200) -> Linear(200, 1) -> Sigmoid; G: Linear(100 + 10, 200) ->
LeakyReLU(0.02) -> LayerNorm(200) -> Linear(200, 784) -> Sigmoid; the one-hot
label is concatenated to each network's input. BCELoss; Adam lr 0.0001 for both
(the book's values, which the post leaves implicit); z ~ N(0, 1); images
pixel / 255 in [0, 1]; 12 epochs over the 60,000 training images in file order.

Each step, as the document's loop: D trains on the real image with its label
(target 1); D trains on G's image for a random label (target 0); G trains through
D with a different random label (target 1). That is two D optimizer steps and one
G step per example (`d_update='separate'`), batch 1: 720,000 steps, run inside a
compiled loop. `--batch_size` trains on batches instead. Each epoch's grid has one
row per label.

Run (after `python -m gan_jax.data.prepare mnist`, once):
  python experiments/cgan_mnist.py
  python -m gan_jax.sample --workdir=runs/cgan_mnist --label=7 --num_samples=16 --out=sevens.png

Where we differ: the book's D ends in Sigmoid + BCELoss; we compute BCE from D's
logit (the same function, without BCELoss's clamp of log at -100). The book uses
PyTorch's default initialisation; so do we. `--shuffle` visits the images in a
new random order each epoch instead of the document's fixed order.
"""

import dataclasses
import sys

from gan_jax import run_experiment
from gan_jax.config import Config, DataConfig, LossConfig, ModelConfig, OptimizerConfig
from gan_jax.settings import POSITIVE, RunSettings, dataset_setting, setting

NAME = "cgan_mnist"


@dataclasses.dataclass(frozen=True)
class Settings(RunSettings):
    """The book's values."""

    batch_size: int = 1
    num_epochs: int = 12
    checkpoint_every_steps: int = 60_000  # every epoch at batch 1
    steps_per_dispatch: int = 10_000
    num_grid_samples: int = 100  # 10 per label
    lr: float = setting(0.0001, "Adam learning rate of D and G.", POSITIVE)
    hidden_size: int = setting(200, "Hidden units of D and G.", POSITIVE)
    negative_slope: float = setting(0.02, "LeakyReLU slope.")
    latent_dim: int = setting(100, "Latent size; z ~ N(0, 1).", POSITIVE)
    shuffle: bool = setting(False, "Shuffle the images each epoch.")
    dataset: str = dataset_setting("mnist", "labelled 28x28x1")


def config(**overrides) -> Config:
    """The run, from the book's values and `overrides` (any `Settings` field)."""
    s = Settings(**overrides)
    adam = OptimizerConfig("adam", learning_rate=s.lr)
    layers = {
        "hidden_sizes": [s.hidden_size],
        "activation": "leaky_relu",
        "negative_slope": s.negative_slope,
        "layer_norm": True,
        "num_classes": 10,
        "init_scheme": "torch",
    }
    return s.with_gan_options(
        Config(
            experiment=NAME,
            generator=ModelConfig(
                "mlp", {**layers, "output_shape": [28, 28, 1], "output_activation": "sigmoid"}
            ),
            discriminator=ModelConfig("mlp", layers),
            data=DataConfig(
                s.dataset,
                scaling="zero_one",
                sampling="epoch" if s.shuffle else "sequential",
                **s.data_fields(),
            ),
            g_optimizer=adam,
            d_optimizer=adam,
            loss=LossConfig(reduction="mean"),
            latent_dim=s.latent_dim,
            latent_distribution="normal",
            num_classes=10,
            d_update="separate",
            g_noise="fresh",
            **s.run_fields(),
        )
    )


if __name__ == "__main__":
    run_experiment.main(sys.modules[__name__])
