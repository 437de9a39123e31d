"""The Udacity deep-learning lecture's MLP GAN on MNIST, with one-sided label smoothing.

Document: ../shared/seeds/001 (TF1 code). G: z (100) -> Dense 128 -> leaky ReLU
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

from absl import flags

from gan_jax import common_flags
from gan_jax.config import Config, DataConfig, LossConfig, ModelConfig, OptimizerConfig

_LR = flags.DEFINE_float("lr", 0.002, "Adam learning rate of D and G.")
_B1 = flags.DEFINE_float("b1", 0.9, "Adam beta1 (TF1 default).")
_B2 = flags.DEFINE_float("b2", 0.999, "Adam beta2 (TF1 default).")
_SMOOTH = flags.DEFINE_float("smooth", 0.1, "One-sided label smoothing: real targets 1 - smooth.")
_ALPHA = flags.DEFINE_float("alpha", 0.01, "Leaky ReLU slope.")
_Z_SIZE = flags.DEFINE_integer("z_size", 100, "Latent size; z ~ U(-1, 1).")
_G_HIDDEN = flags.DEFINE_integer("g_hidden_size", 128, "G's hidden units.")
_D_HIDDEN = flags.DEFINE_integer("d_hidden_size", 128, "D's hidden units.")
common_flags.positive("lr", "z_size", "g_hidden_size", "d_hidden_size")
flags.register_validator("smooth", lambda v: 0 <= v < 1, message="--smooth must be in [0, 1)")
flags.register_validator("alpha", lambda v: 0 <= v <= 1, message="--alpha must be in [0, 1]")
common_flags.set_defaults(
    workdir="runs/mlp_gan_mnist",
    batch_size=100,
    num_epochs=100,
    checkpoint_every_steps=600,  # every epoch of 60,000 / 100
    keep_checkpoints=5,  # tf.train.Saver's default
    num_grid_samples=16,
)


def get_config() -> Config:
    """The run's config, from the flags."""
    adam = OptimizerConfig("adam", learning_rate=_LR.value, b1=_B1.value, b2=_B2.value)
    hidden = {"activation": "leaky_relu", "negative_slope": _ALPHA.value}
    return Config(
        experiment="mlp_gan_mnist",
        generator=ModelConfig(
            "mlp",
            {
                "hidden_sizes": [_G_HIDDEN.value],
                "output_shape": [28, 28, 1],
                "output_activation": "tanh",
                "init_scheme": "glorot_uniform",
                **hidden,
            },
        ),
        discriminator=ModelConfig(
            "mlp", {"hidden_sizes": [_D_HIDDEN.value], "init_scheme": "glorot_uniform", **hidden}
        ),
        data=DataConfig("mnist", scaling="minus_one_one", **common_flags.data_fields()),
        g_optimizer=adam,
        d_optimizer=adam,
        loss=LossConfig(reduction="mean", label_smoothing=_SMOOTH.value),
        latent_dim=_Z_SIZE.value,
        latent_distribution="uniform",
        d_update="joint",
        g_noise="shared",
        **common_flags.config_fields(),
    )


def main(argv):
    del argv
    common_flags.train(get_config())


if __name__ == "__main__":
    common_flags.run(main)
