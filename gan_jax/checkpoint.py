"""Orbax checkpoints of a `GANState` together with the run's config.

Each step directory holds two items: 'state' (the whole GANState, including the
step counter and the root PRNG key, so a restored run continues bit-for-bit) and
'config' (JSON), from which `restore_gan` rebuilds the networks with no flags.
Saves are asynchronous; `close()` (or leaving the `with` block) waits for them.
"""

import os
from typing import Any

import jax
import orbax.checkpoint as ocp
from absl import logging

from gan_jax import config as config_lib
from gan_jax.errors import UserError
from gan_jax.state import GAN, GANState, build_gan, create_state


class NoCheckpointError(UserError, FileNotFoundError):
    """Raised when a directory holds no (readable) checkpoint."""


def checkpoint_dir(workdir: str) -> str:
    """Where a run's checkpoints live."""
    return os.path.join(os.path.abspath(workdir), "checkpoints")


class Checkpoints:
    """Saves and restores `(GANState, Config)` pairs under one directory, keeping the last k."""

    def __init__(self, directory: str, *, max_to_keep: int = 3, asynchronous: bool = True):
        self.directory = os.path.abspath(directory)
        options = ocp.CheckpointManagerOptions(
            max_to_keep=max_to_keep,
            enable_async_checkpointing=asynchronous,
            # A run killed mid-save leaves a '*.orbax-checkpoint-tmp' folder behind.
            cleanup_tmp_directories=True,
            create=True,
        )
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=options,
            item_handlers={
                "state": ocp.StandardCheckpointHandler(),
                "config": ocp.JsonCheckpointHandler(),
            },
        )

    def __enter__(self) -> "Checkpoints":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def all_steps(self) -> list[int]:
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        return self._manager.latest_step()

    def save(self, step: int, state: GANState, config: config_lib.Config) -> None:
        """Starts writing `state` at `step` (a no-op if that step is already saved)."""
        if step in self._manager.all_steps():
            return
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                config=ocp.args.JsonSave(config_lib.to_dict(config)),
            ),
            force=True,
        )

    def restore_config(self, step: int | None = None) -> config_lib.Config:
        """The config saved with `step` (default: the latest step)."""
        step = self._resolve(step)
        restored = self._manager.restore(
            step, args=ocp.args.Composite(config=ocp.args.JsonRestore())
        )
        return config_lib.from_dict(config_lib.Config, restored["config"])

    def restore(self, gan: GAN, step: int | None = None) -> GANState:
        """Restores the state saved at `step` (default: the latest readable step).

        Without an explicit step, a checkpoint that fails to read (say, a file
        corrupted by a crash) is skipped with a warning in favour of the one before.
        """
        abstract = jax.eval_shape(lambda: create_state(gan, 0))
        steps = [self._resolve(step)] if step is not None else self.all_steps()[::-1]
        if not steps:
            raise NoCheckpointError(f"no checkpoint in {self.directory}")
        for i, candidate in enumerate(steps):
            try:
                restored = self._manager.restore(
                    candidate, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
                )
                return restored["state"]
            except (ValueError, OSError, KeyError) as error:
                if step is not None or i == len(steps) - 1:
                    raise
                logging.warning(
                    "checkpoint %d unreadable (%s); trying an older one", candidate, error
                )
        raise AssertionError("unreachable")

    def wait(self) -> None:
        """Blocks until every started save is on disk."""
        self._manager.wait_until_finished()

    def close(self) -> None:
        self._manager.wait_until_finished()
        self._manager.close()

    def _resolve(self, step: int | None) -> int:
        steps = self.all_steps()
        if not steps:
            raise NoCheckpointError(f"no checkpoint in {self.directory}")
        if step is None:
            return steps[-1]
        if step not in steps:
            raise NoCheckpointError(
                f"no checkpoint for step {step} in {self.directory}; have {steps}"
            )
        return step


def restore_gan(workdir: str, step: int | None = None) -> tuple[GAN, GANState, int]:
    """Rebuilds a run's GAN from its saved config and restores its state.

    Args:
      workdir: the run's directory (holding `checkpoints/`).
      step: which checkpoint; None for the latest.

    Returns:
      (gan, state, step).
    """
    directory = checkpoint_dir(workdir)
    if not os.path.isdir(directory):
        raise NoCheckpointError(f"no checkpoints directory in {os.path.abspath(workdir)}")
    with Checkpoints(directory) as checkpoints:
        config = checkpoints.restore_config(step)
        gan = build_gan(config)
        state = checkpoints.restore(gan, step)
    return gan, state, int(state.step)
