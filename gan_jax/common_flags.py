"""Flags shared by every experiment, and the entry point that runs one.

Only `experiments/` and the command-line modules import this file: the core
(models, losses, steps, train) takes a `Config` and never reads flags. Each
experiment overrides these defaults with its document's values via
`set_defaults`.
"""

import json
import logging as std_logging
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from absl import app, flags, logging

from gan_jax import interrupts
from gan_jax.config import to_dict
from gan_jax.errors import Interrupted, UserError

# Commands import this module first, before JAX: from here on SIGINT and SIGTERM end
# the process in one line (or, while training, stop it with a checkpoint), even
# during the imports and compilation of start-up.
interrupts.install()

WORKDIR = flags.DEFINE_string(
    "workdir", None, "Run directory (checkpoints, metrics, samples); rerunning resumes it."
)
SEED = flags.DEFINE_integer("seed", 0, "Seed of initialisation, latents, dropout and data order.")
NUM_EPOCHS = flags.DEFINE_integer("num_epochs", 1, "Training epochs.")
BATCH_SIZE = flags.DEFINE_integer("batch_size", 64, "Examples per training step.")
CHECKPOINT_EVERY_STEPS = flags.DEFINE_integer(
    "checkpoint_every_steps", 1000, "Save a checkpoint every this many steps (and at the end)."
)
KEEP_CHECKPOINTS = flags.DEFINE_integer("keep_checkpoints", 3, "How many checkpoints to keep.")
STEPS_PER_DISPATCH = flags.DEFINE_integer(
    "steps_per_dispatch", 1000, "Training steps per jitted call (metrics are read back per call)."
)
NUM_EXAMPLES = flags.DEFINE_integer(
    "num_examples", None, "Train on the first N examples only (default: all)."
)
DATA_DIR = flags.DEFINE_string(
    "data_dir", None, "TFDS data directory (default: $TFDS_DATA_DIR or ~/tensorflow_datasets)."
)
COMPUTE_DTYPE = flags.DEFINE_enum(
    "compute_dtype",
    "float32",
    ["float32", "bfloat16"],
    "Activation dtype; bfloat16 is mixed precision (float32 parameters and optimizer state).",
)
NUM_GRID_SAMPLES = flags.DEFINE_integer(
    "num_grid_samples", 64, "Samples in each epoch's grid (from fixed latents)."
)
SAMPLE_EVERY_EPOCHS = flags.DEFINE_integer(
    "sample_every_epochs", 1, "Write the sample grid and loss plot every this many epochs."
)
PRINT_CONFIG = flags.DEFINE_bool(
    "print_config",
    False,
    "Print the resolved config as JSON and exit without training (nothing is written).",
)
START_OVER = flags.DEFINE_bool(
    "start_over",
    False,
    "Move the run already in --workdir aside (to <workdir>/replaced_<time>/) and train "
    "from scratch, instead of resuming it.",
)

# Evaluation: the `gan_jax.evaluate` command and scoring during training.
EVAL_EVERY_EPOCHS = flags.DEFINE_integer(
    "eval_every_epochs", 0, "Score samples every this many epochs (0: never) into metrics.jsonl."
)
EVAL_NUM_SAMPLES = flags.DEFINE_integer(
    "eval_num_samples", 10_000, "Generated samples per score (classifier FID, IS, coverage)."
)
CLASSIFIER_DIR = flags.DEFINE_string(
    "classifier_dir", None, "The MNIST classifier (default: ~/.cache/gan_jax/mnist_classifier)."
)
MEMORISATION_QUERIES = flags.DEFINE_integer(
    "memorisation_queries", 64, "Generated images compared to their nearest training image."
)
# Restoring a checkpoint: `gan_jax.sample` and `gan_jax.evaluate`.
STEP = flags.DEFINE_integer("step", None, "Checkpoint step to restore (default: the latest).")

for _name in (
    "num_epochs",
    "batch_size",
    "checkpoint_every_steps",
    "keep_checkpoints",
    "steps_per_dispatch",
    "num_grid_samples",
    "sample_every_epochs",
    "eval_num_samples",
):
    flags.register_validator(_name, lambda v: v > 0, message=f"--{_name} must be positive")
flags.register_validator(
    "num_examples", lambda v: v is None or v > 0, message="--num_examples must be positive"
)
for _name in ("eval_every_epochs", "memorisation_queries"):
    flags.register_validator(_name, lambda v: v >= 0, message=f"--{_name} must be >= 0")


def config_fields() -> dict[str, Any]:
    """The shared flags' values as `gan_jax.config.Config` fields (all but the data's)."""
    return {
        "seed": SEED.value,
        "num_epochs": NUM_EPOCHS.value,
        "batch_size": BATCH_SIZE.value,
        "checkpoint_every_steps": CHECKPOINT_EVERY_STEPS.value,
        "keep_checkpoints": KEEP_CHECKPOINTS.value,
        "steps_per_dispatch": STEPS_PER_DISPATCH.value,
        "compute_dtype": COMPUTE_DTYPE.value,
        "num_grid_samples": NUM_GRID_SAMPLES.value,
        "sample_every_epochs": SAMPLE_EVERY_EPOCHS.value,
    }


def data_fields() -> dict[str, Any]:
    """The shared flags' values as `gan_jax.config.DataConfig` fields."""
    return {"data_dir": DATA_DIR.value, "num_examples": NUM_EXAMPLES.value}


def epoch_hooks(config: Any) -> list[Any]:
    """Training-time scoring per `--eval_every_epochs` (an empty list when it is 0)."""
    if not EVAL_EVERY_EPOCHS.value:
        return []
    if EVAL_EVERY_EPOCHS.value % config.sample_every_epochs:
        raise UserError(
            f"--eval_every_epochs={EVAL_EVERY_EPOCHS.value} must be a multiple of "
            f"--sample_every_epochs={config.sample_every_epochs}"
        )
    from gan_jax.evaluation import Evaluator

    evaluator = Evaluator(
        config,
        num_samples=EVAL_NUM_SAMPLES.value,
        data_dir=DATA_DIR.value,
        classifier_dir=CLASSIFIER_DIR.value,
        memorisation_queries=MEMORISATION_QUERIES.value,
    )
    return [evaluator.epoch_hook(EVAL_EVERY_EPOCHS.value)]


def train(config: Any) -> Any:
    """Trains `config` in `--workdir` with the `--eval_every_epochs` hooks; the final state.

    With `--print_config`, prints the config as JSON and exits instead.
    """
    if PRINT_CONFIG.value:
        print(json.dumps(to_dict(config), indent=2))
        sys.exit(0)
    from gan_jax.train import train_and_evaluate

    return train_and_evaluate(
        config, WORKDIR.value, epoch_hooks=epoch_hooks(config), start_over=START_OVER.value
    )


def set_defaults(**defaults: Any) -> None:
    """Overrides shared flags' defaults with an experiment's (its document's) values."""
    for name, value in defaults.items():
        flags.FLAGS.set_default(name, value)


def positive(*names: str) -> None:
    """Registers 'must be positive' validators for an experiment's own numeric flags."""
    for name in names:
        flags.register_validator(name, lambda v: v > 0, message=f"--{name} must be positive")


def run(main: Callable[[Sequence[str]], None], max_args: int = 0) -> None:
    """`app.run(main)`, turning the errors a user can cause into one line and exit code 1.

    SIGINT and SIGTERM end the process with one line and status 128 + signal number
    (130, 143); a training run first saves a checkpoint (see `gan_jax.interrupts`).

    Args:
      main: called with argv.
      max_args: positional arguments `main` accepts (more is a usage error).
    """

    def guarded(argv: Sequence[str]) -> None:
        logging.get_absl_handler().addFilter(_OwnInfoOnly())
        if len(argv) > 1 + max_args:
            raise app.UsageError(f"unexpected arguments: {' '.join(argv[1 + max_args :])}")
        try:
            main(argv)
        except (UserError, FloatingPointError) as error:
            _exit_now(f"error: {error}", 1)
        except Interrupted as stop:
            _exit_now(str(stop), 128 + stop.signum)

    app.run(guarded)


def _exit_now(message: str, status: int) -> None:
    """Prints `message` and exits without interpreter teardown.

    After a failed save, Orbax's background threads may still run; tearing the
    interpreter down under them prints pages of errors. Everything of ours is
    closed and flushed by now.
    """
    logging.flush()
    sys.stdout.flush()
    sys.stderr.write(message + "\n")
    sys.stderr.flush()
    os._exit(status)


class _OwnInfoOnly(std_logging.Filter):
    """Keeps INFO lines of this project only; Orbax alone logs dozens per checkpoint."""

    _ours = (
        os.sep + "gan_jax" + os.sep,
        os.sep + "experiments" + os.sep,
        os.sep + "benchmarks" + os.sep,
    )

    def filter(self, record: std_logging.LogRecord) -> bool:
        ours = any(p in record.pathname for p in self._ours)
        if not ours and "read only" in record.getMessage():
            return False  # Orbax's note that a reader's manager is read-only, as asked.
        if not ours and record.levelno >= std_logging.ERROR:
            if f"{os.sep}orbax{os.sep}" in record.pathname:
                # Orbax logs a failed background save with tracebacks on each of its
                # threads, then raises the error, which we report in one line.
                return False
            record.exc_info, record.exc_text = None, None
        return record.levelno >= std_logging.WARNING or ours
