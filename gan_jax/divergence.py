"""What a run does when its values turn non-finite.

A run alone stops with `DivergedError` and saves nothing past its newest checkpoint.
A member of a sweep group keeps its last finite state, gets a `diverged` record, and
the other members go on: the group's dispatch is rerun from its start up to that
member's last finite step to recover the state (runs of fewer steps give bit-identical
states).
"""

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gan_jax import errors
from gan_jax.data.pipeline import TrainingData
from gan_jax.loop import all_finite
from gan_jax.state import GANState, member_state

# Whether every floating leaf of a run's state is finite, in one dispatch.
state_is_finite = jax.jit(all_finite)

RunSteps = Callable[[GANState, TrainingData, jax.Array], tuple[GANState, Any]]


def nonfinite_report(
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


def run_diverged(report: str, saved_step: int | None) -> errors.DivergedError:
    """The error that stops a run alone."""
    if saved_step is None:
        return errors.DivergedError(f"training diverged {report}; no checkpoint was saved")
    return errors.DivergedError(
        f"training diverged {report}; nothing past step {saved_step} was saved (the "
        "newest checkpoint); lower the learning rate and rerun (or use --start_over)"
    )


def last_finite_members(
    dispatch_start: GANState,
    run_steps: RunSteps,
    data: TrainingData,
    metrics: Mapping[str, np.ndarray],
    state_finite: np.ndarray,
    live: Sequence[int],
) -> dict[int, GANState]:
    """The last finite state of each live member that went non-finite in a dispatch.

    Args:
      dispatch_start: the group's state the dispatch began from (a copy: the
        dispatch's own input was donated).
      run_steps, data: what ran the dispatch.
      metrics: the dispatch's per-step metrics, [member, step].
      state_finite: whether each member's state after each step was finite,
        [member, step run].
      live: the members that had not diverged before this dispatch.

    Returns:
      {member index: its state before its first non-finite step}.
    """
    num_run = state_finite.shape[1]
    finite_steps = state_finite & np.all(
        [np.isfinite(v[:, :num_run]) for v in metrics.values()], axis=0
    )
    bad_step = {  # the index in this dispatch of each live member's first bad step
        m: int(np.argmin(finite_steps[m])) for m in live if not finite_steps[m].all()
    }
    first = int(np.max(dispatch_start.step))
    state, done, last_finite = dispatch_start, 0, {}
    for index in sorted(set(bad_step.values())):
        while done < index:
            state, _ = run_steps(state, data, jnp.asarray(index - done, jnp.int32))
            done = int(np.max(state.step)) - first
        for m in (m for m, i in bad_step.items() if i == index):
            last_finite[m] = member_state(state, m)
    return last_finite
