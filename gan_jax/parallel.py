"""Where a run's arrays live: one device, or a mesh of devices (data parallelism).

One run trains on several devices as one jitted program, through shardings (no
`pmap`): its parameters and optimizer states are replicated, each real and fake batch
is split along the mesh, and the device-resident data set is split by examples. XLA
inserts the all-reduces (gradients, BatchNorm's batch statistics, every mean over the
batch) that make the step the one-device step up to float rounding. A sweep group
splits its members instead: each device trains its share of them. The mesh holds
every device of every process of the run (`gan_jax.distributed`); each process
places only its own devices' shards.

On one device nothing is placed or constrained, so a one-device run is the same
program (and gives the same bits) as before data parallelism existed.
"""

import dataclasses
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from gan_jax.errors import UserError

DEVICES = "devices"  # the mesh's one axis


def device_count(requested: int, split_size: int, what: str) -> int:
    """How many devices a run uses (of every process, when there are several).

    Args:
      requested: `Config.num_devices`; 0 asks for as many as are present.
      split_size: the size that the devices split (the batch, or a sweep group's
        members).
      what: names `split_size` in errors, e.g. 'batch_size 100'.

    With `requested` 0 the count is the largest that divides `split_size`, up to every
    device (so the cGAN's batch of one runs on one device of eight); an explicit count
    that does not divide it is a one-line error. Several processes use all devices.
    """
    available = jax.device_count()
    if requested < 0:
        raise UserError(f"num_devices must be 0 (all) or positive, got {requested}")
    if requested > available:
        kind = jax.devices()[0].platform.upper()
        raise UserError(f"num_devices={requested}, but the run has {available} {kind} device(s)")
    if jax.process_count() > 1:  # every process's devices take part
        if requested not in (0, available) or split_size % available:
            raise UserError(
                f"{what} does not split over the {available} devices of "
                f"{jax.process_count()} processes, which a multi-process run uses all of"
            )
        return available
    if requested:
        if split_size % requested:
            raise UserError(
                f"{what} does not split over num_devices={requested}: choose a multiple "
                f"of {requested} or another --num_devices"
            )
        return requested
    return max(n for n in range(1, available + 1) if split_size % n == 0)


@dataclasses.dataclass(frozen=True)
class Placement:
    """A run's devices and where its state, data and batches go on them.

    Attributes:
      mesh: the devices as a one-axis mesh, or None for one device.
      members: the state holds a sweep group's members (a leading member axis),
        which the mesh splits; else the mesh splits each batch.
    """

    mesh: Mesh | None
    members: bool = False

    @property
    def num_devices(self) -> int:
        return 1 if self.mesh is None else self.mesh.size

    @property
    def batch_sharding(self) -> NamedSharding | None:
        """How a step's batches are split, or None when they are not (one device, or a
        sweep whose members are split instead)."""
        if self.mesh is None or self.members:
            return None
        return NamedSharding(self.mesh, PartitionSpec(DEVICES))

    def state_sharding(self) -> NamedSharding | None:
        if self.mesh is None:
            return None
        spec = PartitionSpec(DEVICES) if self.members else PartitionSpec()
        return NamedSharding(self.mesh, spec)

    def constrain_state(self, state: Any) -> Any:
        """Inside jit: the state kept where `put_state` put it (replicated, or split by
        member), rather than wherever XLA's propagation would leave it."""
        sharding = self.state_sharding()
        if sharding is None:
            return state
        return jax.lax.with_sharding_constraint(state, sharding)

    def replicate(self, tree: Any) -> Any:
        """Inside jit: `tree` with a whole copy on every device."""
        if self.mesh is None:
            return tree
        return jax.lax.with_sharding_constraint(tree, NamedSharding(self.mesh, PartitionSpec()))

    def put_state(self, state: Any) -> Any:
        sharding = self.state_sharding()
        return state if sharding is None else jax.tree.map(lambda x: _place(x, sharding), state)

    def put_data(self, data: Any, member_data: bool) -> Any:
        """The training data on the devices: split by examples (padded to a multiple of
        the device count with rows that no batch indexes), or with a sweep's members,
        split by member (each member's own data set) or replicated (one shared set)."""
        if self.mesh is None:
            return jax.device_put(data)
        if self.members:
            spec = PartitionSpec(DEVICES) if member_data else PartitionSpec()
            return jax.tree.map(lambda x: _place(x, NamedSharding(self.mesh, spec)), data)

        sharding = NamedSharding(self.mesh, PartitionSpec(DEVICES))

        def split_examples(x: np.ndarray) -> jax.Array:
            rows = len(x) + (-len(x) % self.mesh.size)

            def shard(index: tuple[slice, ...]) -> np.ndarray:
                # Only this process's devices' rows are read (a memory-mapped data set
                # reads only those from disk); the padding is made here, not copied in.
                start, stop, _ = index[0].indices(rows)
                part = np.asarray(x[start : min(stop, len(x))])
                padding = np.zeros((stop - start - len(part), *x.shape[1:]), x.dtype)
                return np.concatenate([part, padding]) if len(padding) else part

            return jax.make_array_from_callback((rows, *x.shape[1:]), sharding, shard)

        return jax.tree.map(split_examples, data)


def plan(num_devices: int, split_size: int, what: str, members: bool = False) -> Placement:
    """The placement of a run (or, with `members`, of a sweep group of `split_size`)."""
    count = device_count(num_devices, split_size, what)
    if count == 1:
        return Placement(None, members)
    # A plain Mesh has Auto axes: XLA propagates the shardings we place and constrain
    # (`jax.make_mesh` would make them Explicit, sharding in the types).
    return Placement(Mesh(np.array(jax.devices()[:count]), (DEVICES,)), members)


def _place(x: Any, sharding: NamedSharding) -> jax.Array:
    """`x` (the same value in every process) placed as `sharding` says. Each process
    puts only its own devices' shards: a mesh of several processes' devices is not
    addressable from one, so `jax.device_put` cannot place on it."""
    if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        impl = jax.random.key_impl(x)
        data = _place(jax.random.key_data(x), sharding)
        wrap = jax.jit(lambda d: jax.random.wrap_key_data(d, impl=impl), out_shardings=sharding)
        return wrap(data)
    host = np.asarray(x)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def split_batch(x: jax.Array | None, sharding: jax.sharding.Sharding | None) -> jax.Array | None:
    """Inside jit: `x` (batch-leading) split as `sharding` says; as it is without one."""
    if x is None or sharding is None:
        return x
    return jax.lax.with_sharding_constraint(x, sharding)
