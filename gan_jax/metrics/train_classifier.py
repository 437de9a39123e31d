"""Trains the MNIST classifier that the sample-quality metrics use, and saves it.

  python -m gan_jax.metrics.train_classifier [--out_dir=DIR] [--num_epochs=8]

Reads the prepared MNIST (`python -m gan_jax.data.prepare mnist`), trains
`MnistClassifier` on the 60k training images, reports its accuracy on the 10k test
images and saves it (Orbax parameters plus `info.json`) to `--out_dir`, by default
where `load_classifier()` looks. Training is deterministic given `--seed`.
"""

from absl import flags

from gan_jax import command
from gan_jax.data import source
from gan_jax.metrics import mnist_classifier
from gan_jax.settings import NON_NEGATIVE, POSITIVE

_DEFAULTS = mnist_classifier.DEFAULT_TRAINING
_DATA_DIR = command.define_data_dir()
_SEED = flags.DEFINE_integer(
    "seed", _DEFAULTS.seed, "Seed of initialisation, augmentation and data order."
)
_NUM_EPOCHS = flags.DEFINE_integer(
    "num_epochs", _DEFAULTS.num_epochs, "Training epochs.", lower_bound=1
)
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", _DEFAULTS.batch_size, "Examples per step.", lower_bound=1
)
_NUM_EXAMPLES = flags.DEFINE_integer(
    "num_examples", None, "Train on the first N examples only (default: all).", lower_bound=1
)
_OUT_DIR = flags.DEFINE_string(
    "out_dir", None, "Where to save the classifier (default: ~/.cache/gan_jax/mnist_classifier)."
)
_LEARNING_RATE = flags.DEFINE_float(
    "learning_rate", _DEFAULTS.learning_rate, "Adam's peak (cosine-decayed) rate."
)
_MAX_SHIFT = flags.DEFINE_integer(
    "max_shift", _DEFAULTS.max_shift, "Random translation in pixels (0: none)."
)
_MIN_ACCURACY = flags.DEFINE_float(
    "min_accuracy", 0.99, "Refuse to save a classifier below this test accuracy."
)
command.validate("learning_rate", POSITIVE)
command.validate("max_shift", NON_NEGATIVE)


def main(argv) -> None:
    del argv
    data_dir = _DATA_DIR.value
    train = source.load("mnist", "train", data_dir)
    test = source.load("mnist", "test", data_dir)
    settings = mnist_classifier.TrainingSettings(
        seed=_SEED.value,
        num_epochs=_NUM_EPOCHS.value,
        batch_size=_BATCH_SIZE.value,
        learning_rate=_LEARNING_RATE.value,
        max_shift=_MAX_SHIFT.value,
        num_examples=_NUM_EXAMPLES.value,
    )
    out_dir = _OUT_DIR.value or mnist_classifier.default_classifier_dir()
    _, info = mnist_classifier.train_and_save(
        out_dir,
        (train.images, train.labels),
        (test.images, test.labels),
        settings,
        min_accuracy=_MIN_ACCURACY.value,
    )
    print(f"test accuracy {info['test_accuracy']:.4f}; saved to {out_dir}")


if __name__ == "__main__":
    command.run(main)
