"""The university lecture's deeper MLP GAN on MNIST, with dropout (PyTorch).

Document: ../shared/seeds/002 (KUNLP lecture). D: 784 -> 256 -> 256 -> 256 -> 1,
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

from absl import flags

from gan_jax import common_flags
from gan_jax.config import Config, DataConfig, LossConfig, ModelConfig, OptimizerConfig

_LR = flags.DEFINE_float("lr", 0.0002, "Adam learning rate of D and G.")
_B1 = flags.DEFINE_float("b1", 0.9, "Adam beta1 (PyTorch default).")
_B2 = flags.DEFINE_float("b2", 0.999, "Adam beta2 (PyTorch default).")
_G_LOSS = flags.DEFINE_enum(
    "g_loss",
    "non_saturating",
    ["non_saturating", "minimax"],
    "G's loss: -log D(G(z)) (non_saturating) or log(1 - D(G(z))) (minimax).",
)
_HIDDEN = flags.DEFINE_integer("hidden_node", 256, "Hidden units of D and G.")
_NUM_HIDDEN = flags.DEFINE_integer("num_hidden_layers", 3, "Hidden layers of D and G.")
_DROPOUT = flags.DEFINE_float("dropout", 0.1, "Dropout rate after each hidden layer.")
_LATENT = flags.DEFINE_integer("g_input_node", 100, "Latent size; z ~ N(0, 1).")
common_flags.positive("lr", "hidden_node", "num_hidden_layers", "g_input_node")
flags.register_validator("dropout", lambda v: 0 <= v < 1, message="--dropout must be in [0, 1)")
common_flags.set_defaults(
    workdir="runs/mlp_gan_mnist_deep",
    batch_size=100,
    num_epochs=100,
    checkpoint_every_steps=6000,  # every 10 epochs of 60,000 / 100
    keep_checkpoints=10,
)


def get_config() -> Config:
    """The run's config, from the flags."""
    adam = OptimizerConfig("adam", learning_rate=_LR.value, b1=_B1.value, b2=_B2.value)
    layers = {
        "hidden_sizes": [_HIDDEN.value] * _NUM_HIDDEN.value,
        "activation": "leaky_relu",
        "negative_slope": 0.01,  # nn.LeakyReLU()'s default
        "dropout_rate": _DROPOUT.value,
        "init_scheme": "torch",
    }
    return Config(
        experiment="mlp_gan_mnist_deep",
        generator=ModelConfig(
            "mlp", {**layers, "output_shape": [28, 28, 1], "output_activation": "tanh"}
        ),
        discriminator=ModelConfig("mlp", layers),
        data=DataConfig("mnist", scaling="minus_one_one", **common_flags.data_fields()),
        g_optimizer=adam,
        d_optimizer=adam,
        loss=LossConfig(reduction="mean", generator_loss=_G_LOSS.value),
        latent_dim=_LATENT.value,
        latent_distribution="normal",
        d_update="joint",
        g_noise="fresh",
        **common_flags.config_fields(),
    )


def main(argv):
    del argv
    common_flags.train(get_config())


if __name__ == "__main__":
    common_flags.run(main)
