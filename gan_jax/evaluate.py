"""Scores a run's checkpoint; needs no experiment flags.

  python -m gan_jax.evaluate --workdir=runs/mlp_gan_mnist [--step=S] [--num_samples=10000]

Restores the checkpoint, generates samples from a fixed key, computes the metrics
that fit the data set (see `gan_jax.evaluation`: for images FID, KID, precision, recall,
density and coverage in a classifier of the set's own labels, and the same prefixed
`inception_` in Inception's features with --inception_weights or weights in the user
cache), prints them and writes
`<workdir>/eval_<step>.json` (or `--out`); for images also `eval_<step>_nearest.png`
beside it, generated images (odd rows) above their nearest training images (even rows).
Samples are generated and scored in bounded batches, so any `--num_samples` fits in
memory. An output path that cannot be written is reported before any scoring; should a
write still fail, the scores have already been printed.

  python -m gan_jax.evaluate --real_floor [--out=floor.json]

scores real MNIST instead: the train-vs-test classifier FID, the test set's
inception score and coverage, and the test images' L1 to their nearest training
images, the floors that generated samples are compared against.
"""

import json
import os

from absl import flags

from gan_jax import command, evaluation
from gan_jax import workdir as workdir_lib
from gan_jax.checkpoint import restore_gan
from gan_jax.errors import UserError
from gan_jax.settings import NON_NEGATIVE
from gan_jax.state import for_sampling

_WORKDIR = flags.DEFINE_string("workdir", None, "The run to score.")
_STEP = flags.DEFINE_integer("step", None, "Checkpoint step to restore (default: the latest).")
_SEED = flags.DEFINE_integer("seed", 0, "Seed of the fixed sampling key.")
_DATA_DIR = command.define_data_dir()
_RAW_GENERATOR = command.define_raw_generator()
_CLASSIFIER_DIR = flags.DEFINE_string(
    "classifier_dir",
    None,
    "A classifier of the data set's labels to score in (default: the set's own, trained "
    "once into ~/.cache/gan_jax).",
)
_INCEPTION_WEIGHTS = flags.DEFINE_string(
    "inception_weights",
    None,
    "pytorch-fid's Inception weights (pt_inception-2015-12-05-6726825d.pth, or its "
    "converted .npz) for scores in Inception's features (default: $GAN_JAX_INCEPTION_WEIGHTS, "
    "the user cache, or a download where the network allows; 'none': no Inception scores).",
)
_MEMORISATION_QUERIES = flags.DEFINE_integer(
    "memorisation_queries", 64, "Generated images compared to their nearest training image."
)
_NUM_SAMPLES = flags.DEFINE_integer("num_samples", 10_000, "Generated samples per score.")
_REAL_FLOOR = flags.DEFINE_bool("real_floor", False, "Score real MNIST instead of a checkpoint.")
_OUT = flags.DEFINE_string(
    "out", None, "JSON output path (default: <workdir>/eval_<step>.json); image pairs beside it."
)
flags.register_validator("num_samples", lambda v: v > 1, message="--num_samples must be > 1")
command.validate("memorisation_queries", NON_NEGATIVE)


def _summary(scores: dict) -> str:
    return ", ".join(
        f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
        for k, v in scores.items()
        if isinstance(v, int | float)
    )


def _write_json(path: str, values: dict) -> None:
    """Writes `values` to `path`; on failure prints them in full first (nothing is lost).

    `path`'s directory was made by `workdir.ensure_writable`, before the scoring.
    """
    try:
        with open(path, "w") as f:
            json.dump(values, f, indent=2)
    except OSError as error:
        print(json.dumps(values), flush=True)
        raise UserError(
            f"cannot write {path}: {error.strerror}; the scores are printed on stdout"
        ) from error


def _write_pairs(path: str, pairs: tuple) -> None:
    try:
        evaluation.save_nearest_pairs(path, *pairs)
    except OSError as error:
        raise UserError(f"cannot write {path}: {error.strerror}") from error


def evaluate_checkpoint() -> None:
    workdir = _WORKDIR.value
    gan, state, step = restore_gan(workdir, _STEP.value)
    uses_average = state.generator_ema is not None and not _RAW_GENERATOR.value
    state = for_sampling(state, raw_generator=_RAW_GENERATOR.value)
    out = _OUT.value or workdir_lib.eval_file(workdir, step)
    pairs_path = os.path.splitext(out)[0] + "_nearest.png"
    # Before any scoring: a path that cannot be written must not cost a whole evaluation.
    hint = "" if _OUT.value else " (choose another path with --out)"
    workdir_lib.ensure_writable(out, hint)
    queries = _MEMORISATION_QUERIES.value
    if evaluation.checks_memorisation(gan.config, queries):
        workdir_lib.ensure_writable(pairs_path, hint)
    evaluator = evaluation.Evaluator(
        gan.config,
        num_samples=_NUM_SAMPLES.value,
        seed=_SEED.value,
        data_dir=_DATA_DIR.value or gan.config.data.data_dir,
        classifier_dir=_CLASSIFIER_DIR.value,
        inception_weights=_INCEPTION_WEIGHTS.value,
        memorisation_queries=queries,
    )
    scores, pairs = evaluator.scores_and_pairs(gan, state)
    result = {
        "experiment": gan.config.experiment,
        "step": step,
        "generator": "moving_average" if uses_average else "trained",
        "num_samples": _NUM_SAMPLES.value,
        "seed": _SEED.value,
        **scores,
    }
    print(f"{gan.config.experiment} step {step}: {_summary(scores)}", flush=True)
    _write_json(out, result)
    print(f"wrote {out}")
    if pairs is not None:
        _write_pairs(pairs_path, pairs)
        print(f"wrote {pairs_path}")


def evaluate_real_floor() -> None:
    if _OUT.value:
        workdir_lib.ensure_writable(_OUT.value)
    scores = evaluation.real_mnist_floor(
        data_dir=_DATA_DIR.value,
        classifier_dir=_CLASSIFIER_DIR.value,
        memorisation_queries=_MEMORISATION_QUERIES.value,
        seed=_SEED.value,
    )
    print(f"real MNIST: {_summary(scores)}", flush=True)
    if _OUT.value:
        _write_json(_OUT.value, scores)
        print(f"wrote {_OUT.value}")


def main(argv):
    del argv
    if _REAL_FLOOR.value:
        evaluate_real_floor()
    elif _WORKDIR.value is None:
        raise UserError("--workdir is required (or --real_floor)")
    else:
        evaluate_checkpoint()


if __name__ == "__main__":
    command.run(main)
