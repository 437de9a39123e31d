"""Training: `train_and_evaluate(config, workdir)` for one run and `train_group` for a
sweep group trained as one vmapped program. Both follow `_train`, start to end.

A training call claims its workdirs, loads the data set, resumes each run from the
newest good checkpoint in its workdir (so rerunning a command resumes it) and runs the
jitted multi-step loop of `gan_jax.loop` in dispatches that end where
`gan_jax.schedule` says something is due. After each dispatch the host reads the
metrics back once and, for each run, checks them (`gan_jax.divergence`), cuts them into
epoch records (`gan_jax.epoch_records`), runs the epoch hooks and draws the pictures
(`gan_jax.drawing`) at drawing epochs, and saves the checkpoints that are due.

What a run survives (see the README): SIGINT/SIGTERM stop it between steps with a
checkpoint (`gan_jax.errors.Interrupted`); damaged checkpoints are skipped; a
non-finite value stops it without saving (`DivergedError`); a full disk stops it with
the older checkpoints intact (`DiskFullError`); a second writer on the same workdir is
refused; changed settings are applied or refused (`gan_jax.resume`).
"""

import contextlib
import dataclasses
import functools
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

from gan_jax import distributed, divergence, errors, interrupts, parallel, resume, sweep_spec, viz
from gan_jax import drawing as drawing_lib
from gan_jax import search as search_lib
from gan_jax import workdir as workdir_lib
from gan_jax.checkpoint import Checkpoints, Restored
from gan_jax.config import Config, to_dict
from gan_jax.data import catalog
from gan_jax.data.pipeline import TrainingData, load_training_data
from gan_jax.epoch_records import EpochRecords, log_members, log_record
from gan_jax.errors import ConfigError, UserError
from gan_jax.loop import STATE_FINITE, make_run_steps, takes_labels
from gan_jax.metric_writer import MetricWriter, read_metrics
from gan_jax.schedule import Schedule, make_schedule
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

# Called at each drawing epoch with (gan, state, epoch); returns extra metrics to record.
EpochHook = Callable[[GAN, GANState, int], Mapping[str, Any]]


# A dispatch's metrics go to buffers of at least this many steps (or the dispatch's
# limit, `steps_per_dispatch`): every run of one model up to that length then compiles
# the same program, which a resumed or lengthened run finds in the compilation cache.
_MIN_HISTORY_STEPS = 1024


def train_and_evaluate(
    config: Config,
    workdir: str,
    *,
    epoch_hooks: Sequence[EpochHook] = (),
    start_over: bool = False,
) -> GANState:
    """Trains (or resumes training) `config` in `workdir` and returns the final state.

    Args:
      config: the run.
      workdir: where checkpoints, metrics and pictures go (`gan_jax.workdir`); an
        existing checkpoint there is resumed.
      epoch_hooks: called at each drawing epoch (every `config.sample_every_epochs`,
        and the last); what they return is added to that epoch's metrics record.
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
    search: search_lib.Searching | None = None,
) -> list[GANState]:
    """Trains a sweep group as one vmapped program; each member is an ordinary run.

    The members (`gan_jax.sweep_spec.groups` puts them in one group) may differ only
    in their seeds and optimizer hyperparameters. Each writes its own workdir exactly
    as `train_and_evaluate` would, and equals its solo run up to float rounding. A
    member whose values turn non-finite keeps its last finite state: its metrics.jsonl
    gets a `diverged` record, its checkpoints stop there, and the others go on.

    Args:
      drawing: where the members draw their final pictures, for a caller that waits for
        them itself (`drawing.drawing_for`), so they may still be drawn when this returns.
        Without it, a group of `drawing.drawing_for`'s size draws in a process of its own, and
        every picture is written before this returns.
      search: search the group's settings (`gan_jax.search`) instead of training every
        member to the end: at each rung, halving stops the worse members (each gets a
        `stopped` record and keeps its checkpoint there) and PBT copies the better over
        the worse (each copy recorded as an `exploit`).

    Returns:
      The members' final states.
    """
    if len(configs) != len(workdirs) or len(set(workdirs)) != len(workdirs):
        raise ValueError("one distinct workdir per member is needed")
    return _train(
        list(configs),
        list(workdirs),
        epoch_hooks,
        start_over,
        vmapped=True,
        drawing=drawing,
        search=search,
    )


@dataclasses.dataclass
class _Run:
    """One run of a training call and its outputs (a sweep group trains several)."""

    config: Config
    workdir: str
    checkpoints: Checkpoints
    writer: MetricWriter | None = None
    records: EpochRecords | None = None
    saved_step: int | None = None
    diverged: str | None = None  # what went non-finite, once something has
    stopped: str | None = None  # why a searching sweep stopped the member, once it has
    # The state a diverged member kept (its last finite one) or a stopped one stopped at.
    kept_state: GANState | None = None


@dataclasses.dataclass
class _Program:
    """What trains: the state on its devices (a sweep group's members stacked), the runs
    in it (a member's slot is its index), their data and the jitted loop."""

    state: GANState
    members: list[_Run]
    data: TrainingData
    placement: parallel.Placement
    run_steps: divergence.RunSteps


@dataclasses.dataclass(frozen=True)
class _Shared:
    """What every run of a training call shares."""

    gan: GAN  # the first member's, placed; the members differ only in traced values
    schedule: Schedule
    vmapped: bool  # the state holds every member (`stack_states`)
    epoch_hooks: Sequence[EpochHook]
    grid: drawing_lib.Grid
    draw: drawing_lib.Draw
    # A sweep group's members train on data of their own (`catalog` says drawn from seed).
    member_data: bool
    # The jitted loop for a placement (a searching sweep's program shrinks).
    make_run_steps: Callable[[parallel.Placement], divergence.RunSteps]


def _train(
    configs: list[Config],
    workdirs: list[str],
    epoch_hooks: Sequence[EpochHook],
    start_over: bool,
    *,
    vmapped: bool,
    drawing: viz.DrawingProcess | None,
    search: search_lib.Searching | None = None,
) -> list[GANState]:
    """Every training call, from claiming its workdirs to its last save."""
    config = configs[0]  # the members differ only where `sweep_spec.groups` allows
    with interrupts.deferred(), contextlib.ExitStack() as stack:
        interrupts.raise_if_requested("before training started: nothing to save yet")
        workdirs = _claim_workdirs(workdirs, start_over, vmapped, stack)
        # Whatever is entered from here on closes (Orbax's queued saves finish) inside it.
        stack.enter_context(_disk_full_reported(workdirs[0]))

        # The data set, the schedule, the GANs and the devices they run on.
        if vmapped and sweep_spec.groups(configs) != [list(range(len(configs)))]:
            raise ConfigError("sweep members that differ in structure cannot train together")
        # Synthetic data sets are drawn from each member's seed; others are shared.
        member_data = vmapped and catalog.kind_of(config.data.name).drawn_from_seed
        # Several processes: each reads from disk only the examples its devices hold.
        host_data = [
            load_training_data(c.data, c.seed, mapped=jax.process_count() > 1)
            for c in (configs if member_data else configs[:1])
        ]
        num_examples = len(host_data[0].examples)
        schedule = make_schedule(config, num_examples, search.search.every_epochs if search else 0)
        gans = [build_gan(c) for c in configs]
        placement = parallel.plan(
            config.num_devices,
            len(configs) if vmapped else config.batch_size,
            f"the group's {len(configs)} members" if vmapped else f"batch_size {config.batch_size}",
            members=vmapped,
        )
        gan = dataclasses.replace(gans[0], batch_sharding=placement.batch_sharding)
        _check_data(gan, host_data[0])
        interrupts.raise_if_requested("before training started: nothing to save yet")

        # Where each run starts: its newest good checkpoint, else a fresh state.
        runs = []
        for run_config, workdir in zip(configs, workdirs, strict=True):
            checkpoints = Checkpoints(
                workdir_lib.checkpoints_dir(workdir), max_to_keep=run_config.keep_checkpoints
            )
            stack.callback(checkpoints.close)
            runs.append(_Run(run_config, workdir, checkpoints))
        states, pending = _start_states(runs, gans, vmapped)
        for run in runs if distributed.is_main() else ():
            # Written only once the checkpoint's settings are known to fit.
            with open(workdir_lib.config_file(run.workdir), "w") as f:
                json.dump(to_dict(run.config), f, indent=2)
        # A searching sweep's stopped members are out of the program.
        in_program = [m for m, run in enumerate(runs) if run.stopped is None]
        states = [states[m] for m in in_program]
        state = stack_states(states) if vmapped else states[0]
        step = int(np.max(state.step))  # a diverged member's is behind the others'

        # Onto the devices; each run's writer and records; the jitted loop.
        data = host_data[0]
        if member_data:
            data = TrainingData(np.stack([host_data[m].examples for m in in_program]), None)
        data = placement.put_data(
            TrainingData(data.examples, data.labels if takes_labels(config) else None),
            member_data,
        )
        state = placement.put_state(state)
        if vmapped and drawing is None:
            drawing = stack.enter_context(drawing_lib.drawing_for(len(runs)))
        for run, run_pending in zip(runs, pending, strict=True):
            is_main = distributed.is_main()
            run.writer = MetricWriter(run.workdir, resume_step=step) if is_main else _NoWriter()
            stack.callback(run.writer.close)
            if run.diverged is None:
                run.records = EpochRecords(schedule, config.batch_size, step, run_pending)
            run.saved_step = run.checkpoints.latest_step()
        shared = _Shared(
            gan,
            schedule,
            vmapped,
            epoch_hooks,
            drawing_lib.grid_for(gan, host_data[0].examples),
            drawing.draw if drawing else drawing_lib.draw_here,
            member_data,
            functools.partial(
                make_run_steps,
                gan,
                num_examples,
                schedule.batches_per_epoch,
                max_steps=min(
                    config.steps_per_dispatch, max(schedule.total_steps, _MIN_HISTORY_STEPS)
                ),
                # Several processes agree on a stop once per dispatch instead (see
                # `_raise_if_stop_requested`).
                should_stop=interrupts.requested if jax.process_count() == 1 else None,
                members=vmapped,
                member_data=member_data,
            ),
        )
        program = _Program(
            state,
            [runs[m] for m in in_program],
            data,
            placement,
            shared.make_run_steps(placement=placement),
        )
        logging.info(
            "%s: %d examples, %d steps/epoch, %d epochs (%d steps), %s%s%s",
            config.experiment,
            num_examples,
            schedule.steps_per_epoch,
            config.num_epochs,
            schedule.total_steps,
            f"resuming at step {step}" if step else "from scratch",
            f", {len(program.members)} members in one program" if vmapped else "",
            f", on {placement.num_devices} devices" if placement.mesh else "",
        )
        progress = tqdm.tqdm(
            total=schedule.total_steps,
            initial=step,
            unit="step",
            dynamic_ncols=True,
            disable=None if distributed.is_main() else True,  # only on a terminal
        )
        stack.callback(progress.close)

        # Dispatches, each ending where the schedule has something due.
        try:
            while step < schedule.total_steps:
                _raise_if_stop_requested("during training")
                if search is not None and schedule.searches_at(step):
                    # At the top of the loop: a search resumed at a rung decides it again,
                    # from the states saved there, as the unbroken one did.
                    program = _rung(shared, search, program, step)
                num_steps = schedule.next_stop(step) - step
                start = time.perf_counter()
                state, members = program.state, program.members
                # `state` is donated: a diverged member's last finite state is rerun from
                # a copy.
                dispatch_start = jax.tree.map(jnp.copy, state) if vmapped else None
                state, metrics = program.run_steps(
                    state, program.data, jnp.asarray(num_steps, jnp.int32)
                )
                program.state = state
                num_run = int(np.max(state.step)) - step
                metrics = jax.device_get(metrics)
                seconds = time.perf_counter() - start
                if vmapped:
                    finite = metrics.pop(STATE_FINITE)[:, :num_run]
                    live = [m for m, run in enumerate(members) if run.diverged is None]
                    last_finite = divergence.last_finite_members(
                        dispatch_start, program.run_steps, program.data, metrics, finite, live
                    )
                    for m, member in last_finite.items():
                        members[m].kept_state = member
                else:
                    finite = np.asarray(divergence.state_is_finite(state))[None, None]

                # Each run's records, hooks and pictures; then the saves due, which a
                # sweep queues behind each other while its pictures draw.
                losses, epoch_records = [], []
                for m, run in enumerate(members):
                    if run.diverged is not None:
                        continue
                    own = {k: (v[m] if vmapped else v)[:num_run] for k, v in metrics.items()}
                    completed = _after_dispatch(
                        shared,
                        run,
                        functools.partial(_member, state, m, vmapped),
                        bool(finite[m].all()),
                        own,
                        step,
                        num_run,
                        seconds,
                    )
                    if completed:
                        epoch_records.append(completed)
                    losses.append((own["loss_d"].mean(), own["loss_g"].mean()))
                for m, run in enumerate(members):
                    if run.diverged is None and schedule.saves_at(step + num_run):
                        _save(run, state, m, step + num_run, vmapped)
                if vmapped and epoch_records:
                    log_members(epoch_records, config.num_epochs, len(members))
                if not losses:
                    raise errors.DivergedError(
                        f"every member diverged; the first {members[0].diverged}"
                    )
                step += num_run
                progress.update(num_run)
                loss_d, loss_g = np.mean(losses, axis=0)
                progress.set_postfix(loss_d=f"{loss_d:.3f}", loss_g=f"{loss_g:.3f}")
        except errors.Interrupted as stop:
            raise _saved_on_interrupt(stop, program, step, vmapped) from None
    if not vmapped:
        return [program.state]
    slots = {id(run): m for m, run in enumerate(program.members)}
    return [
        run.kept_state
        if run.diverged or run.stopped
        else member_state(program.state, slots[id(run)])
        for run in runs
    ]


def _claim_workdirs(
    workdirs: list[str], start_over: bool, vmapped: bool, stack: contextlib.ExitStack
) -> list[str]:
    """Creates the workdirs and locks them (held until `stack` closes); with
    `start_over`, moves a previous run aside. Returns their absolute paths."""
    workdirs = [workdir_lib.prepare(workdir) for workdir in workdirs]
    if vmapped and jax.process_count() > 1:
        raise UserError("a sweep runs in one process (several processes: not yet)")
    for workdir in workdirs if distributed.is_main() else ():
        stack.enter_context(workdir_lib.WorkdirLock(workdir))
        if start_over:
            moved = workdir_lib.move_run_aside(workdir, keep=(workdir_lib.LOCK_NAME,))
            if moved:
                logging.warning("--start_over: moved the previous run to %s", moved)
    distributed.sync("workdirs ready")  # the others read what the main process left
    return workdirs


@contextlib.contextmanager
def _disk_full_reported(workdir: str):
    """Turns a failed write for lack of space into a one-line `DiskFullError` saying
    which checkpoint is intact."""
    try:
        yield
    except Exception as error:  # Orbax re-raises OSErrors as other types.
        if not errors.is_out_of_space(error):
            raise
        steps = workdir_lib.checkpoint_steps(workdir)
        kept = (
            f"the newest complete checkpoint is step {steps[-1]}" if steps else "no checkpoint yet"
        )
        raise errors.DiskFullError(
            f"out of disk space writing to {workdir} ({errors.first_line(error)}); "
            f"{kept}; free some space and rerun to resume"
        ) from None


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


def _start_states(
    runs: list[_Run], gans: list[GAN], vmapped: bool
) -> tuple[list[GANState], list[Mapping[str, np.ndarray]]]:
    """Each run's newest good checkpoint with its settings applied, or a fresh state
    (the fresh ones initialised together), and the records it had not yet written.

    A sweep member that diverged before stays diverged, at the state it kept; one that a
    search stopped before the others' step stays stopped (at their step, the rung that
    stopped it is decided again)."""
    restored = [run.checkpoints.restore_latest() for run in runs]
    fresh = [m for m, r in enumerate(restored) if r is None]
    seeds = [runs[m].config.seed for m in fresh]
    fresh_states = iter(create_states([gans[m] for m in fresh], seeds) if fresh else [])
    states, pending = [], []
    for run, gan, r in zip(runs, gans, restored, strict=True):
        state, run_pending = (next(fresh_states), {}) if r is None else _resumed(run, gan, r)
        states.append(state)
        pending.append(run_pending)
        records = read_metrics(workdir_lib.metrics_file(run.workdir))
        if vmapped and records and "diverged" in records[-1]:
            run.diverged = records[-1]["diverged"]
            run.kept_state = state
        if vmapped and records and "stopped" in records[-1]:
            run.stopped = records[-1]["stopped"]
            run.kept_state = state
    going = [int(s.step) for s, run in zip(states, runs, strict=True) if not run.diverged]
    for state, run in zip(states, runs, strict=True):
        if run.stopped and int(state.step) == max(going, default=-1):
            run.stopped = run.kept_state = None  # stopped at this rung: decided again
    steps = {
        int(s.step)
        for s, run in zip(states, runs, strict=True)
        if not (run.diverged or run.stopped)
    }
    if len(steps) > 1:
        raise UserError(
            "the sweep's members were saved at different steps "
            f"({sorted(steps)}); rerun with --start_over, or run them one by one"
        )
    return states, pending


def _resumed(run: _Run, gan: GAN, restored: Restored) -> tuple[GANState, dict[str, np.ndarray]]:
    """A restored checkpoint's state with this run's settings applied."""
    changes = resume.check_resumable(restored.config, run.config, restored.step)
    state = restored.state
    if changes:
        logging.warning(
            "resuming at step %d with changed settings: %s",
            restored.step,
            "; ".join(f"{k}: {a} -> {b}" for k, (a, b) in changes.items()),
        )
        if any(name.endswith(resume.OPTIMIZER_FIELDS) for name in changes):
            # Only then: a searched member's state holds settings of its own (PBT's).
            state = resume.apply_optimizer_settings(gan, state)
        if distributed.is_main():
            resume.record_changes(run.workdir, restored.step, changes)
    logging.info("resumed from step %d in %s", restored.step, run.checkpoints.directory)
    return state, restored.pending_metrics


def _after_dispatch(
    shared: _Shared,
    run: _Run,
    state: Callable[[], GANState],
    state_finite: bool,
    metrics: Mapping[str, np.ndarray],
    step: int,
    num_run: int,
    seconds: float,
) -> list[dict[str, Any]]:
    """One run's share of a dispatch that began at `step`: divergence, the records of
    the epochs it completed (returned), and at a drawing epoch the hooks and pictures.

    `state` gives the run's state (a sweep member's is sliced off the group's only
    when divergence, hooks or pictures need it)."""
    report = divergence.nonfinite_report(metrics, state, state_finite, step)
    if report:
        if not shared.vmapped:
            raise divergence.run_diverged(report, run.saved_step)
        run.diverged = report
        run.writer.write({"step": step + num_run, "diverged": f"training diverged {report}"})
        logging.warning(
            "%s: training diverged %s; kept its state at step %d",
            run.workdir,
            report,
            int(run.kept_state.step),
        )
        return []
    completed = run.records.add(metrics, seconds)
    if not distributed.is_main():  # the main process writes records and pictures
        return completed
    step += num_run
    draws = shared.schedule.draws_at(step)
    # A sweep's members draw their pictures once, at the end: drawing a grid and a
    # loss plot per member per epoch took longer than training 64 Gaussian members.
    pictures_due = draws and (not shared.vmapped or step == shared.schedule.total_steps)
    hooked = draws and bool(completed) and bool(shared.epoch_hooks)
    # With several processes, on the main one's copy of the (replicated) state, made
    # only for the epochs whose hooks and pictures use it (a sweep member's is sliced
    # off the group's state: 1,280 slices of a 64-member Gaussian sweep took 0.8 s).
    shown = distributed.local_copy(for_sampling(state())) if pictures_due or hooked else None
    epoch = shared.schedule.epoch(step)
    if hooked:
        for hook in shared.epoch_hooks:
            completed[-1].update(hook(shared.gan, shown, epoch))
    for record in completed:
        run.writer.write(record)
        if not shared.vmapped and (len(completed) <= 3 or record is completed[-1]):
            log_record(record, run.config.num_epochs)
    if pictures_due:
        drawing_lib.draw_epoch(
            shared.gan, shown, shared.grid, run.workdir, step, epoch, run.writer, shared.draw
        )
    return completed


def _rung(
    shared: _Shared, searching: search_lib.Searching, program: _Program, step: int
) -> _Program:
    """A searching sweep's rung at `step`: scores the live members (from the states saved
    at `step`), records each one's score and rank, and halves the program or copies the
    better members over the worse. Returns the program that trains on."""
    search, name = searching.search, searching.score_name
    rung = step // shared.schedule.search_every_steps
    members = program.members
    live = [m for m, run in enumerate(members) if run.diverged is None]
    scores = [
        searching.score(shared.gan, for_sampling(member_state(program.state, m))) for m in live
    ]
    rank = {live[i]: r for r, i in enumerate(search_lib.ranking(scores), 1)}
    records = {
        live[i]: {"step": step, "rung": rung, f"rung_{name}": score, "rung_rank": rank[live[i]]}
        for i, score in enumerate(scores)
    }
    if search.kind == "halving":
        kept = [live[i] for i in search_lib.halving_survivors(scores, search.halving_eta)]
        for m in live:
            if m in kept:
                continue
            run = members[m]
            run.stopped = records[m]["stopped"] = (
                f"stopped at rung {rung} (step {step}): {name} {scores[live.index(m)]:.4g}, "
                f"rank {rank[m]} of {len(live)}"
            )
            run.kept_state = member_state(program.state, m)
            if distributed.is_main():  # a stopped member's last pictures
                epoch = shared.schedule.epoch(step)
                shown = distributed.local_copy(for_sampling(run.kept_state))
                drawing_lib.draw_epoch(
                    shared.gan,
                    shown,
                    shared.grid,
                    run.workdir,
                    step,
                    epoch,
                    run.writer,
                    shared.draw,
                )
        logging.info(
            "rung %d at step %d: %d of %d members go on (%s %.4g best)",
            rung,
            step,
            len(kept),
            len(live),
            name,
            min(scores),
        )
        program = _shrunk(shared, program, kept)
    else:
        copies = [
            search_lib.Copy(live[c.target], live[c.source], c.factors)
            for c in search_lib.pbt_copies(search, scores, rung)
        ]
        before = search_lib.settings_of(program.state)
        program.state = search_lib.exploit(program.state, copies, shared.gan.config)
        after = search_lib.settings_of(program.state)
        for copy in copies:
            records[copy.target]["exploit"] = {
                "from": os.path.basename(members[copy.source].workdir),
                # Every in-state setting, [before, after]: what it had, what it now has.
                "settings": {
                    setting: [before[setting][copy.target], values[copy.target]]
                    for setting, values in after.items()
                },
            }
        logging.info(
            "rung %d at step %d: %d members copied from better ones (%s %.4g best)",
            rung,
            step,
            len(copies),
            name,
            min(scores),
        )
    for m, record in records.items():
        writer = members[m].writer
        # A search resumed at this rung decides it again, alike: written once.
        if not any(r.get("rung") == rung for r in writer.records):
            writer.write(record)
    return program


def _shrunk(shared: _Shared, program: _Program, kept: list[int]) -> _Program:
    """The program of the members at slots `kept` only: a smaller vmapped state, data
    and compiled loop, on as many of the devices as the members split over."""
    requested = program.placement.num_devices if program.placement.mesh else 1
    placement = parallel.plan(
        requested if len(kept) % requested == 0 else 0,
        len(kept),
        f"the group's {len(kept)} members",
        members=True,
    )
    slots = jnp.asarray(kept)
    state = placement.put_state(_gather_members(program.state, slots))
    data = _gather_members(program.data, slots) if shared.member_data else program.data
    data = placement.put_data(data, shared.member_data)
    return _Program(
        state,
        [program.members[m] for m in kept],
        data,
        placement,
        shared.make_run_steps(placement=placement),
    )


@jax.jit
def _gather_members(tree: Any, slots: jax.Array) -> Any:
    return jax.tree.map(lambda leaf: leaf[slots], tree)


def _member(state: GANState, m: int, vmapped: bool) -> GANState:
    """Run `m`'s state: a sweep member's sliced off the group's."""
    return member_state(state, m) if vmapped else state


def _save(run: _Run, state: GANState, m: int, step: int, vmapped: bool) -> None:
    """Queues the save of run `m`'s state (`m`: its member index) at `step`."""
    run.checkpoints.save(step, _member(state, m, vmapped), run.config, run.records.pending)
    run.saved_step = step


def _saved_on_interrupt(
    stop: errors.Interrupted, program: _Program, step: int, vmapped: bool
) -> errors.Interrupted:
    """Saves each live run at `step` (unless it just was) and says where."""
    runs, state = program.members, program.state
    signal = interrupts.signal_name(stop.signum)
    if step == 0:
        return errors.Interrupted(
            stop.signum, f"interrupted by {signal} before the first step: nothing to save yet"
        )
    for m, run in enumerate(runs):
        if run.diverged is None and run.saved_step != step:
            _save(run, state, m, step, vmapped)
    for run in runs:
        run.checkpoints.wait()
    where = runs[0].checkpoints.directory if len(runs) == 1 else "each member's workdir"
    return errors.Interrupted(
        stop.signum,
        f"interrupted by {signal} at step {step}: checkpoint {step} is saved in {where}; "
        "rerun the same command to resume",
    )


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


class _NoWriter:
    """The metric writer of a process other than the main one, which writes the run's
    records alone."""

    def __init__(self) -> None:
        self.records: list[dict[str, Any]] = []

    def write(self, record: Mapping[str, Any], *, prefix: str = "train") -> None:
        del record, prefix

    def close(self) -> None:
        pass
