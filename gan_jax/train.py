"""The training loop: `train_and_evaluate(config, workdir)`.

It puts the data set on the device, restores the latest checkpoint in
`<workdir>/checkpoints` if there is one (so rerunning a command resumes it), and
runs the jitted multi-step loop of `gan_jax.loop` in dispatches that end at
epoch ends, checkpoint steps and the last step. The host reads metrics back once
per dispatch; once per epoch it writes a `metrics.jsonl` record, TensorBoard
scalars, a sample grid (or, for 2-D data, a scatter plot) and the loss curve.
"""

import contextlib
import dataclasses
import functools
import json
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import tqdm
from absl import logging

from gan_jax import distributed, errors, interrupts, parallel, resume, sweep_spec, viz
from gan_jax import workdir as workdir_lib
from gan_jax.checkpoint import Checkpoints, Restored
from gan_jax.config import Config, to_dict
from gan_jax.data.pipeline import TrainingData, load_training_data, unscale
from gan_jax.errors import UserError
from gan_jax.loop import STATE_FINITE, all_finite, make_run_steps, takes_labels
from gan_jax.metric_writer import MetricWriter, read_metrics
from gan_jax.sampling import grid_inputs, write_samples
from gan_jax.state import (
    GAN,
    GANState,
    build_gan,
    create_states,
    example_shape,
    for_sampling,
    member_state,
    stack_states,
)

# Data sets drawn from the run's seed (each sweep member gets its own).
SEED_DRAWN_DATA = ("gaussian_2d",)

# Called at each epoch end with (gan, state, epoch); returns extra metrics to record.
EpochHook = Callable[[GAN, GANState, int], Mapping[str, Any]]


class ConfigError(UserError, ValueError):
    """A config that cannot be trained (reported to the user in one line)."""


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Step counts derived from the config and the data set size."""

    steps_per_epoch: int
    total_steps: int
    # Real batches between data-order reshuffles: each step takes
    # `d_steps_per_g_step` of them, one per D update.
    batches_per_epoch: int

    def epoch_of(self, step: int) -> int:
        """The 1-based epoch that the step ending at `step` belongs to."""
        return -(-step // self.steps_per_epoch)


def make_schedule(config: Config, num_examples: int) -> Schedule:
    """Validates the config against the data size and derives the step counts."""
    for name in (
        "batch_size",
        "num_epochs",
        "checkpoint_every_steps",
        "steps_per_dispatch",
        "d_steps_per_g_step",
    ):
        if getattr(config, name) <= 0:
            raise ConfigError(f"{name} must be positive, got {getattr(config, name)}")
    if config.data.sampling == "epoch" and config.batch_size > num_examples:
        raise ConfigError(
            f"batch_size {config.batch_size} exceeds the {num_examples} training examples"
        )
    per_step = config.d_steps_per_g_step
    steps_per_epoch = config.steps_per_epoch or num_examples // config.batch_size // per_step
    if steps_per_epoch <= 0:
        raise ConfigError(f"steps_per_epoch must be positive, got {steps_per_epoch}")
    batches_per_epoch = steps_per_epoch * per_step
    if config.data.sampling == "epoch" and batches_per_epoch * config.batch_size > num_examples:
        raise ConfigError(
            f"steps_per_epoch {steps_per_epoch} x d_steps_per_g_step {per_step} x batch_size "
            f"{config.batch_size} exceeds the {num_examples} examples of one epoch"
        )
    return Schedule(steps_per_epoch, steps_per_epoch * config.num_epochs, batches_per_epoch)


def _check_data(gan: GAN, data: TrainingData) -> None:
    expected = example_shape(gan)
    held = tuple(data.examples.shape[1:])
    if held != expected:
        how = ""
        if len(expected) == 3 and expected[0] == expected[1] and expected[2] in (1, 3):
            how = (
                "; prepare images of that shape with python -m gan_jax.data.prepare "
                f"image_folder --path=DIR --name=NAME --image_size={expected[0]} "
                f"--channels={expected[2]}"
            )
        raise ConfigError(
            f"this experiment makes {_shape_words(expected)} but {gan.config.data.name!r} "
            f"holds {_shape_words(held)}{how}"
        )
    if gan.config.num_classes and data.labels is None:
        raise ConfigError(f"a conditional GAN needs labels; {gan.config.data.name!r} has none")


def _shape_words(shape: tuple[int, ...]) -> str:
    """'28x28x1 images' for image shapes, 'examples of shape (2,)' for others."""
    if len(shape) == 3:
        return "x".join(map(str, shape)) + " images"
    return f"examples of shape {shape}"


class _EpochRecords:
    """Cuts the per-step metrics of dispatches into one record per epoch.

    The values of the epoch in progress (`pending`) go into every checkpoint, so a
    run resumed mid-epoch averages exactly the values an unbroken run averages.
    """

    def __init__(
        self,
        schedule: Schedule,
        batch_size: int,
        step: int,
        pending: Mapping[str, np.ndarray] | None = None,
    ):
        self.schedule = schedule
        self.batch_size = batch_size
        pending = dict(pending or {})
        expected = step % schedule.steps_per_epoch
        if pending and len(pending.get("_seconds", ())) != expected:
            logging.warning(
                "the checkpoint's partial-epoch metrics do not fit step %d; "
                "this epoch's record will average the resumed steps only",
                step,
            )
            pending = {}
        # The step that the first pending value belongs after.
        self.start_step = step - len(pending.get("_seconds", ()))
        self.pending: dict[str, np.ndarray] = pending

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


def _nonfinite_report(
    metrics: Mapping[str, np.ndarray],
    state: Callable[[], GANState],
    state_finite: bool,
    first_step: int,
) -> str | None:
    """What went non-finite in a dispatch that began after `first_step`, or None.

    `state_finite`: whether `all_finite` of the state the dispatch ended with (computed
    for all members at once); `state` gives that state, called only when it is not."""
    finite = np.all([np.isfinite(values) for values in metrics.values()], axis=0)
    if not finite.all():
        i = int(np.argmin(finite))
        bad = [name for name, values in metrics.items() if not np.isfinite(values[i])]
        values = ", ".join(f"{name} = {metrics[name][i]}" for name in bad)
        return f"at step {first_step + i + 1}: {values}"
    if state_finite:
        return None
    state = state()
    for path, leaf in jax.tree_util.tree_leaves_with_path(state):
        if jnp.issubdtype(leaf.dtype, jnp.floating) and not np.all(np.isfinite(leaf)):
            return (
                f"by step {int(state.step)}: the state's {jax.tree_util.keystr(path)} "
                "holds non-finite values"
            )
    return None


_state_finite = jax.jit(all_finite)
# One dispatch per member (the index is traced), not one per leaf as `member_state` has.
_member_of = jax.jit(member_state)


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


# Each objective reports its own diagnostics (BCE: D(x), D(G(z))); the logs show these.
_LOGGED = {
    "loss_d": "loss_D",
    "loss_g": "loss_G",
    "d_real": "D(x)",
    "d_fake": "D(G(z))",
    "wasserstein": "W estimate",
    "gradient_penalty": "GP",
    "loss_d_supervised": "CE",
    "eval/test_accuracy": "test accuracy",
}


def _log_record(record: Mapping[str, Any], num_epochs: int) -> None:
    values = ", ".join(f"{label} {record[k]:.3f}" for k, label in _LOGGED.items() if k in record)
    logging.info(
        "epoch %d/%d step %d: %s, %.1f examples/sec",
        record["epoch"],
        num_epochs,
        record["step"],
        values,
        record["examples_per_sec"],
    )


def _log_members(
    member_records: Sequence[list[dict[str, Any]]], num_epochs: int, total: int
) -> None:
    """One line per epoch for a sweep group: each value's median and range over members."""
    for records in zip(*member_records, strict=True):
        last = records[0]
        values = []
        for key, label in _LOGGED.items():
            if key in last:
                v = np.array([r[key] for r in records])
                values.append(f"{label} {np.median(v):.3f} [{v.min():.3f}, {v.max():.3f}]")
        logging.info(
            "epoch %d/%d step %d, %d of %d members training, median [range]: %s",
            last["epoch"],
            num_epochs,
            last["step"],
            len(records),
            total,
            ", ".join(values),
        )


def train_and_evaluate(
    config: Config,
    workdir: str,
    *,
    epoch_hooks: Sequence[EpochHook] = (),
    start_over: bool = False,
) -> GANState:
    """Trains (or resumes training) `config` in `workdir` and returns the final state.

    What a run survives (see the README): SIGINT/SIGTERM stop it between steps with
    a checkpoint (`gan_jax.errors.Interrupted`); damaged checkpoints are skipped; a
    non-finite value stops it without saving (`DivergedError`); a full disk stops it
    with the older checkpoints intact (`DiskFullError`); a second writer on the same
    workdir is refused; changed settings are applied or refused (`gan_jax.resume`).

    Args:
      config: the run.
      workdir: where checkpoints, metrics and pictures go; an existing checkpoint
        there is resumed.
      epoch_hooks: called at each sampling epoch (every `config.sample_every_epochs`);
        what they return is added to that epoch's metrics record.
      start_over: move a previous run in `workdir` aside (to `replaced_<time>/`)
        instead of resuming it.

    Returns:
      The final training state.
    """
    (state,) = _train([config], [workdir], epoch_hooks, start_over, vmapped=False, drawing=None)
    return state


def train_group(
    configs: Sequence[Config],
    workdirs: Sequence[str],
    *,
    epoch_hooks: Sequence[EpochHook] = (),
    start_over: bool = False,
    drawing: viz.DrawingProcess | None = None,
) -> list[GANState]:
    """Trains a sweep group as one vmapped program; each member is an ordinary run.

    The members (`gan_jax.sweep_spec.groups` puts them in one group) may differ only
    in their seeds and optimizer hyperparameters. Each writes its own workdir exactly
    as `train_and_evaluate` would, and equals its solo run up to float rounding. A
    member whose values turn non-finite keeps its last finite state: its metrics.jsonl
    gets a `diverged` record, its checkpoints stop there, and the others go on.

    Args:
      drawing: where the members draw their final pictures, for a caller that waits for
        them itself (`drawing_for`), so they may still be drawn when this returns.
        Without it, a group of `drawing_for`'s size draws in a process of its own, and
        every picture is written before this returns.

    Returns:
      The members' final states.
    """
    if len(configs) != len(workdirs) or len(set(workdirs)) != len(workdirs):
        raise ValueError("one distinct workdir per member is needed")
    return _train(
        list(configs), list(workdirs), epoch_hooks, start_over, vmapped=True, drawing=drawing
    )


def drawing_for(num_members: int) -> contextlib.AbstractContextManager[viz.DrawingProcess | None]:
    """A process for the final pictures of a sweep of `num_members` members, or None
    (in a context that gives None) when drawing them in this process is quicker.

    Leaving the context waits for every picture and raises the first drawing error.
    """
    if num_members >= _DRAWING_PROCESS_MEMBERS and distributed.is_main():
        return viz.DrawingProcess()
    return contextlib.nullcontext()


def _train(
    configs: list[Config],
    workdirs: list[str],
    epoch_hooks: Sequence[EpochHook],
    start_over: bool,
    *,
    vmapped: bool,
    drawing: viz.DrawingProcess | None,
) -> list[GANState]:
    with interrupts.deferred(), contextlib.ExitStack() as stack:
        interrupts.raise_if_requested("before training started: nothing to save yet")
        workdirs = [workdir_lib.prepare(workdir) for workdir in workdirs]
        if vmapped and jax.process_count() > 1:
            raise UserError("a sweep runs in one process (several processes: not yet)")
        for workdir in workdirs if distributed.is_main() else ():
            stack.enter_context(workdir_lib.WorkdirLock(workdir))
            if start_over:
                moved = resume.move_run_aside(workdir, keep=(workdir_lib.LOCK_NAME,))
                if moved:
                    logging.warning("--start_over: moved the previous run to %s", moved)
        distributed.sync("workdirs ready")  # the others read what the main process left
        try:
            return _Training(configs, workdirs, epoch_hooks, vmapped, drawing).run()
        except Exception as error:  # Orbax re-raises OSErrors as other types.
            if errors.is_out_of_space(error):
                raise _disk_full(workdirs[0], error) from None
            raise


def _raise_if_stop_requested(when: str) -> None:
    """`interrupts.raise_if_requested`, agreed by every process of a multi-process run:
    a signal to any one stops them all at the same step, where each takes part in
    saving the checkpoint."""
    if jax.process_count() == 1:
        interrupts.raise_if_requested(when)
        return
    signum = max(distributed.gather(interrupts.requested() or 0))
    if signum:
        raise errors.Interrupted(signum, f"interrupted by {interrupts.signal_name(signum)} {when}")


def _disk_full(workdir: str, error: BaseException) -> errors.DiskFullError:
    steps = workdir_lib.checkpoint_steps(workdir)
    kept = f"the newest complete checkpoint is step {steps[-1]}" if steps else "no checkpoint yet"
    return errors.DiskFullError(
        f"out of disk space writing to {workdir} ({str(error).splitlines()[0][:120]}); "
        f"{kept}; free some space and rerun to resume"
    )


class _NoWriter:
    """The metric writer of a process other than the main one, which writes the run's
    records alone."""

    def __init__(self, workdir: str, *, resume_step: int):
        del workdir, resume_step
        self.records: list[dict[str, Any]] = []

    def write(self, record: Mapping[str, Any], *, prefix: str = "train") -> None:
        del record, prefix

    def write_images(self, *args: Any) -> None:
        del args

    def close(self) -> None:
        pass


@dataclasses.dataclass
class _Run:
    """One run of a training call and its outputs (a sweep group trains several)."""

    config: Config
    workdir: str
    checkpoints: Checkpoints
    records: _EpochRecords | None = None
    writer: MetricWriter | None = None
    saved_step: int | None = None
    diverged: str | None = None  # what went non-finite, once something has
    last_finite: GANState | None = None  # a diverged sweep member's state before that


# From this many members a sweep group draws its final pictures in another process:
# starting one (its imports) takes about 2 s, the pictures of a member about 0.16 s.
_DRAWING_PROCESS_MEMBERS = 16


class _Training:
    """One call of `train_and_evaluate` or `train_group`: set-up, the dispatch loop and
    the stop paths. With `vmapped`, the state holds every member (`stack_states`)."""

    def __init__(
        self,
        configs: list[Config],
        workdirs: list[str],
        epoch_hooks: Sequence[EpochHook],
        vmapped: bool,
        drawing: viz.DrawingProcess | None,
    ):
        config = configs[0]
        if vmapped and sweep_spec.groups(configs) != [list(range(len(configs)))]:
            raise ConfigError("sweep members that differ in structure cannot train together")
        self.configs, self.workdirs, self.vmapped = configs, workdirs, vmapped
        self.config = config
        self.epoch_hooks = epoch_hooks
        # Where a sweep's members draw their final pictures (None: here).
        self.drawing = drawing
        # Synthetic data sets are drawn from each run's seed; others are shared.
        self.member_data = vmapped and config.data.name in SEED_DRAWN_DATA
        own_data = configs if self.member_data else configs[:1]
        # Several processes: each reads from disk only the examples its devices hold.
        mapped = jax.process_count() > 1
        self.host_data = [load_training_data(c.data, c.seed, mapped=mapped) for c in own_data]
        self.num_examples = len(self.host_data[0].examples)
        self.schedule = make_schedule(config, self.num_examples)
        if config.sample_every_epochs <= 0:
            raise ConfigError(
                f"sample_every_epochs must be positive, got {config.sample_every_epochs}"
            )
        self.gans = [build_gan(c) for c in configs]
        self.placement = parallel.plan(
            config.num_devices,
            len(configs) if vmapped else config.batch_size,
            f"the group's {len(configs)} members" if vmapped else f"batch_size {config.batch_size}",
            members=vmapped,
        )
        self.gan = dataclasses.replace(self.gans[0], batch_sharding=self.placement.batch_sharding)
        _check_data(self.gan, self.host_data[0])
        interrupts.raise_if_requested("before training started: nothing to save yet")

    def _start_states(self, runs: list[_Run]) -> list[tuple[GANState, dict[str, np.ndarray]]]:
        """Each run's newest good checkpoint with its settings applied, or a fresh state
        (the fresh ones initialised together), with the records it had not yet written."""
        restored = [run.checkpoints.restore_latest() for run in runs]
        fresh = [m for m, r in enumerate(restored) if r is None]
        gans, seeds = [self.gans[m] for m in fresh], [runs[m].config.seed for m in fresh]
        fresh_states = iter(create_states(gans, seeds) if fresh else [])
        return [
            (next(fresh_states), {}) if r is None else self._resumed(run, gan, r)
            for run, gan, r in zip(runs, self.gans, restored, strict=True)
        ]

    def _resumed(
        self, run: _Run, gan: GAN, restored: Restored
    ) -> tuple[GANState, dict[str, np.ndarray]]:
        """A restored checkpoint's state with this run's settings applied."""
        changes = resume.check_resumable(restored.config, run.config, restored.step)
        state = restored.state
        if changes:
            logging.warning(
                "resuming at step %d with changed settings: %s",
                restored.step,
                "; ".join(f"{k}: {a} -> {b}" for k, (a, b) in changes.items()),
            )
            state = resume.apply_optimizer_settings(gan, state)
            if distributed.is_main():
                resume.record_changes(run.workdir, restored.step, changes)
        logging.info("resumed from step %d in %s", restored.step, run.checkpoints.directory)
        return state, restored.pending_metrics

    def run(self) -> list[GANState]:
        runs = []
        try:
            for config, workdir in zip(self.configs, self.workdirs, strict=True):
                checkpoints = Checkpoints(
                    workdir_lib.checkpoints_dir(workdir), max_to_keep=config.keep_checkpoints
                )
                runs.append(_Run(config, workdir, checkpoints))
            restored = self._start_states(runs)
            for m, run in enumerate(runs):  # a member that diverged earlier stays as it was
                records = read_metrics(workdir_lib.metrics_file(run.workdir))
                if self.vmapped and records and "diverged" in records[-1]:
                    run.diverged = records[-1]["diverged"]
                    run.last_finite = restored[m][0]
            steps = {
                int(state.step)
                for (state, _), run in zip(restored, runs, strict=True)
                if not run.diverged
            }
            if len(steps) > 1:
                raise UserError(
                    "the sweep's members were saved at different steps "
                    f"({sorted(steps)}); rerun with --start_over, or run them one by one"
                )
            for run in runs if distributed.is_main() else ():
                # Written only once the checkpoint's settings are known to fit.
                with open(workdir_lib.config_file(run.workdir), "w") as f:
                    json.dump(to_dict(run.config), f, indent=2)
            states = [state for state, _ in restored]
            state = stack_states(states) if self.vmapped else states[0]
            with contextlib.ExitStack() as stack:
                if self.vmapped and self.drawing is None:
                    self.drawing = stack.enter_context(drawing_for(len(runs)))
                final = self._loop(runs, state, [pending for _, pending in restored])
            if not self.vmapped:
                return [final]
            return [
                run.last_finite if run.diverged else member_state(final, m)
                for m, run in enumerate(runs)
            ]
        finally:
            for run in runs:
                run.checkpoints.close()

    def _member(self, tree: Any, m: int) -> Any:
        return _member_of(tree, m) if self.vmapped else tree

    def _loop(
        self,
        runs: list[_Run],
        state: GANState,
        pending: list[Mapping[str, np.ndarray]],
    ) -> GANState:
        config, gan, schedule = self.config, self.gan, self.schedule
        step = int(np.max(state.step))
        data = self.host_data[0]
        if self.member_data:
            data = TrainingData(np.stack([d.examples for d in self.host_data]), None)
        data = self.placement.put_data(
            TrainingData(data.examples, data.labels if takes_labels(config) else None),
            self.member_data,
        )
        state = self.placement.put_state(state)
        for run, run_pending in zip(runs, pending, strict=True):
            run.writer = (
                MetricWriter(run.workdir, resume_step=step)
                if distributed.is_main()
                else _NoWriter(run.workdir, resume_step=step)
            )
            if run.diverged is None:
                run.records = _EpochRecords(schedule, config.batch_size, step, run_pending)
            run.saved_step = run.checkpoints.latest_step()
        run_steps = make_run_steps(
            gan,
            self.num_examples,
            schedule.batches_per_epoch,
            max_steps=min(config.steps_per_dispatch, schedule.total_steps),
            # Several processes agree on a stop once per dispatch instead (see
            # `_raise_if_stop_requested`).
            should_stop=interrupts.requested if jax.process_count() == 1 else None,
            members=self.vmapped,
            member_data=self.member_data,
            placement=self.placement,
        )
        grid_z, grid_labels, grid_cols = grid_inputs(config)
        examples = self.host_data[0].examples
        real_points = examples[:100] if examples.ndim == 2 else None
        logging.info(
            "%s: %d examples, %d steps/epoch, %d epochs (%d steps), %s%s%s",
            config.experiment,
            self.num_examples,
            schedule.steps_per_epoch,
            config.num_epochs,
            schedule.total_steps,
            f"resuming at step {step}" if step else "from scratch",
            f", {len(runs)} members in one program" if self.vmapped else "",
            f", on {self.placement.num_devices} devices" if self.placement.mesh else "",
        )
        progress = tqdm.tqdm(
            total=schedule.total_steps,
            initial=step,
            unit="step",
            dynamic_ncols=True,
            disable=None if distributed.is_main() else True,  # only on a terminal
        )
        try:
            while step < schedule.total_steps:
                _raise_if_stop_requested("during training")
                num_steps = _next_stop(step, schedule, config) - step
                start = time.perf_counter()
                # `state` is donated; a diverged member's last finite state is rerun from here.
                dispatch_start = jax.tree.map(jnp.copy, state) if self.vmapped else None
                state, metrics = run_steps(state, data, jnp.asarray(num_steps, jnp.int32))
                num_run = int(np.max(state.step)) - step
                metrics = jax.device_get(metrics)
                seconds = time.perf_counter() - start
                if self.vmapped:
                    finite = metrics.pop(STATE_FINITE)[:, :num_run]
                    self._keep_last_finite(runs, dispatch_start, data, run_steps, metrics, finite)
                else:
                    finite = np.asarray(_state_finite(state))[None, None]
                losses, epoch_records = [], []
                for m, run in enumerate(runs):
                    if run.diverged is not None:
                        continue
                    own = {k: (v[m] if self.vmapped else v)[:num_run] for k, v in metrics.items()}
                    grid = (grid_z, grid_labels, grid_cols, real_points)
                    completed = self._after_dispatch(
                        run,
                        functools.partial(self._member, state, m),
                        bool(finite[m].all()),
                        own,
                        step,
                        num_run,
                        seconds,
                        grid,
                    )
                    if completed:
                        epoch_records.append(completed)
                    losses.append((own["loss_d"].mean(), own["loss_g"].mean()))
                # After every member's records and pictures: a sweep's saves queue behind
                # each other, and its pictures are drawn meanwhile.
                for m, run in enumerate(runs):
                    if run.diverged is None and self._saves_at(run, step + num_run):
                        self._save(run, state, m, step + num_run)
                if self.vmapped and epoch_records:
                    _log_members(epoch_records, config.num_epochs, len(runs))
                if not losses:
                    raise errors.DivergedError(
                        f"every member diverged; the first {runs[0].diverged}"
                    )
                step += num_run
                progress.update(num_run)
                loss_d, loss_g = np.mean(losses, axis=0)
                progress.set_postfix(loss_d=f"{loss_d:.3f}", loss_g=f"{loss_g:.3f}")
        except errors.Interrupted as stop:
            signal = interrupts.signal_name(stop.signum)
            if step == 0:
                message = f"interrupted by {signal} before the first step: nothing to save yet"
            else:
                for m, run in enumerate(runs):
                    if run.diverged is None and run.saved_step != step:
                        self._save(run, state, m, step)
                for run in runs:
                    run.checkpoints.wait()
                where = runs[0].checkpoints.directory if len(runs) == 1 else "each member's workdir"
                message = (
                    f"interrupted by {signal} at step {step}: checkpoint {step} is saved in "
                    f"{where}; rerun the same command to resume"
                )
            raise errors.Interrupted(stop.signum, message) from None
        finally:
            progress.close()
            for run in runs:
                run.writer.close()
        return state

    def _keep_last_finite(
        self,
        runs: list[_Run],
        dispatch_start: GANState,
        data: TrainingData,
        run_steps: Callable[[GANState, TrainingData, jax.Array], tuple[GANState, Any]],
        metrics: Mapping[str, np.ndarray],
        state_finite: np.ndarray,
    ) -> None:
        """Sets `last_finite` of each member that went non-finite in this dispatch.

        The dispatch is rerun from `dispatch_start` up to each such member's last
        finite step (runs of fewer steps give bit-identical states) and the member
        taken from there; the other members' results are the dispatch's own.
        """
        num_run = state_finite.shape[1]
        finite_steps = state_finite & np.all(
            [np.isfinite(v[:, :num_run]) for v in metrics.values()], axis=0
        )
        bad_step = {  # the index in this dispatch of each live member's first bad step
            m: int(np.argmin(finite_steps[m]))
            for m, run in enumerate(runs)
            if run.diverged is None and not finite_steps[m].all()
        }
        first = int(np.max(dispatch_start.step))
        state, done = dispatch_start, 0
        for index in sorted(set(bad_step.values())):
            while done < index:
                state, _ = run_steps(state, data, jnp.asarray(index - done, jnp.int32))
                done = int(np.max(state.step)) - first
            for m in (m for m, i in bad_step.items() if i == index):
                runs[m].last_finite = _member_of(state, m)

    def _after_dispatch(
        self,
        run: _Run,
        state: Callable[[], GANState],
        state_finite: bool,
        metrics: Mapping[str, np.ndarray],
        step: int,
        num_run: int,
        seconds: float,
        grid: tuple[jax.Array, jax.Array | None, int, np.ndarray | None],
    ) -> list[dict[str, Any]]:
        """One run's share of a dispatch: divergence, records and pictures.

        `state` gives the run's state (a sweep member's is sliced off the group's only
        when divergence, hooks or pictures need it). Returns the records of the epochs
        the dispatch completed."""
        report = _nonfinite_report(metrics, state, state_finite, step)
        if report:
            saved = run.saved_step
            if not self.vmapped:
                raise errors.DivergedError(
                    f"training diverged {report}; nothing past step {saved} was saved (the "
                    "newest checkpoint); lower the learning rate and rerun (or use --start_over)"
                    if saved is not None
                    else f"training diverged {report}; no checkpoint was saved"
                )
            run.diverged = report
            run.writer.write({"step": step + num_run, "diverged": f"training diverged {report}"})
            logging.warning(
                "%s: training diverged %s; kept its state at step %d",
                run.workdir,
                report,
                int(run.last_finite.step),
            )
            return []
        completed = run.records.add(metrics, seconds)
        self._end_of_dispatch(run, state, step + num_run, completed, *grid)
        return completed

    def _save(self, run: _Run, state: GANState, m: int, step: int) -> None:
        """Queues the save of run `m`'s state (`m`: its member index) at `step`."""
        run.checkpoints.save(step, self._member(state, m), run.config, run.records.pending)
        run.saved_step = step

    def _saves_at(self, run: _Run, step: int) -> bool:
        return step % run.config.checkpoint_every_steps == 0 or step == self.schedule.total_steps

    def _end_of_dispatch(
        self,
        run: _Run,
        state: Callable[[], GANState],
        step: int,
        completed: list[dict[str, Any]],
        grid_z: jax.Array,
        grid_labels: jax.Array | None,
        grid_cols: int,
        real_points: np.ndarray | None,
    ) -> None:
        """Epoch records, hooks, the sample grid and the loss plot due at `step`."""
        config, gan, schedule, workdir, writer = (
            run.config,
            self.gan,
            self.schedule,
            run.workdir,
            run.writer,
        )
        epoch = step // schedule.steps_per_epoch
        sampling = step % schedule.steps_per_epoch == 0 and (
            epoch % config.sample_every_epochs == 0 or step == schedule.total_steps
        )
        if not distributed.is_main():  # the main process writes records and pictures
            return
        # A sweep's members draw their pictures once, at the end: drawing a grid and a
        # loss plot per member per epoch took longer than training 64 Gaussian members.
        pictures_due = sampling and (not self.vmapped or step == schedule.total_steps)
        hooked = sampling and bool(completed) and bool(self.epoch_hooks)
        # With several processes, on the main one's copy of the (replicated) state, made
        # only for the epochs whose hooks and pictures use it (a sweep member's is sliced
        # off the group's state: 1,280 slices of a 64-member Gaussian sweep took 0.8 s).
        shown = distributed.local_copy(for_sampling(state())) if pictures_due or hooked else None
        if hooked:
            for hook in self.epoch_hooks:
                completed[-1].update(hook(gan, shown, epoch))
        for record in completed:
            writer.write(record)
            if not self.vmapped and (len(completed) <= 3 or record is completed[-1]):
                _log_record(record, config.num_epochs)
        if not pictures_due:
            return
        samples = np.asarray(gan.jitted_generate(shown, grid_z, grid_labels))
        draw = self.drawing.draw if self.drawing else _draw_here
        draw(
            write_samples,
            workdir_lib.sample_grid(workdir, epoch),
            samples,
            config,
            grid_cols,
            real_points,
        )
        if samples.ndim == 4:
            writer.write_images(
                "samples", step, np.clip(unscale(samples, config.data.scaling), 0, 1)
            )
        draw(viz.save_loss_plot, workdir_lib.loss_plot(workdir), list(writer.records))


def _draw_here(function: Callable[..., None], *args: Any) -> None:
    function(*args)
