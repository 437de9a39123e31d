"""D2L 20.1: a GAN that learns a 2-D Gaussian.

Document: Dive into Deep Learning, section 20.1 "Generative Adversarial Networks"
(../shared/seeds/003). Data: 1000 points X ~ N(0, I) mapped to X A + b with
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

import json
import os

import numpy as np
from absl import flags

from gan_jax import common_flags
from gan_jax.config import Config, DataConfig, LossConfig, ModelConfig, OptimizerConfig
from gan_jax.evaluation import Evaluator
from gan_jax.metric_writer import read_metrics
from gan_jax.state import build_gan

_LR_D = flags.DEFINE_float("lr_d", 0.05, "Discriminator Adam learning rate.")
_LR_G = flags.DEFINE_float("lr_g", 0.005, "Generator Adam learning rate.")
_LATENT_DIM = flags.DEFINE_integer("latent_dim", 2, "Dimension of G's input z ~ N(0, I).")
_NUM_POINTS = flags.DEFINE_integer("num_points", 1000, "Size of the training set.")
_D_HIDDEN = flags.DEFINE_list("d_hidden", ["5", "3"], "Widths of D's tanh hidden layers.")
_INIT_SCHEME = flags.DEFINE_enum(
    "init_scheme",
    "normal_0.02",
    ["normal_0.02", "torch", "lecun_normal", "glorot_uniform"],
    "Parameter initialisation (D2L: every parameter ~ N(0, 0.02)).",
)
_NUM_FIT_SAMPLES = flags.DEFINE_integer(
    "num_fit_samples", 100_000, "Generated points used to fit the learned Gaussian."
)
common_flags.positive("lr_d", "lr_g", "latent_dim", "num_points", "num_fit_samples")
common_flags.set_defaults(
    workdir="runs/gaussian_2d",
    batch_size=8,
    num_epochs=20,
    checkpoint_every_steps=1000,
    num_grid_samples=100,  # points in each epoch's scatter plot, as D2L plots 100
)


def get_config() -> Config:
    """The run's config, from the flags."""
    init = _INIT_SCHEME.value
    return Config(
        experiment="gaussian_2d",
        generator=ModelConfig(
            "mlp", {"hidden_sizes": [], "output_shape": [2], "init_scheme": init}
        ),
        discriminator=ModelConfig(
            "mlp",
            {
                "hidden_sizes": [int(w) for w in _D_HIDDEN.value],
                "activation": "tanh",
                "init_scheme": init,
            },
        ),
        data=DataConfig(
            "gaussian_2d",
            scaling="none",
            kwargs={"num_examples": _NUM_POINTS.value},
            **common_flags.data_fields(),
        ),
        g_optimizer=OptimizerConfig("adam", learning_rate=_LR_G.value),
        d_optimizer=OptimizerConfig("adam", learning_rate=_LR_D.value),
        loss=LossConfig(reduction="sum", d_loss_weight=0.5),
        latent_dim=_LATENT_DIM.value,
        latent_distribution="normal",
        d_update="joint",
        g_noise="shared",
        **common_flags.config_fields(),
    )


def main(argv):
    del argv
    config = get_config()
    workdir = common_flags.WORKDIR.value
    state = common_flags.train(config)
    final = read_metrics(os.path.join(workdir, "metrics.jsonl"))[-1]
    # The W2 fit of `python -m gan_jax.evaluate` (fixed sampling key, seed 0).
    fit = Evaluator(config, num_samples=_NUM_FIT_SAMPLES.value)(build_gan(config), state)
    with open(os.path.join(workdir, "gaussian_fit.json"), "w") as f:
        json.dump(fit, f, indent=2)

    def show(matrix):
        return np.array(matrix).round(3).tolist()

    print(f"loss_D {final['loss_d']:.3f}, loss_G {final['loss_g']:.3f}")
    print(f"learned mean {show(fit['mean'])}, target {show(fit['target_mean'])}")
    print(f"learned covariance {show(fit['cov'])}, target {show(fit['target_cov'])}")
    print(f"W2 to the target Gaussian: {fit['w2']:.4f}")


if __name__ == "__main__":
    common_flags.run(main)
