"""The command that runs an experiment: flags -> config -> `train_and_evaluate` -> report.

An experiment file (`experiments/*.py`) is a module with
- `NAME`: its name (the default workdir is `runs/<NAME>`),
- `Settings`: a `gan_jax.settings.RunSettings` dataclass holding its document's values,
- `config(**overrides) -> Config`: the run, built from `Settings(**overrides)`,
- optionally `report(finished: Finished) -> None`: what it prints after training,
- optionally `epoch_hooks(config: Config) -> list[EpochHook]`: measurements of its own
  that every run records at epoch ends (beside `--eval_every_epochs` scoring),
and ends with `run_experiment.main(sys.modules[__name__])`. Every settings field
becomes a flag of the same name, type, default, help and check; this module adds
the flags of running (where, scoring while training, starting over), which do not
change the config.
"""

import dataclasses
import json
import sys
import time
import types
from collections.abc import Callable
from typing import Any, Literal

from absl import flags, logging

from gan_jax import command, distributed, search, sweep_spec, sweep_summary
from gan_jax import workdir as workdir_lib
from gan_jax.config import Config, to_dict
from gan_jax.drawing import drawing_for
from gan_jax.errors import ConfigError
from gan_jax.evaluation import Evaluator
from gan_jax.metric_writer import read_metrics
from gan_jax.schedule import check_every_epochs
from gan_jax.settings import (
    NON_NEGATIVE,
    PAPER_OPTIMIZERS,
    POSITIVE,
    Check,
    RunSettings,
    setting,
)
from gan_jax.state import GANState, build_gan, for_sampling
from gan_jax.train import train_and_evaluate, train_group


@dataclasses.dataclass(frozen=True)
class RunOptions:
    """The flags of running an experiment that do not change its config."""

    workdir: str | None = setting(
        None, "Run directory (checkpoints, metrics, samples); rerunning resumes it."
    )
    print_config: bool = setting(
        False, "Print the resolved config as JSON and exit without training (nothing is written)."
    )
    start_over: bool = setting(
        False,
        "Move the run already in --workdir aside (to <workdir>/replaced_<time>/) and train "
        "from scratch, instead of resuming it.",
    )
    eval_every_epochs: int = setting(
        0, "Score samples every this many epochs (0: never) into metrics.jsonl.", NON_NEGATIVE
    )
    eval_num_samples: int = setting(
        10_000, "Generated samples per score (FID, KID, precision/recall, IS).", POSITIVE
    )
    classifier_dir: str | None = setting(
        None,
        "A classifier of the data set's labels to score in (default: the set's own, "
        "trained once into ~/.cache/gan_jax).",
    )
    inception_weights: str | None = setting(
        None,
        "pytorch-fid's Inception weights (pt_inception-2015-12-05-6726825d.pth, or its "
        "converted .npz) for scores in Inception's features (default: "
        "$GAN_JAX_INCEPTION_WEIGHTS, the user cache, or a download where the network allows; "
        "'none': no Inception scores).",
    )
    memorisation_queries: int = setting(
        64, "Generated images compared to their nearest training image.", NON_NEGATIVE
    )
    sweep: str | None = setting(
        None,
        "Train a sweep instead of one run, e.g. 'lr=1e-4,2e-4;seed=0:4' (axes by ';', "
        "values by ',', ranges start:stop, uniform(lo,hi,n), loguniform(lo,hi,n); see "
        "gan_jax/sweep_spec.py). Each member gets <workdir>/<member>/; members that differ "
        "only in seeds and optimizer settings train together as one vmapped program.",
    )
    coordinator_address: str = setting(
        "",
        "host:port of process 0 of a multi-process run (every process runs the same "
        "command with its own --process_id); empty: one process, or SLURM's tasks under srun.",
    )
    num_processes: int = setting(1, "Processes of a multi-process run.", POSITIVE)
    process_id: int = setting(0, "This process's index in a multi-process run.", NON_NEGATIVE)
    peer_timeout: int = setting(
        300, "Seconds a multi-process run waits for all its processes to start.", POSITIVE
    )
    peer_silence: int = setting(
        30,
        "Seconds a process of a multi-process run may fall silent (killed, frozen, cut off) "
        "before the others stop with an error.",
        # Processes beat once a second: a shorter silence would catch a late beat.
        Check(lambda v: v >= 3, "must be at least 3"),
    )
    sweep_chunk: int = setting(
        0,
        "Train at most this many members of a sweep group in one program, chunk after "
        "chunk (0: the whole group). A chunk that runs out of device memory is halved.",
        NON_NEGATIVE,
    )
    search: Literal["grid", "halving", "pbt"] = setting(
        "grid",
        "How a --sweep spends its compute: grid trains every member to the end; halving "
        "(successive halving) keeps the best 1/--halving_eta at each rung and stops the "
        "others; pbt (population-based training) copies the best members over the worst "
        "at each rung, perturbing --pbt_settings. Rungs every --search_every_epochs; "
        "members are scored by the score the sweep ranks by.",
    )
    search_every_epochs: int = setting(
        0, "Epochs between a search's rungs (0: a quarter of --num_epochs).", NON_NEGATIVE
    )
    search_num_samples: int = setting(
        2000, "Generated samples per member per rung score (from a fixed key).", POSITIVE
    )
    halving_eta: int = setting(2, "Halving keeps the best 1/eta of the members at each rung.")
    pbt_fraction: float = setting(
        0.25, "The share of members PBT replaces at each rung, by copies of the best share."
    )
    pbt_factors: str = setting(
        "0.8,1.25", "The factors PBT multiplies a copied member's perturbed settings by."
    )
    pbt_settings: str = setting(
        "learning_rate",
        "The optimizer settings PBT perturbs, comma-separated: learning_rate, b1, b2, eps, "
        "decay (G's and D's by one factor), or g_learning_rate, d_b1, ... (one network's).",
    )


@dataclasses.dataclass(frozen=True)
class Finished:
    """A trained run, as an experiment's `report` sees it."""

    config: Config
    settings: RunSettings
    state: GANState
    options: RunOptions


def _epoch_hooks(experiment: types.ModuleType, config: Config, options: RunOptions) -> list[Any]:
    """The experiment's own epoch hooks, and scoring per `--eval_every_epochs` (if not 0)."""
    own = getattr(experiment, "epoch_hooks", None)
    hooks = list(own(config)) if own is not None else []
    every = options.eval_every_epochs
    if not every:
        return hooks
    check_every_epochs("eval_every_epochs", every, config)
    evaluator = Evaluator(
        config,
        num_samples=options.eval_num_samples,
        data_dir=config.data.data_dir,
        classifier_dir=options.classifier_dir,
        inception_weights=options.inception_weights,
        memorisation_queries=options.memorisation_queries,
    )
    evaluator.feature_networks()  # before training: a classifier missing, weights refused
    return [*hooks, evaluator.epoch_hook(every)]


def run_config(experiment: types.ModuleType, settings: RunSettings) -> Config:
    """The experiment's config for `settings`; a WGAN objective chosen with none of the
    experiment's optimizer settings changed brings its paper's optimizer for G and D."""
    config = experiment.config(**dataclasses.asdict(settings))
    paper = PAPER_OPTIMIZERS.get(settings.loss)
    document = experiment.config()
    if paper is None or (config.g_optimizer, config.d_optimizer) != (
        document.g_optimizer,
        document.d_optimizer,
    ):
        return config
    return dataclasses.replace(config, g_optimizer=paper, d_optimizer=paper)


def main(experiment: types.ModuleType) -> None:
    """Defines the experiment's flags, parses the command line and runs it."""
    setting_flags = command.define_flags(experiment.Settings)
    option_flags = command.define_flags(RunOptions)
    flags.FLAGS.set_default("workdir", f"runs/{experiment.NAME}")

    def run(argv: list[str]) -> None:
        del argv
        settings = command.parsed_settings(experiment.Settings, setting_flags)
        options = command.parsed_settings(RunOptions, option_flags)
        distributed.initialize(
            options.coordinator_address,
            options.num_processes,
            options.process_id,
            options.peer_timeout,
            options.peer_silence,
        )
        if options.sweep is not None:
            _run_sweep(experiment, settings, options)
            return
        if options.search != "grid":
            raise ConfigError(f"--search={options.search} searches a --sweep; give one")
        config = run_config(experiment, settings)
        if options.print_config:
            print(json.dumps(to_dict(config), indent=2))
            sys.exit(0)
        with distributed.peer_failures_as_user_errors():
            state = train_and_evaluate(
                config,
                options.workdir,
                epoch_hooks=_epoch_hooks(experiment, config, options),
                start_over=options.start_over,
            )
        if not distributed.is_main():  # the main process reports for the run
            return
        report = getattr(experiment, "report", None)
        if report is not None:
            report(Finished(config, settings, distributed.local_copy(state), options))
        print(next_steps(options.workdir, time.monotonic() - started))

    started = time.monotonic()
    command.run(run)


def next_steps(workdir: str, seconds: float) -> str:
    """What a finished run left where, and the commands that use it: the last lines a
    newcomer reads."""
    records = read_metrics(workdir_lib.metrics_file(workdir))
    last = records[-1] if records else {}
    scores = ", ".join(
        f"{name} {value:.4g}"
        for name, value in last.items()
        if (name in ("loss_d", "loss_g") or name.startswith("eval/"))
        and isinstance(value, int | float)
    )
    grids = workdir_lib.sample_grids(workdir)
    steps = workdir_lib.checkpoint_steps(workdir)
    checkpoint = workdir_lib.checkpoint_step_dir(workdir, steps[-1]) if steps else "(none)"
    lines = [
        f"finished in {seconds:.0f} s at step {last.get('step', '?')}: {scores}",
        f"  samples     {grids[-1] if grids else '(none yet)'} (the loss curves: "
        f"{workdir_lib.loss_plot(workdir)})",
        f"  metrics     {workdir_lib.metrics_file(workdir)} (or tensorboard --logdir "
        f"{workdir_lib.tensorboard_dir(workdir)})",
        f"  checkpoint  {checkpoint} (the same command resumes; a larger --num_epochs trains on)",
        f"  sample it   python -m gan_jax.sample --workdir={workdir} --out=samples.png",
        f"  score it    python -m gan_jax.evaluate --workdir={workdir}",
    ]
    return "\n".join(lines)


def _run_sweep(experiment: types.ModuleType, settings: RunSettings, options: RunOptions) -> None:
    """Trains every member of `--sweep`, group by group, each in `<workdir>/<member>/`."""
    members = sweep_spec.parse(options.sweep, experiment.Settings)
    base = dataclasses.asdict(settings)
    member_settings = [experiment.Settings(**{**base, **m.overrides}) for m in members]
    configs = [run_config(experiment, s) for s in member_settings]
    groups = sweep_spec.groups(configs)
    searched = _search(options, configs, groups)
    if options.print_config:
        listing = [
            {"name": m.name, "config": to_dict(c)} for m, c in zip(members, configs, strict=True)
        ]
        print(json.dumps({"groups": groups, "members": listing}, indent=2))
        sys.exit(0)
    root = workdir_lib.prepare(options.workdir)
    with open(workdir_lib.sweep_file(root), "w") as f:
        listing = [{"name": m.name, "overrides": m.overrides} for m in members]
        json.dump({"spec": options.sweep, "groups": groups, "members": listing}, f, indent=2)
    # Asked before training: a classifier is trained (or bad weights refused) now, not at
    # the end.
    evaluator = Evaluator(
        configs[0],
        num_samples=options.eval_num_samples,
        classifier_dir=options.classifier_dir,
        inception_weights=options.inception_weights,
        data_dir=configs[0].data.data_dir,
        memorisation_queries=0,
    )
    evaluator.feature_networks()
    searching = None
    if searched is not None:
        score_name = evaluator.ranking_score_name()
        if score_name is None:
            raise ConfigError(f"--search: no score ranks runs on {configs[0].data.name!r}")
        num_samples = options.search_num_samples
        searching = search.Searching(
            searched,
            score_name,
            lambda gan, state: evaluator.ranking_score(gan, state, num_samples),
        )
    report = getattr(experiment, "report", None)
    results = []
    # One drawing process for the whole sweep: the members' final pictures are drawn
    # while the next group trains and while the members are scored.
    with drawing_for(len(members)) as drawing:
        for number, group in enumerate(groups, 1):
            logging.info("sweep group %d/%d: %d members", number, len(groups), len(group))
            trained = _train_in_chunks(
                group,
                options.sweep_chunk or len(group),
                lambda chunk, start_over: train_group(
                    [configs[i] for i in chunk],
                    [workdir_lib.member_dir(root, members[i].name) for i in chunk],
                    epoch_hooks=_epoch_hooks(experiment, configs[chunk[0]], options),
                    start_over=start_over and options.start_over,
                    drawing=drawing,
                    search=searching,
                ),
            )
            for i, state in trained:
                workdir = workdir_lib.member_dir(root, members[i].name)
                records = read_metrics(workdir_lib.metrics_file(workdir))
                diverged = records[-1].get("diverged") if records else None
                stop = next((r for r in records if "stopped" in r), None)
                stopped = stop and stop["stopped"]
                if report is not None and diverged is None:
                    member_options = dataclasses.replace(options, workdir=workdir)
                    print(f"== {members[i].name}")
                    report(Finished(configs[i], member_settings[i], state, member_options))
                if diverged:
                    scores = {}
                elif stop and searching:  # halving judged it by its rung score, enough here
                    name = searching.score_name
                    scores = {name: stop[f"rung_{name}"]}
                else:
                    scores = evaluator(build_gan(configs[i]), for_sampling(state))
                numbers = {k: v for k, v in scores.items() if isinstance(v, int | float)}
                row = {"scores": numbers, "diverged": diverged, "step": int(state.step)}
                if searched is not None:
                    row.update(
                        stopped=stopped,
                        settings=search.config_settings(configs[i]),
                        exploits=[
                            {"step": r["step"], **r["exploit"]} for r in records if "exploit" in r
                        ],
                    )
                results.append((i, row))
        by_member = dict(results)
        rows = [
            {"name": m.name, "overrides": m.overrides, **by_member[i]}
            for i, m in enumerate(members)
        ]
        summary = sweep_summary.write(root, options.sweep, rows, search=options.search)
    if summary.get("ranking"):
        print(f"ranked by {summary['score']} ({summary['score_means']}), best first:")
        for row in summary["ranking"][:_RANKING_SHOWN]:
            shown = [
                f"{k} {v:.4g}" if isinstance(v, float) else str(v)
                for k, v in row.items()
                if k != "stopped"
            ]
            print("  " + "  ".join(shown) + (" (stopped early)" if "stopped" in row else ""))
        for part in summary.get("best_settings", []):  # a search's best member's schedule
            shown = ", ".join(f"{k} {v:.4g}" for k, v in part["settings"].items())
            print(f"  best member's settings from step {part['from_step']}: {shown}")
        print(f"summary in {root}")


def _search(
    options: RunOptions, configs: list[Config], groups: list[list[int]]
) -> search.Search | None:
    """The sweep's `--search` (None for a grid), checked against its members."""
    if options.search == "grid":
        return None
    if len(groups) > 1:
        raise ConfigError(
            f"--search={options.search} trains the members as one program, but they differ "
            f"in structure ({len(groups)} groups): sweep only seeds and optimizer settings"
        )
    if options.sweep_chunk and options.sweep_chunk < len(configs):
        raise ConfigError(
            f"--search={options.search} scores every member at each rung in one program; "
            "drop --sweep_chunk"
        )
    num_epochs = configs[0].num_epochs
    try:
        factors = tuple(float(v) for v in options.pbt_factors.split(","))
    except ValueError:
        raise ConfigError(
            f"--pbt_factors={options.pbt_factors!r}: expected numbers separated by commas"
        ) from None
    searched = search.Search(
        kind=options.search,
        every_epochs=options.search_every_epochs or max(1, num_epochs // 4),
        halving_eta=options.halving_eta,
        pbt_fraction=options.pbt_fraction,
        pbt_factors=factors,
        pbt_settings=tuple(v.strip() for v in options.pbt_settings.split(",") if v.strip()),
    )
    search.check(searched, configs, num_epochs)
    return searched


# Members listed at the end of a sweep (all of them are in summary.json).
_RANKING_SHOWN = 5


def _out_of_memory(error: BaseException) -> bool:
    # XLA's status code, read from the message: importing jax here, before `command`
    # installs the signal handlers, left a window in which Ctrl-C was swallowed.
    return "RESOURCE_EXHAUSTED" in str(error)


def _train_in_chunks(
    group: list[int], chunk_size: int, train: Callable[[list[int], bool], list[GANState]]
) -> list[tuple[int, GANState]]:
    """Trains a group's members `chunk_size` at a time, halving the chunks that do not
    fit in device memory. `train(chunk, first_try)`: a retry resumes the chunk's members
    from whatever they saved (so `--start_over` applies to the first try only)."""
    trained, left, first_try = [], list(group), True
    while left:
        chunk = left[:chunk_size]
        if len(chunk) < len(group):
            logging.info("training members %s (%d at a time)", chunk, chunk_size)
        try:
            states = train(chunk, first_try)
        except Exception as error:
            if not _out_of_memory(error) or chunk_size == 1:
                raise
            first_try = False
            chunk_size = (chunk_size + 1) // 2
            logging.warning(
                "%d members ran out of device memory; retrying %d at a time "
                "(set --sweep_chunk to start there)",
                len(chunk),
                chunk_size,
            )
            continue
        trained += zip(chunk, states, strict=True)
        left, first_try = left[len(chunk) :], True
    return trained
