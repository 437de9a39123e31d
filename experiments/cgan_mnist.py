"""The conditional MNIST GAN of "Make Your Own GAN" (PyTorch), one example at a time.

Document: ../shared/seeds/004. D: Linear(784 + 10, 200) -> LeakyReLU(0.02) ->
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

from absl import flags

from gan_jax import common_flags
from gan_jax.config import Config, DataConfig, LossConfig, ModelConfig, OptimizerConfig

_LR = flags.DEFINE_float("lr", 0.0001, "Adam learning rate of D and G.")
_HIDDEN = flags.DEFINE_integer("hidden_size", 200, "Hidden units of D and G.")
_SLOPE = flags.DEFINE_float("negative_slope", 0.02, "LeakyReLU slope.")
_LATENT = flags.DEFINE_integer("latent_dim", 100, "Latent size; z ~ N(0, 1).")
_SHUFFLE = flags.DEFINE_bool("shuffle", False, "Shuffle the images each epoch.")
common_flags.positive("lr", "hidden_size", "latent_dim")
common_flags.set_defaults(
    workdir="runs/cgan_mnist",
    batch_size=1,
    num_epochs=12,
    checkpoint_every_steps=60_000,  # every epoch at batch 1
    steps_per_dispatch=10_000,
    num_grid_samples=100,  # 10 per label
)


def get_config() -> Config:
    """The run's config, from the flags."""
    adam = OptimizerConfig("adam", learning_rate=_LR.value)
    layers = {
        "hidden_sizes": [_HIDDEN.value],
        "activation": "leaky_relu",
        "negative_slope": _SLOPE.value,
        "layer_norm": True,
        "num_classes": 10,
        "init_scheme": "torch",
    }
    return Config(
        experiment="cgan_mnist",
        generator=ModelConfig(
            "mlp", {**layers, "output_shape": [28, 28, 1], "output_activation": "sigmoid"}
        ),
        discriminator=ModelConfig("mlp", layers),
        data=DataConfig(
            "mnist",
            scaling="zero_one",
            sampling="epoch" if _SHUFFLE.value else "sequential",
            **common_flags.data_fields(),
        ),
        g_optimizer=adam,
        d_optimizer=adam,
        loss=LossConfig(reduction="mean"),
        latent_dim=_LATENT.value,
        latent_distribution="normal",
        num_classes=10,
        d_update="separate",
        g_noise="fresh",
        **common_flags.config_fields(),
    )


def main(argv):
    del argv
    common_flags.train(get_config())


if __name__ == "__main__":
    common_flags.run(main)
