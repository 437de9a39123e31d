"""D2L 20.1: a GAN that learns a 2-D Gaussian.

Document: Dive into Deep Learning, section 20.1 "Generative Adversarial Networks"
(https://d2l.ai/chapter_generative-adversarial-networks/gan.html).
Data: 1000 points X ~ N(0, I) mapped to X A + b with
A = [[1, 2], [-0.1, 0.5]], b = [1, 2], i.e. N(b, A^T A) with
A^T A = [[1.01, 1.95], [1.95, 4.25]]. G = Linear(2, 2); D = 2 -> 5 -> 3 -> 1 with
tanh; every parameter initialised N(0, 0.02); BCE with logits summed over the
batch, D's loss halved ((real + fake) / 2); Adam with PyTorch's default betas,
lr 0.05 for D and 0.005 for G; latent dimension 2; batch 8; 20 epochs. G's step
reuses the latents of D's step, as `update_D`/`update_G` are called with one Z.

Run:
  python experiments/gaussian_2d.py [--workdir=runs/gaussian_2d] [--seed=0]

Expected (D2L): loss_D 0.693, loss_G 0.693. At the end this prints the learned
mean and covariance against the target and the 2-Wasserstein distance between
the two Gaussians, and writes them to <workdir>/gaussian_fit.json.

Where we differ: D2L's DataLoader batches are drawn by torch's shuffler; ours by
`jax.random.permutation` per epoch (1000 / 8 leaves no partial batch either way).
"""

import dataclasses
import json
import sys
from typing import Literal

import numpy as np

from gan_jax import run_experiment
from gan_jax.config import Config, DataConfig, LossConfig, ModelConfig, OptimizerConfig
from gan_jax.evaluation import Evaluator
from gan_jax.metric_writer import epoch_records, read_metrics
from gan_jax.settings import POSITIVE, WIDTHS, RunSettings, setting
from gan_jax.state import build_gan, for_sampling
from gan_jax.workdir import gaussian_fit_file, metrics_file

NAME = "gaussian_2d"


@dataclasses.dataclass(frozen=True)
class Settings(RunSettings):
    """D2L's values."""

    batch_size: int = 8
    num_epochs: int = 20
    checkpoint_every_steps: int = 1000
    num_grid_samples: int = 100  # points in each epoch's scatter plot, as D2L plots 100
    lr_d: float = setting(0.05, "Discriminator Adam learning rate.", POSITIVE)
    lr_g: float = setting(0.005, "Generator Adam learning rate.", POSITIVE)
    latent_dim: int = setting(2, "Dimension of G's input z ~ N(0, I).", POSITIVE)
    num_points: int = setting(1000, "Size of the training set.", POSITIVE)
    d_hidden: tuple[int, ...] = setting((5, 3), "Widths of D's tanh hidden layers.", WIDTHS)
    init_scheme: Literal["normal_0.02", "torch", "lecun_normal", "glorot_uniform"] = setting(
        "normal_0.02", "Parameter initialisation (D2L: every parameter ~ N(0, 0.02))."
    )
    num_fit_samples: int = setting(
        100_000, "Generated points used to fit the learned Gaussian (after training).", POSITIVE
    )


def config(**overrides) -> Config:
    """The run, from D2L's values and `overrides` (any `Settings` field)."""
    s = Settings(**overrides)
    return s.with_gan_options(
        Config(
            experiment=NAME,
            generator=ModelConfig(
                "mlp", {"hidden_sizes": [], "output_shape": [2], "init_scheme": s.init_scheme}
            ),
            discriminator=ModelConfig(
                "mlp",
                {
                    "hidden_sizes": list(s.d_hidden),
                    "activation": "tanh",
                    "init_scheme": s.init_scheme,
                },
            ),
            data=DataConfig(
                "gaussian_2d",
                scaling="none",
                kwargs={"num_examples": s.num_points},
                **s.data_fields(),
            ),
            g_optimizer=OptimizerConfig("adam", learning_rate=s.lr_g),
            d_optimizer=OptimizerConfig("adam", learning_rate=s.lr_d),
            loss=LossConfig(reduction="sum", d_loss_weight=0.5),
            latent_dim=s.latent_dim,
            latent_distribution="normal",
            d_update="joint",
            g_noise="shared",
            **s.run_fields(),
        )
    )


def report(run: run_experiment.Finished) -> None:
    """D2L's final losses, and the learned Gaussian against the target (also to a file)."""
    workdir = run.options.workdir
    final = epoch_records(read_metrics(metrics_file(workdir)))[-1]
    # The W2 fit of `python -m gan_jax.evaluate` (fixed sampling key, seed 0).
    evaluator = Evaluator(run.config, num_samples=run.settings.num_fit_samples)
    fit = evaluator(build_gan(run.config), for_sampling(run.state))
    with open(gaussian_fit_file(workdir), "w") as f:
        json.dump(fit, f, indent=2)

    def show(matrix):
        return np.array(matrix).round(3).tolist()

    print(f"loss_D {final['loss_d']:.3f}, loss_G {final['loss_g']:.3f}")
    print(f"learned mean {show(fit['mean'])}, target {show(fit['target_mean'])}")
    print(f"learned covariance {show(fit['cov'])}, target {show(fit['target_cov'])}")
    print(f"W2 to the target Gaussian: {fit['w2']:.4f}")


if __name__ == "__main__":
    run_experiment.main(sys.modules[__name__])
