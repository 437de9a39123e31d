"""Steps in one jitted call: many per dispatch, on the device or the host, and their batches.

The pure updates live in `gan_jax.steps`; this module decides which real batches
each step sees and how steps are dispatched. The data is one stream of batches:
a step with k D updates (`Config.d_steps_per_g_step`) takes the k batches at
positions s*k .. s*k+k-1 of it, so with one D update step s takes batch s. Batch
p comes from the order of epoch p // batches_per_epoch, which derives from
`fold_in(stream(root, DATA), epoch)` (or from position p itself when sampling with
replacement), so a resumed run sees exactly the batches an unbroken run would.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp

from gan_jax import losses
from gan_jax.config import Config
from gan_jax.data.pipeline import TrainingData, epoch_order, scale
from gan_jax.parallel import Placement, split_batch
from gan_jax.state import GAN, GANState
from gan_jax.steps import Metrics, train_step

_DATA_STREAM = 1  # gan_jax.steps draws the steps' randomness from stream 0
_MEMBERS = "members"  # the vmapped axis of a sweep group's members
STATE_FINITE = "state_finite"  # with members: whether each step's new state is finite


def data_key(root_key: jax.Array) -> jax.Array:
    """The key that the data order derives from."""
    return jax.random.fold_in(root_key, _DATA_STREAM)


@dataclasses.dataclass(frozen=True)
class BatchStream:
    """Which examples make up batch `position` of the data stream.

    Attributes:
      sampling: `DataConfig.sampling`: 'epoch', 'sequential' or 'with_replacement'.
      batch_size: examples per batch.
      num_examples: the training set's size.
      batches_per_epoch: batches between data-order reshuffles.
    """

    sampling: str
    batch_size: int
    num_examples: int
    batches_per_epoch: int
    member_axis: str | None = None

    def order(self, root_key: jax.Array, position: jax.Array) -> jax.Array:
        """The data order of the epoch holding batch `position` (a permutation)."""
        if self.sampling == "sequential":
            return jnp.arange(self.num_examples)
        epoch = position // self.batches_per_epoch
        return epoch_order(data_key(root_key), epoch, self.num_examples)

    def indices(
        self, root_key: jax.Array, position: jax.Array, order: jax.Array
    ) -> tuple[jax.Array, jax.Array]:
        """Batch `position`'s example indices, and the order of its epoch.

        `order` is the order of the previous batch's epoch; it is recomputed only
        at an epoch's first batch, not for every batch.
        """
        if self.sampling == "with_replacement":
            key = jax.random.fold_in(data_key(root_key), position)
            return jax.random.randint(key, (self.batch_size,), 0, self.num_examples), order
        offset = position % self.batches_per_epoch
        new_epoch = offset == 0
        if self.member_axis:
            # One predicate for all members, so that vmap keeps the `cond` and shuffles
            # only at epoch starts (a per-member predicate makes it a select that
            # shuffles at every step). Reshuffling a member mid-epoch (one left at an
            # earlier step when it diverged) recomputes the order it already has.
            new_epoch = jax.lax.pmax(new_epoch.astype(jnp.int32), self.member_axis) > 0
        order = jax.lax.cond(new_epoch, lambda: self.order(root_key, position), lambda: order)
        return jax.lax.dynamic_slice_in_dim(order, offset * self.batch_size, self.batch_size), order


def takes_labels(config: Config) -> bool:
    """Whether training reads the real examples' labels: a conditional GAN's networks
    take them, and an objective may read them (the semi-supervised GAN's)."""
    return bool(config.num_classes) or losses.uses_real_labels(config.loss)


def gather_batch(
    gan: GAN, data: TrainingData, indices: jax.Array
) -> tuple[jax.Array, jax.Array | None]:
    """The scaled real examples at `indices`, and their labels if training takes them."""
    real = scale(jnp.take(data.examples, indices, axis=0), gan.config.data.scaling)
    labels = None if data.labels is None or not takes_labels(gan.config) else data.labels[indices]
    return split_batch(real, gan.batch_sharding), split_batch(labels, gan.batch_sharding)


def first_position(gan: GAN, step: jax.Array) -> jax.Array:
    """The stream position of step `step`'s first batch."""
    return step * gan.config.d_steps_per_g_step


def default_loop(gan: GAN) -> str:
    """'device' (one `fori_loop` per dispatch), except for conv nets on CPU: 'host'.

    XLA:CPU runs convolutions and their gradients about 100 times slower inside a while
    loop than outside one (jax-ml/jax#12868; a DCGAN or camel step takes seconds there
    instead of a fraction of one), so on CPU conv nets are stepped by a host loop of
    jitted steps instead. Steps are still dispatched asynchronously and metrics read
    back once per dispatch; accelerators always use the device loop. Each model class
    declares whether it is `convolutional`.
    """
    convolutional = gan.generator.convolutional or gan.discriminator.convolutional
    return "host" if jax.default_backend() == "cpu" and convolutional else "device"


# How many steps the host loop queues ahead of the one running: enough to keep the
# device busy between Python's dispatches, few enough that `should_stop` takes effect
# within a step or two.
_HOST_STEPS_IN_FLIGHT = 2


def make_run_steps(
    gan: GAN,
    num_examples: int,
    steps_per_epoch: int,
    max_steps: int,
    loop: str | None = None,
    should_stop: Callable[[], object] | None = None,
    members: bool = False,
    member_data: bool = False,
    placement: Placement | None = None,
) -> Callable[[GANState, TrainingData, jax.Array], tuple[GANState, Metrics]]:
    """Builds the function that runs up to `max_steps` training steps per call.

    Args:
      gan: the networks and optimizers.
      num_examples: the training set's size.
      steps_per_epoch: batches between data-order reshuffles: the steps of an
        epoch when each step takes one batch (`d_steps_per_g_step` 1), else that
        many batches per step.
      max_steps: the most steps one call runs.
      loop: 'device' runs the steps in one jitted `fori_loop`; 'host' calls a jitted
        step from Python (see `default_loop`, the default). Both run the same steps on
        the same data: bit-identical for MLPs on CPU, equal to float32 rounding for
        conv nets (XLA:CPU picks other conv algorithms inside a loop).
      should_stop: the host loop asks it before each step, with at most
        `_HOST_STEPS_IN_FLIGHT` steps queued ahead of the computation, and ends the
        call early when it returns something true (a pending SIGTERM, say); the
        device loop always runs its `num_steps`.
      members: the state is a sweep group's (`state.stack_states`): every leaf has a
        leading member axis, and one vmapped program trains all members on the same
        data. Members may differ in their seeds and in the optimizer hyperparameters
        their states hold; `gan` is any member's. Nothing mixes across members: one
        whose values turn non-finite goes on computing NaNs beside the others, and
        `metrics[STATE_FINITE]` says after which steps its new state was still
        finite, so that the caller can rerun the dispatch from a copy of its start up
        to the member's last finite step (`train` does). Selecting the last finite
        state inside the loop instead kept two states alive at every step and cost a
        quarter of the deep MLP GAN's throughput.
      member_data: with `members`, the data too has a leading member axis (each member
        its own data set: the 2-D Gaussian is drawn from the run's seed); else all
        members train on the one data set.
      placement: the devices of a data-parallel run (`gan_jax.parallel.plan`), whose
        state, data and `gan.batch_sharding` are placed accordingly; the state each step
        returns is kept where it was put. None: one device.

    Returns:
      `run(state, data, num_steps) -> (state, metrics)`. `metrics[name][i]` is step
      i's value for i below the steps actually run (`state.step` tells how many;
      entries past them are zero); with `members`, `metrics[name][m, i]` is member
      m's. With the device
      loop `num_steps` (<= max_steps) is traced, so every call reuses one compilation.
      The state argument is donated.
    """
    config = gan.config
    loop = loop or default_loop(gan)
    if loop not in ("device", "host"):
        raise ValueError(f"loop must be 'device' or 'host', got {loop!r}")
    stream = BatchStream(
        config.data.sampling,
        config.batch_size,
        num_examples,
        steps_per_epoch,
        member_axis=_MEMBERS if members else None,
    )
    num_batches = config.d_steps_per_g_step

    def start_order(state: GANState) -> jax.Array:
        return stream.order(state.key, first_position(gan, state.step))

    def one_step(state: GANState, data: TrainingData, order: jax.Array):
        """One training step at `state.step`; `order` is the current epoch's data order."""
        position = first_position(gan, state.step)
        batches = []
        for i in range(num_batches):
            indices, order = stream.indices(state.key, position + i, order)
            batches.append(gather_batch(gan, data, indices))
        if num_batches == 1:
            real, labels = batches[0]
        else:
            real = tuple(x for x, _ in batches)
            labels = None if batches[0][1] is None else tuple(y for _, y in batches)
        new_state, metrics = train_step(gan, state, real, labels)
        if members:  # the caller rolls a diverged member back (see `make_run_steps`)
            metrics = {**metrics, STATE_FINITE: all_finite(new_state)}
        return new_state, order, metrics

    if members:
        start_order = jax.vmap(start_order)
        one_step = jax.vmap(
            one_step, in_axes=(0, 0 if member_data else None, 0), axis_name=_MEMBERS
        )
    if placement is not None and placement.mesh is not None:
        one_step = _keeping_state_in_place(one_step, placement)

    def empty_history(state: GANState, data: TrainingData) -> Metrics:
        order = jnp.zeros((*state.key.shape, num_examples), jnp.int32)
        shapes = jax.eval_shape(one_step, state, data, order)[2]
        return {k: jnp.zeros((max_steps, *v.shape), v.dtype) for k, v in shapes.items()}

    def run_on_device(state: GANState, data: TrainingData, num_steps: jax.Array):
        def body(i, carry):
            state, order, history = carry
            state, order, metrics = one_step(state, data, order)
            history = {k: history[k].at[i].set(v) for k, v in metrics.items()}
            return state, order, history

        carry = (state, start_order(state), empty_history(state, data))
        state, _, history = jax.lax.fori_loop(0, num_steps, body, carry)
        return state, _steps_last(history)

    if loop == "device":
        return jax.jit(run_on_device, donate_argnums=0)

    jitted_step = jax.jit(one_step, donate_argnums=0)
    jitted_start_order = jax.jit(start_order)

    @jax.jit
    def stack(history: list[Metrics]) -> Metrics:
        names = history[0].keys()
        padding = [(0, max_steps - len(history))] + [(0, 0)] * int(members)
        stacked = {k: jnp.pad(jnp.stack([m[k] for m in history]), padding) for k in names}
        return _steps_last(stacked)

    def run_on_host(state: GANState, data: TrainingData, num_steps: jax.Array):
        num_steps = int(num_steps)
        if not 0 < num_steps <= max_steps:
            raise ValueError(f"num_steps must be in [1, {max_steps}], got {num_steps}")
        order = jitted_start_order(state)
        history = []
        for i in range(num_steps):
            if i and should_stop is not None and should_stop():
                break
            if i >= _HOST_STEPS_IN_FLIGHT:
                # Dispatch runs ahead of the computation: without this wait every step of
                # the call would be queued at once, and a SIGTERM would take effect only
                # after all of them (32 full-width DCGAN steps on a CPU: ten minutes).
                jax.block_until_ready(history[i - _HOST_STEPS_IN_FLIGHT])
            state, order, metrics = jitted_step(state, data, order)
            history.append(metrics)
        return state, stack(history)

    return run_on_host


def _keeping_state_in_place(one_step: Callable, placement: Placement) -> Callable:
    """`one_step` whose new state stays where the placement put the old one."""

    def placed_step(state: GANState, data: TrainingData, order: jax.Array):
        state, order, metrics = one_step(state, data, order)
        # Metrics replicated: every process reads them back whole.
        return placement.constrain_state(state), order, placement.replicate(metrics)

    return placed_step


def _steps_last(history: Metrics) -> Metrics:
    """(steps, members) histories as (members, steps); plain (steps,) ones as they are."""
    return {k: jnp.moveaxis(v, 0, -1) for k, v in history.items()}


def all_finite(tree: object) -> jax.Array:
    """Whether every floating-point leaf of `tree` is finite."""
    leaves = [x for x in jax.tree.leaves(tree) if jnp.issubdtype(x.dtype, jnp.floating)]
    return jnp.all(jnp.stack([jnp.all(jnp.isfinite(x)) for x in leaves]))
