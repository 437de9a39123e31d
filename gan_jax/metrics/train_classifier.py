"""Trains the classifier of a labelled data set that the sample-quality metrics use, and saves it.

  python -m gan_jax.metrics.train_classifier [--dataset=mnist] [--out_dir=DIR]

Reads the prepared set (`python -m gan_jax.data.prepare NAME`), trains its
`DomainClassifier` on the training split, reports its accuracy on the test split (MNIST's
10k test images) or, for a set with a training split only, on every 10th training image,
which it never trains on, and saves it (Orbax parameters plus `info.json`) to `--out_dir`:
by default where scoring looks (`~/.cache/gan_jax/mnist_classifier` for MNIST,
`~/.cache/gan_jax/classifiers/<variant>-<data digest>` for any other set). Training is
deterministic given `--seed`.
"""

import dataclasses

from absl import flags

from gan_jax import command
from gan_jax.metrics import domain_classifier
from gan_jax.metrics.classifier_data import labelled_set
from gan_jax.metrics.classifier_store import MNIST
from gan_jax.settings import POSITIVE_OR_NONE

_DATA_DIR = command.define_data_dir()
_DATASET = flags.DEFINE_string(
    "dataset",
    MNIST,
    "The prepared, labelled data set: mnist, pokemon, fashion_mnist, an image folder's name...",
)
_SEED = flags.DEFINE_integer(
    "seed", None, "Seed of initialisation, augmentation and data order (default: 0)."
)
_NUM_EPOCHS = flags.DEFINE_integer(
    "num_epochs",
    None,
    "Training epochs (default: 8 for MNIST; for another set, enough for about 1,000 steps, "
    "at least 2).",
    lower_bound=1,
)
_BATCH_SIZE = flags.DEFINE_integer(
    "batch_size", None, "Examples per step (default: 128, or the set's size).", lower_bound=1
)
_NUM_EXAMPLES = flags.DEFINE_integer(
    "num_examples", None, "Train on the first N examples only (default: all).", lower_bound=1
)
_OUT_DIR = flags.DEFINE_string(
    "out_dir", None, "Where to save the classifier (default: where scoring looks for it)."
)
_LEARNING_RATE = flags.DEFINE_float(
    "learning_rate", None, "Adam's peak (cosine-decayed) rate (default: 2e-3)."
)
_MAX_SHIFT = flags.DEFINE_integer(
    "max_shift", None, "Random translation in pixels (0: none; default: 1).", lower_bound=0
)
_FLIP = flags.DEFINE_bool(
    "flip", None, "Mirror a random half of each batch left-right (default: for pokemon only)."
)
_MIN_ACCURACY = flags.DEFINE_float(
    "min_accuracy",
    None,
    "Refuse to save a classifier below this held-out accuracy (default: 0.99 for MNIST, else 0).",
)
command.validate("learning_rate", POSITIVE_OR_NONE)


def main(argv) -> None:
    del argv
    name = _DATASET.value
    data = labelled_set(name, _DATA_DIR.value)
    chosen = {
        "seed": _SEED.value,
        "num_epochs": _NUM_EPOCHS.value,
        "batch_size": _BATCH_SIZE.value,
        "learning_rate": _LEARNING_RATE.value,
        "max_shift": _MAX_SHIFT.value,
        "num_examples": _NUM_EXAMPLES.value,
        "flip": _FLIP.value,
    }
    settings = dataclasses.replace(
        domain_classifier.default_settings(data),
        **{key: value for key, value in chosen.items() if value is not None},
    )
    min_accuracy = _MIN_ACCURACY.value
    if min_accuracy is None:
        min_accuracy = 0.99 if name == MNIST else 0.0
    out_dir = _OUT_DIR.value or domain_classifier.set_classifier_dir(data)
    _, info = domain_classifier.train_and_save(out_dir, data, settings, min_accuracy=min_accuracy)
    print(f"{data.held_out_name} accuracy {info['held_out_accuracy']:.4f}; saved to {out_dir}")


if __name__ == "__main__":
    command.run(main)
