"""Foster, Generative Deep Learning, ch. 4: a convolutional GAN on Quick, Draw! camels.

Document: the Korean study notes "GAN 생성적 적대 신경망" ("GAN: generative adversarial
networks") on the chapter: the book's Keras `GAN` class and its camel run.
D: Conv2D filters [64, 64, 128, 128], kernel 5, strides [2, 2, 2, 1], padding
'same', ReLU, Dropout(0.4) after each, no BatchNorm; Flatten -> Dense(1) sigmoid.
G: Dense(7*7*64) -> BatchNorm(momentum 0.9) -> ReLU -> Reshape(7, 7, 64); then
UpSampling2D + Conv2D(128, 5), UpSampling2D + Conv2D(64, 5), Conv2DTranspose(64, 5,
stride 1), Conv2DTranspose(1, 5, stride 1), BatchNorm(0.9) + ReLU between, tanh
out. Kernels RandomNormal(0, 0.02). RMSprop (Keras: rho 0.9, epsilon 1e-7 added
to the root) with lr 0.0008 for D and 0.0004 for G; z_dim 100, z ~ N(0, 1);
binary cross-entropy. Each iteration: D's `train_on_batch` on a random real batch
(target 1), then on a fake batch (target 0), then G through the frozen D on fresh
latents (target 1). Batch 64, 6,000 iterations; images (x - 127.5) / 127.5.

The book's "epoch" is one iteration, and so is ours here: `--num_epochs` counts
batches (steps_per_epoch is 1) and metrics.jsonl has one record per iteration.
The book saves samples and weights every 5 iterations; writing a grid (or a
checkpoint) costs more than 5 iterations do on an accelerator, so the defaults are
every 100 iterations for grids and 500 for checkpoints (`--sample_every_epochs=5
--checkpoint_every_steps=5` for the book's cadence).

At the end it runs the book's memorisation check: for generated images, the
training image nearest in L1 (mean |a - b| in [0, 1] pixels), written side by
side to `<workdir>/memorisation.png` and reported as `nn_l1_mean`.

Run (after `python -m gan_jax.data.prepare quickdraw_camel [--manual_path=camel.npy]`):
  python experiments/quickdraw_camel.py

Where we differ: Keras' `generator.predict` makes D's fake batch with G's BatchNorm
in inference mode (moving averages); we make it in training mode (batch
statistics), as G's own update does in both.
"""

import dataclasses
import sys

from gan_jax import run_experiment
from gan_jax.config import Config, DataConfig, LossConfig, ModelConfig, OptimizerConfig
from gan_jax.evaluation import Evaluator
from gan_jax.settings import (
    HALF_OPEN_UNIT_INTERVAL,
    OPEN_UNIT_INTERVAL,
    POSITIVE,
    Check,
    RunSettings,
    dataset_setting,
    setting,
)
from gan_jax.state import build_gan, for_sampling
from gan_jax.workdir import memorisation_plot

NAME = "quickdraw_camel"
BOOK_MEMORISATION_QUERIES = 64
# The book's networks have four conv layers each; their widths may change, not their count.
FOUR_WIDTHS = Check(lambda v: len(v) == 4 and all(w > 0 for w in v), "must hold 4 positive widths")


@dataclasses.dataclass(frozen=True)
class Settings(RunSettings):
    """The book's values."""

    batch_size: int = 64
    num_epochs: int = 6000
    sample_every_epochs: int = 100
    checkpoint_every_steps: int = 500
    lr_d: float = setting(0.0008, "D's RMSprop learning rate.", POSITIVE)
    lr_g: float = setting(0.0004, "G's RMSprop learning rate.", POSITIVE)
    rho: float = setting(0.9, "RMSprop's decay (Keras rho).", OPEN_UNIT_INTERVAL)
    rmsprop_eps: float = setting(1e-7, "RMSprop's epsilon (Keras: added to the root).", POSITIVE)
    z_dim: int = setting(100, "Latent size; z ~ N(0, 1).", POSITIVE)
    d_dropout: float = setting(
        0.4, "Dropout after each of D's conv layers.", HALF_OPEN_UNIT_INTERVAL
    )
    g_batch_norm_momentum: float = setting(0.9, "G's BatchNorm momentum.", OPEN_UNIT_INTERVAL)
    g_widths: tuple[int, ...] = setting(
        (64, 128, 64, 64),
        "G's channels: of its 7x7 start, then of its first three conv layers (the fourth "
        "makes the one grayscale channel).",
        FOUR_WIDTHS,
    )
    # MNIST (`--dataset=mnist`) gives a real-data run offline, where no camels can be had.
    dataset: str = dataset_setting("quickdraw_camel", "28x28x1")
    d_widths: tuple[int, ...] = setting(
        (64, 64, 128, 128), "Channels of D's four conv layers.", FOUR_WIDTHS
    )


def config(**overrides) -> Config:
    """The run, from the book's values and `overrides` (any `Settings` field)."""
    s = Settings(**overrides)

    def rmsprop(learning_rate: float) -> OptimizerConfig:
        return OptimizerConfig(
            "rmsprop", learning_rate=learning_rate, decay=s.rho, eps=s.rmsprop_eps
        )

    return s.with_gan_options(
        Config(
            experiment=NAME,
            generator=ModelConfig(
                "upsampling_generator",
                {
                    "initial_shape": [7, 7, s.g_widths[0]],
                    "upsample": [2, 2, 1, 1],
                    "filters": [*s.g_widths[1:], 1],
                    "kernel_sizes": [5, 5, 5, 5],
                    "strides": [1, 1, 1, 1],
                    "batch_norm_momentum": s.g_batch_norm_momentum,
                    "activation": "relu",
                    "init_scheme": "normal_0.02",
                },
            ),
            discriminator=ModelConfig(
                "conv_discriminator",
                {
                    "filters": list(s.d_widths),
                    "kernel_sizes": [5, 5, 5, 5],
                    "strides": [2, 2, 2, 1],
                    "batch_norm_momentum": None,
                    "activation": "relu",
                    "dropout_rate": s.d_dropout,
                    "init_scheme": "normal_0.02",
                },
            ),
            data=DataConfig(
                s.dataset,
                scaling="minus_one_one",
                sampling="with_replacement",  # np.random.randint batches
                **s.data_fields(),
            ),
            g_optimizer=rmsprop(s.lr_g),
            d_optimizer=rmsprop(s.lr_d),
            loss=LossConfig(reduction="mean"),
            latent_dim=s.z_dim,
            latent_distribution="normal",
            d_update="separate",
            g_noise="fresh",
            steps_per_epoch=1,  # the book's epoch is one batch
            **s.run_fields(),
        )
    )


def report(run: run_experiment.Finished) -> None:
    """The book's memorisation check: generated images beside their nearest training images."""
    workdir = run.options.workdir
    queries = run.options.memorisation_queries or BOOK_MEMORISATION_QUERIES
    evaluator = Evaluator(
        run.config, data_dir=run.config.data.data_dir, memorisation_queries=queries
    )
    pairs = memorisation_plot(workdir)
    scores = evaluator.memorisation(build_gan(run.config), for_sampling(run.state), pairs)
    print(
        f"memorisation check: mean L1 to the nearest training image {scores['nn_l1_mean']:.4f} "
        f"(min {scores['nn_l1_min']:.4f}); pairs in {pairs}"
    )


if __name__ == "__main__":
    run_experiment.main(sys.modules[__name__])
