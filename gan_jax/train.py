"""The training loop: `train_and_evaluate(config, workdir)`.

It puts the data set on the device, restores the latest checkpoint in
`<workdir>/checkpoints` if there is one (so rerunning a command resumes it), and
runs the jitted multi-step loop of `gan_jax.steps` in dispatches that end at
epoch ends, checkpoint steps and the last step. The host reads metrics back once
per dispatch; once per epoch it writes a `metrics.jsonl` record, TensorBoard
scalars, a sample grid (or, for 2-D data, a scatter plot) and the loss curve.
"""

import dataclasses
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from absl import logging

from gan_jax import viz
from gan_jax.checkpoint import Checkpoints, checkpoint_dir
from gan_jax.config import Config, to_dict
from gan_jax.data.pipeline import TrainingData, load_training_data, unscale
from gan_jax.errors import UserError
from gan_jax.metric_writer import MetricWriter
from gan_jax.state import (
    GAN,
    GANState,
    build_gan,
    create_state,
    example_shape,
    sample_latents,
)
from gan_jax.steps import make_run_steps

# Called at each epoch end with (gan, state, epoch); returns extra metrics to record.
EpochHook = Callable[[GAN, GANState, int], Mapping[str, Any]]


class ConfigError(UserError, ValueError):
    """A config that cannot be trained (reported to the user in one line)."""


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Step counts derived from the config and the data set size."""

    steps_per_epoch: int
    total_steps: int

    def epoch_of(self, step: int) -> int:
        """The 1-based epoch that the step ending at `step` belongs to."""
        return -(-step // self.steps_per_epoch)


def make_schedule(config: Config, num_examples: int) -> Schedule:
    """Validates the config against the data size and derives the step counts."""
    for name in ("batch_size", "num_epochs", "checkpoint_every_steps", "steps_per_dispatch"):
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name} must be positive, got {getattr(config, name)}")
    if config.data.sampling == "epoch" and config.batch_size > num_examples:
        raise ConfigError(
            f"batch_size {config.batch_size} exceeds the {num_examples} training examples"
        )
    steps_per_epoch = config.steps_per_epoch or num_examples // config.batch_size
    if steps_per_epoch <= 0:
        raise ConfigError(f"steps_per_epoch must be positive, got {steps_per_epoch}")
    if config.data.sampling == "epoch" and steps_per_epoch * config.batch_size > num_examples:
        raise ConfigError(
            f"steps_per_epoch {steps_per_epoch} x batch_size {config.batch_size} exceeds "
            f"the {num_examples} examples of one epoch"
        )
    return Schedule(steps_per_epoch, steps_per_epoch * config.num_epochs)


def _check_data(gan: GAN, data: TrainingData) -> None:
    expected = example_shape(gan)
    if tuple(data.examples.shape[1:]) != expected:
        raise ConfigError(
            f"the generator makes examples of shape {expected} but {gan.config.data.name!r} "
            f"holds {tuple(data.examples.shape[1:])}"
        )
    if gan.config.num_classes and data.labels is None:
        raise ConfigError(f"a conditional GAN needs labels; {gan.config.data.name!r} has none")


def grid_inputs(config: Config) -> tuple[jax.Array, jax.Array | None, int]:
    """Fixed latents (and labels) for the per-epoch sample grid, and its number of columns.

    A conditional grid has one row per class.
    """
    key = jax.random.fold_in(jax.random.key(config.seed), 0x6121D)
    if config.num_classes:
        per_class = max(1, config.num_grid_samples // config.num_classes)
        labels = jnp.repeat(jnp.arange(config.num_classes), per_class)
        return sample_latents(key, len(labels), config), labels, per_class
    num_cols = int(np.ceil(np.sqrt(config.num_grid_samples)))
    return sample_latents(key, config.num_grid_samples, config), None, num_cols


def write_samples(
    path: str, samples: np.ndarray, config: Config, num_cols: int, real: np.ndarray | None = None
) -> None:
    """Writes generated examples as a PNG: an image grid, or a scatter plot for 2-D points."""
    if samples.ndim == 2 and samples.shape[1] == 2:
        viz.save_scatter(path, real if real is not None else samples[:0], samples)
    else:
        viz.save_image_grid(path, np.asarray(unscale(samples, config.data.scaling)), num_cols)


def _restore_or_create(checkpoints: Checkpoints, gan: GAN, config: Config) -> tuple[GANState, bool]:
    if checkpoints.latest_step() is None:
        return create_state(gan, config.seed), False
    saved = checkpoints.restore_config()
    changed = _changed_fields(to_dict(saved), to_dict(config))
    if changed:
        logging.warning("resuming with changed settings: %s", ", ".join(changed))
    state = checkpoints.restore(gan)
    logging.info("resumed from step %d in %s", int(state.step), checkpoints.directory)
    return state, True


def _changed_fields(old: Mapping[str, Any], new: Mapping[str, Any], prefix: str = "") -> list[str]:
    changed = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if isinstance(a, Mapping) and isinstance(b, Mapping):
            changed += _changed_fields(a, b, f"{prefix}{key}.")
        elif a != b:
            changed.append(f"{prefix}{key}: {a} -> {b}")
    return changed


class _EpochRecords:
    """Cuts the per-step metrics of dispatches into one record per epoch."""

    def __init__(self, schedule: Schedule, batch_size: int, step: int):
        self.schedule = schedule
        self.batch_size = batch_size
        self.start_step = step  # the step that the first pending value belongs after
        self.pending: dict[str, np.ndarray] = {}

    def add(self, metrics: Mapping[str, np.ndarray], seconds: float) -> list[dict[str, Any]]:
        """Adds one dispatch's metrics; returns the records of the epochs it completed."""
        num_steps = len(next(iter(metrics.values())))
        metrics = {**metrics, "_seconds": np.full(num_steps, seconds / num_steps)}
        for name, values in metrics.items():
            self.pending[name] = np.concatenate([self.pending.get(name, values[:0]), values])
        records = []
        spe = self.schedule.steps_per_epoch
        while self.pending:
            epoch_end = (self.start_step // spe + 1) * spe
            count = epoch_end - self.start_step
            if len(self.pending["_seconds"]) < count:
                break
            chunk = {k: v[:count] for k, v in self.pending.items()}
            self.pending = {k: v[count:] for k, v in self.pending.items() if len(v) > count}
            record: dict[str, Any] = {"epoch": epoch_end // spe, "step": epoch_end}
            record.update({k: float(v.mean()) for k, v in chunk.items() if k != "_seconds"})
            record["examples_per_sec"] = (
                count * self.batch_size / max(chunk["_seconds"].sum(), 1e-9)
            )
            records.append(record)
            self.start_step = epoch_end
        return records


def _check_finite(history: Mapping[str, np.ndarray], step: int) -> None:
    for name in ("loss_d", "loss_g"):
        if not np.all(np.isfinite(history[name])):
            raise FloatingPointError(
                f"{name} became non-finite before step {step}; the run diverged "
                "(the last checkpoint is kept)"
            )


def _next_stop(step: int, schedule: Schedule, config: Config) -> int:
    """Where the next dispatch ends: a sampling epoch, a checkpoint, the cap, or the end."""

    def next_multiple(period: int) -> int:
        return (step // period + 1) * period

    return min(
        schedule.total_steps,
        next_multiple(schedule.steps_per_epoch * config.sample_every_epochs),
        next_multiple(config.checkpoint_every_steps),
        step + config.steps_per_dispatch,
    )


def _log_record(record: Mapping[str, Any], num_epochs: int) -> None:
    logging.info(
        "epoch %d/%d step %d: loss_D %.3f, loss_G %.3f, D(x) %.3f, D(G(z)) %.3f, %.1f examples/sec",
        record["epoch"],
        num_epochs,
        record["step"],
        record["loss_d"],
        record["loss_g"],
        record["d_real"],
        record["d_fake"],
        record["examples_per_sec"],
    )


def train_and_evaluate(
    config: Config, workdir: str, *, epoch_hooks: Sequence[EpochHook] = ()
) -> GANState:
    """Trains (or resumes training) `config` in `workdir` and returns the final state.

    Args:
      config: the run.
      workdir: where checkpoints, metrics and pictures go; an existing checkpoint
        there is resumed.
      epoch_hooks: called at each sampling epoch (every `config.sample_every_epochs`);
        what they return is added to that epoch's metrics record.

    Returns:
      The final training state.
    """
    host_data = load_training_data(config.data, config.seed)
    num_examples = len(host_data.examples)
    schedule = make_schedule(config, num_examples)
    if config.sample_every_epochs <= 0:
        raise ConfigError(f"sample_every_epochs must be positive, got {config.sample_every_epochs}")
    gan = build_gan(config)
    _check_data(gan, host_data)
    os.makedirs(workdir, exist_ok=True)
    with open(os.path.join(workdir, "config.json"), "w") as f:
        json.dump(to_dict(config), f, indent=2)

    checkpoints = Checkpoints(checkpoint_dir(workdir), max_to_keep=config.keep_checkpoints)
    state, resumed = _restore_or_create(checkpoints, gan, config)
    step = int(state.step)
    data = jax.device_put(
        TrainingData(host_data.examples, host_data.labels if config.num_classes else None)
    )
    writer = MetricWriter(workdir, resume_step=step)
    run_steps = make_run_steps(
        gan,
        num_examples,
        schedule.steps_per_epoch,
        max_steps=min(config.steps_per_dispatch, schedule.total_steps),
    )
    grid_z, grid_labels, grid_cols = grid_inputs(config)
    real_points = host_data.examples[:100] if host_data.examples.ndim == 2 else None
    records = _EpochRecords(schedule, config.batch_size, step)

    logging.info(
        "%s: %d examples, %d steps/epoch, %d epochs (%d steps), %s",
        config.experiment,
        num_examples,
        schedule.steps_per_epoch,
        config.num_epochs,
        schedule.total_steps,
        f"resuming at step {step}" if resumed else "from scratch",
    )
    progress = tqdm.tqdm(
        total=schedule.total_steps,
        initial=step,
        unit="step",
        dynamic_ncols=True,
        disable=None,  # only on a terminal
    )
    try:
        while step < schedule.total_steps:
            num_steps = _next_stop(step, schedule, config) - step
            start = time.perf_counter()
            state, metrics = run_steps(state, data, jnp.asarray(num_steps, jnp.int32))
            metrics = {k: v[:num_steps] for k, v in jax.device_get(metrics).items()}
            step += num_steps
            _check_finite(metrics, step)
            progress.update(num_steps)
            progress.set_postfix(
                loss_d=f"{metrics['loss_d'].mean():.3f}", loss_g=f"{metrics['loss_g'].mean():.3f}"
            )
            completed = records.add(metrics, time.perf_counter() - start)
            epoch = step // schedule.steps_per_epoch
            sampling = step % schedule.steps_per_epoch == 0 and (
                epoch % config.sample_every_epochs == 0 or step == schedule.total_steps
            )
            if sampling and completed:
                for hook in epoch_hooks:
                    completed[-1].update(hook(gan, state, epoch))
            for record in completed:
                writer.write(record)
                if len(completed) <= 3 or record is completed[-1]:
                    _log_record(record, config.num_epochs)
            if sampling:
                samples = np.asarray(gan.jitted_generate(state, grid_z, grid_labels))
                write_samples(
                    os.path.join(workdir, "samples", f"epoch_{epoch:04d}.png"),
                    samples,
                    config,
                    grid_cols,
                    real_points,
                )
                if samples.ndim == 4:
                    writer.write_images(
                        "samples", step, np.clip(unscale(samples, config.data.scaling), 0, 1)
                    )
                viz.save_loss_plot(os.path.join(workdir, "losses.png"), writer.records)
            if step % config.checkpoint_every_steps == 0 or step == schedule.total_steps:
                checkpoints.save(step, state, config)
    except KeyboardInterrupt:
        # Keep what was trained: save the last completed dispatch before exiting.
        if not any(leaf.is_deleted() for leaf in jax.tree.leaves(state)):
            logging.warning("interrupted at step %d; saving a checkpoint", int(state.step))
            checkpoints.save(int(state.step), state, config)
        raise
    finally:
        progress.close()
        checkpoints.close()
        writer.close()
    return state
