"""When things happen in a run: its step counts and every cadence.

A run is `total_steps` steps of `steps_per_epoch` each. The host regains control
only at the end of a dispatch (`gan_jax.loop` runs up to `steps_per_dispatch`
steps in one jitted call), so every cadence is asked here, in one place: where the
next dispatch must end (`next_stop`), and at a step where one ends, whether a
checkpoint is due (`saves_at`), whether the epoch's pictures and epoch hooks are
(`draws_at`) and whether a searching sweep's rung is (`searches_at`). A new cadence
is a config field, a predicate here that `next_stop` respects, and what
`gan_jax.train` does when it is due.
"""

import dataclasses

from gan_jax.config import Config
from gan_jax.errors import ConfigError

_POSITIVE = (
    "batch_size",
    "num_epochs",
    "checkpoint_every_steps",
    "steps_per_dispatch",
    "d_steps_per_g_step",
    "sample_every_epochs",
)


@dataclasses.dataclass(frozen=True)
class Schedule:
    """Step counts derived from the config and the data set size, and the cadences."""

    steps_per_epoch: int
    total_steps: int
    # Real batches between data-order reshuffles: each step takes
    # `d_steps_per_g_step` of them, one per D update.
    batches_per_epoch: int
    sample_every_epochs: int
    checkpoint_every_steps: int
    steps_per_dispatch: int
    # Steps between a searching sweep's rungs (`gan_jax.search`); 0: no search.
    search_every_steps: int = 0

    def epoch(self, step: int) -> int:
        """The number of whole epochs done at `step`."""
        return step // self.steps_per_epoch

    def next_stop(self, step: int) -> int:
        """Where the dispatch starting at `step` ends: the next drawing epoch, checkpoint,
        a rung, the dispatch cap, or the end of the run, whichever comes first."""

        def next_multiple(period: int) -> int:
            return (step // period + 1) * period

        return min(
            self.total_steps,
            next_multiple(self.steps_per_epoch * self.sample_every_epochs),
            next_multiple(self.checkpoint_every_steps),
            next_multiple(self.search_every_steps or self.total_steps),
            step + self.steps_per_dispatch,
        )

    def saves_at(self, step: int) -> bool:
        """Whether a checkpoint is due at `step`: every `checkpoint_every_steps`, at each
        rung (the states a rung decides from, so that a resumed search decides alike),
        and last."""
        return (
            step % self.checkpoint_every_steps == 0
            or step == self.total_steps
            or self.searches_at(step)
        )

    def searches_at(self, step: int) -> bool:
        """Whether a searching sweep's rung falls at `step`: every `search_every_steps`,
        but neither at the start nor at the end."""
        every = self.search_every_steps
        return bool(every) and step % every == 0 and 0 < step < self.total_steps

    def draws_at(self, step: int) -> bool:
        """Whether the epoch ending at `step` draws its pictures and runs the epoch hooks:
        every `sample_every_epochs` epochs, and the last."""
        return step % self.steps_per_epoch == 0 and (
            self.epoch(step) % self.sample_every_epochs == 0 or step == self.total_steps
        )


def make_schedule(config: Config, num_examples: int, search_every_epochs: int = 0) -> Schedule:
    """Validates the config against the data size and derives the step counts (with a
    searching sweep's rungs every `search_every_epochs` epochs)."""
    for name in _POSITIVE:
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
    return Schedule(
        steps_per_epoch=steps_per_epoch,
        total_steps=steps_per_epoch * config.num_epochs,
        batches_per_epoch=batches_per_epoch,
        sample_every_epochs=config.sample_every_epochs,
        checkpoint_every_steps=config.checkpoint_every_steps,
        steps_per_dispatch=config.steps_per_dispatch,
        search_every_steps=steps_per_epoch * search_every_epochs,
    )


def check_every_epochs(name: str, every_epochs: int, config: Config) -> None:
    """A cadence of epoch hooks (`--eval_every_epochs`) must fall on drawing epochs:
    hooks run only there, where the state is copied for the pictures."""
    if every_epochs % config.sample_every_epochs:
        raise ConfigError(
            f"--{name}={every_epochs} must be a multiple of "
            f"--sample_every_epochs={config.sample_every_epochs}"
        )
