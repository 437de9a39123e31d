"""What a resumed run may change, and how: the rules for rerunning a command in a workdir.

Settings that only steer training from here on can change between runs: the
optimizers' hyperparameters (learning rate, betas, eps, RMSprop decay), the
schedule's length and every cadence. They are applied to the restored state and
recorded in the run's config_changes.jsonl. Everything else (the experiment,
architectures, batch size, data set, objective, seed, precision) defines what
the checkpoint is, so a change is refused before anything is written, unless the
user asks to start over, which moves the old run aside rather than deleting it
(`workdir.move_run_aside`).
"""

import datetime
import json
from collections.abc import Mapping
from typing import Any

from gan_jax import workdir as workdir_lib
from gan_jax.config import Config, to_dict
from gan_jax.errors import UserError
from gan_jax.state import GAN, GANState
from gan_jax.sweep_spec import STATE_HYPERPARAMETERS

# Dotted config fields that may change when a run resumes.
MUTABLE_FIELDS = frozenset(
    {
        "num_epochs",
        "checkpoint_every_steps",
        "keep_checkpoints",
        "steps_per_dispatch",
        "num_devices",
        "sample_every_epochs",
        "num_grid_samples",
        "data.data_dir",
    }
    | {f"{network}_optimizer.{name}" for network in ("g", "d") for name in STATE_HYPERPARAMETERS}
)


# The endings of the dotted optimizer-setting fields among them.
OPTIMIZER_FIELDS = tuple(f"_optimizer.{name}" for name in STATE_HYPERPARAMETERS)


class IncompatibleResumeError(UserError):
    """The workdir's checkpoint was trained with settings that the new run cannot continue."""


def changed_fields(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> dict:
    """Dotted names of the fields that differ, with their (old, new) values."""
    changed = {}
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping) and key != "kwargs":
            changed.update(changed_fields(a, b, f"{prefix}{key}."))
        elif a != b:
            changed[f"{prefix}{key}"] = (a, b)
    return changed


def check_resumable(saved: Config, config: Config, step: int) -> dict[str, tuple[Any, Any]]:
    """The allowed changes from the checkpoint's config; raises if any other field changed."""
    changes = changed_fields(to_dict(saved), to_dict(config))
    fixed = {k: v for k, v in changes.items() if k not in MUTABLE_FIELDS}
    if fixed:
        listed = "; ".join(f"{k}: {a} -> {b}" for k, (a, b) in fixed.items())
        raise IncompatibleResumeError(
            f"the checkpoint at step {step} was trained with other settings that cannot "
            f"change mid-run ({listed}); rerun with the old values to resume, use another "
            "--workdir, or pass --start_over to move the old run aside and start afresh"
        )
    return changes


def apply_optimizer_settings(gan: GAN, state: GANState) -> GANState:
    """Puts `gan`'s optimizer hyperparameters into a restored state's optimizer states.

    The hyperparameters live in the optimizer state (optax.inject_hyperparams), so
    without this a resumed run would silently keep the old learning rate.
    """

    def updated(optimizer: Any, network: Any) -> Any:
        opt_state = network.opt_state
        if not hasattr(opt_state, "hyperparams"):
            return network
        fresh = optimizer.init(network.params).hyperparams
        hyperparams = {k: fresh[k] for k in opt_state.hyperparams}
        return network.replace(opt_state=opt_state._replace(hyperparams=hyperparams))

    return state.replace(
        generator=updated(gan.g_optimizer, state.generator),
        discriminator=updated(gan.d_optimizer, state.discriminator),
    )


def record_changes(workdir: str, step: int, changes: Mapping[str, tuple[Any, Any]]) -> None:
    """Appends one line to the run's config_changes.jsonl."""
    line = {
        "step": step,
        "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "changes": {k: {"from": a, "to": b} for k, (a, b) in changes.items()},
    }
    with open(workdir_lib.config_changes_file(workdir), "a") as f:
        f.write(json.dumps(line) + "\n")
