"""The university lecture's deeper MLP GAN on MNIST, with dropout (PyTorch).

Document: "Generative Adversarial Network", lecture notes of the Konkuk University NLP
lab (KUNLP, http://nlp.konkuk.ac.kr), edited by Harksoo Kim, with their code
(https://github.com/KUNLP/Lecture). D: 784 -> 256 -> 256 -> 256 -> 1,
each hidden layer Linear -> LeakyReLU() (slope 0.01) -> Dropout(0.1), sigmoid
output; G: 100 -> 256 -> 256 -> 256 -> 784, the same hidden layers, tanh output.
BCELoss (mean); D's cost = BCE(D(x), 1) + BCE(D(G(z)), 0), G's cost
BCE(D(G(z')), 1) with fresh noise z' ~ N(0, 1); Adam lr 0.0002; batch 100; 100
epochs; images Normalize(0.5, 0.5) to [-1, 1]; PyTorch's default initialisation;
the generator saved every 10 epochs. Both networks train with dropout on (G too,
as `G.train()` puts its Dropout layers in training mode).

The lecture states the minimax objective min_G max_D E[log D(x)] + E[log(1 - D(G(z)))]
and switches G to the non-saturating -E[log D(G(z))]: `--g_loss` picks either.

Run (after `python -m gan_jax.data.prepare mnist`, once):
  python experiments/mlp_gan_mnist_deep.py [--g_loss=minimax]

Where we differ: the lecture's optimiser line is a blank to fill in; we use Adam
(lr 0.0002 as given) with PyTorch's default betas (--b1/--b2 change them). Its
loop `range(epoch + 1)` makes 101 passes; we make `--num_epochs` (100) passes.
The lecture's BCELoss clamps log at -100; we compute BCE from logits.
"""

import dataclasses
import sys
from typing import Literal

from gan_jax import run_experiment
from gan_jax.config import Config, DataConfig, LossConfig, ModelConfig, OptimizerConfig
from gan_jax.settings import (
    HALF_OPEN_UNIT_INTERVAL,
    POSITIVE,
    RunSettings,
    dataset_setting,
    setting,
)

NAME = "mlp_gan_mnist_deep"


@dataclasses.dataclass(frozen=True)
class Settings(RunSettings):
    """The lecture's values."""

    batch_size: int = 100
    num_epochs: int = 100
    checkpoint_every_steps: int = 6000  # every 10 epochs of 60,000 / 100
    keep_checkpoints: int = 10
    lr: float = setting(0.0002, "Adam learning rate of D and G.", POSITIVE)
    b1: float = setting(0.9, "Adam beta1 (PyTorch default).")
    b2: float = setting(0.999, "Adam beta2 (PyTorch default).")
    g_loss: Literal["non_saturating", "minimax"] = setting(
        "non_saturating",
        "G's loss: -log D(G(z)) (non_saturating) or log(1 - D(G(z))) (minimax).",
    )
    hidden_node: int = setting(256, "Hidden units of D and G.", POSITIVE)
    num_hidden_layers: int = setting(3, "Hidden layers of D and G.", POSITIVE)
    dropout: float = setting(0.1, "Dropout rate after each hidden layer.", HALF_OPEN_UNIT_INTERVAL)
    g_input_node: int = setting(100, "Latent size; z ~ N(0, 1).", POSITIVE)
    dataset: str = dataset_setting("mnist", "28x28x1")


def config(**overrides) -> Config:
    """The run, from the lecture's values and `overrides` (any `Settings` field)."""
    s = Settings(**overrides)
    adam = OptimizerConfig("adam", learning_rate=s.lr, b1=s.b1, b2=s.b2)
    layers = {
        "hidden_sizes": [s.hidden_node] * s.num_hidden_layers,
        "activation": "leaky_relu",
        "negative_slope": 0.01,  # nn.LeakyReLU()'s default
        "dropout_rate": s.dropout,
        "init_scheme": "torch",
    }
    return s.with_gan_options(
        Config(
            experiment=NAME,
            generator=ModelConfig(
                "mlp", {**layers, "output_shape": [28, 28, 1], "output_activation": "tanh"}
            ),
            discriminator=ModelConfig("mlp", layers),
            data=DataConfig(s.dataset, scaling="minus_one_one", **s.data_fields()),
            g_optimizer=adam,
            d_optimizer=adam,
            loss=LossConfig(reduction="mean", generator_loss=s.g_loss),
            latent_dim=s.g_input_node,
            latent_distribution="normal",
            d_update="joint",
            g_noise="fresh",
            **s.run_fields(),
        )
    )


if __name__ == "__main__":
    run_experiment.main(sys.modules[__name__])
