"""Scores a run's checkpoint; needs no experiment flags.

  python -m gan_jax.evaluate --workdir=runs/mlp_gan_mnist [--step=S] [--num_samples=10000]

Restores the checkpoint, generates samples from a fixed key, computes the metrics
that fit the data set (see `gan_jax.evaluation`), prints them and writes
`<workdir>/eval_<step>.json`; for images also `<workdir>/eval_<step>_nearest.png`,
generated images (odd rows) above their nearest training images (even rows).

  python -m gan_jax.evaluate --real_floor [--out=floor.json]

scores real MNIST instead: the train-vs-test classifier FID, the test set's
inception score and coverage, and the test images' L1 to their nearest training
images, the floors that generated samples are compared against.
"""

import json
import os

from absl import flags

from gan_jax import common_flags
from gan_jax.checkpoint import restore_gan
from gan_jax.errors import UserError

_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 10_000, "Generated samples per score.")
_REAL_FLOOR = flags.DEFINE_bool("real_floor", False, "Score real MNIST instead of a checkpoint.")
_OUT = flags.DEFINE_string("out", None, "JSON output path (default: <workdir>/eval_<step>.json).")
flags.register_validator("num_samples", lambda v: v > 1, message="--num_samples must be > 1")


def _summary(scores: dict) -> str:
    return ", ".join(
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
        for k, v in scores.items()
        if isinstance(v, int | float)
    )


def _write_json(path: str, values: dict) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
        json.dump(values, f, indent=2)


def evaluate_checkpoint() -> None:
    from gan_jax.evaluation import Evaluator

    workdir = common_flags.WORKDIR.value
    gan, state, step = restore_gan(workdir, common_flags.STEP.value)
    evaluator = Evaluator(
        gan.config,
        num_samples=_NUM_SAMPLES.value,
        seed=common_flags.SEED.value,
        data_dir=common_flags.DATA_DIR.value or gan.config.data.data_dir,
        classifier_dir=common_flags.CLASSIFIER_DIR.value,
        memorisation_queries=common_flags.MEMORISATION_QUERIES.value,
    )
    scores = evaluator(gan, state, os.path.join(workdir, f"eval_{step}_nearest.png"))
    result = {
        "experiment": gan.config.experiment,
        "step": step,
        "num_samples": _NUM_SAMPLES.value,
        "seed": common_flags.SEED.value,
        **scores,
    }
    out = _OUT.value or os.path.join(workdir, f"eval_{step}.json")
    _write_json(out, result)
    print(f"{gan.config.experiment} step {step}: {_summary(scores)}")
    print(f"wrote {out}")


def evaluate_real_floor() -> None:
    from gan_jax.evaluation import real_mnist_floor

    scores = real_mnist_floor(
        data_dir=common_flags.DATA_DIR.value,
        classifier_dir=common_flags.CLASSIFIER_DIR.value,
        memorisation_queries=common_flags.MEMORISATION_QUERIES.value,
        seed=common_flags.SEED.value,
    )
    print(f"real MNIST: {_summary(scores)}")
    if _OUT.value:
        _write_json(_OUT.value, scores)
        print(f"wrote {_OUT.value}")


def main(argv):
    del argv
    if _REAL_FLOOR.value:
        evaluate_real_floor()
    elif common_flags.WORKDIR.value is None:
        raise UserError("--workdir is required (or --real_floor)")
    else:
        evaluate_checkpoint()


if __name__ == "__main__":
    common_flags.run(main)
