"""Orbax checkpoints of a `GANState` with the run's config, verified on every restore.

Each step directory holds three items, written and finalised together by Orbax
(atomically: a step is either complete or invisible):
- 'state': the whole GANState, including the step counter and the root PRNG key,
  so a restored run continues bit for bit; its arrays packed into one flat array per
  dtype (the manifest's `layout` unpacks them), since Orbax's cost per stored array
  was most of a save;
- 'config' (JSON), from which `restore_gan` rebuilds the networks with no flags;
- 'manifest' (JSON): BLAKE2 digests of the state's arrays and of the config, and
  the per-step metrics of the epoch in progress (so a resumed run writes the same
  epoch records as an unbroken one).

A restore recomputes the digests from what it read; a step whose files are
truncated, deleted, unparsable or altered (flipped bytes) fails to match and is
skipped with a one-line warning in favour of the newest good step. A writer moves
damaged steps aside (to `workdir.damaged_checkpoints_dir`) so that training re-saves
them; readers (`read_only=True`, used by `sample` and `evaluate`) never create,
clean up or delete anything, so they can run beside a training process.
"""

import base64
import concurrent.futures
import dataclasses
import hashlib
import json
import math
import os
import shutil
import sys
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

from gan_jax import config as config_lib
from gan_jax import distributed
from gan_jax import workdir as workdir_lib
from gan_jax.errors import UserError, first_line
from gan_jax.state import GAN, GANState, build_gan, create_state

# 2: the state's arrays packed by dtype (`_pack`); 1: one stored array per leaf, as
# checkpoints before 2026-11-29 and multi-process runs (each process writes its shards)
# have it. Both are read.
MANIFEST_FORMAT = 2
_PER_LEAF_FORMAT = 1
_READABLE_FORMATS = (_PER_LEAF_FORMAT, MANIFEST_FORMAT)


class NoCheckpointError(UserError, FileNotFoundError):
    """Raised when a directory holds no (readable) checkpoint."""


class DamagedCheckpointError(UserError):
    """A checkpoint's files do not hold what was saved."""


class Restored(NamedTuple):
    """A verified checkpoint."""

    step: int
    config: config_lib.Config
    state: GANState
    # Per-step metrics of the epoch in progress at `step` (name -> values in step order).
    pending_metrics: dict[str, np.ndarray]


def _stored_fields(state: GANState) -> dict[str, Any]:
    """The state's fields as Orbax stores them: by name, leaving out those that are None.

    An optional part of the state that a run does not use (G's moving average) is None;
    leaving it out keeps the stored tree of such runs what it was before the part existed,
    so their older checkpoints restore.
    """
    fields = (field.name for field in dataclasses.fields(state))
    return {name: getattr(state, name) for name in fields if getattr(state, name) is not None}


def _pack(fields: Mapping[str, Any]) -> tuple[dict[str, np.ndarray], list[list[Any]]]:
    """The arrays of `fields` (host copies) as one flat array per dtype, and the layout
    that unpacks them: each leaf's path, dtype, shape and, for a PRNG key, its
    implementation (the key is stored as its data).

    Orbax spends about 1.2 ms of CPU per stored array, whatever its size, and a GAN state
    has 40 to 100 of them: packed, a save of the Gaussian GAN's state took 19 ms of CPU
    instead of 69.
    """
    groups: dict[str, list[np.ndarray]] = {}
    layout = []
    for path, leaf in jax.tree_util.tree_leaves_with_path(fields):
        impl = None
        if _is_key(leaf):
            impl = str(jax.random.key_impl(leaf))
            leaf = jax.random.key_data(leaf)
        array = np.asarray(leaf)
        layout.append([jax.tree_util.keystr(path), array.dtype.name, list(array.shape), impl])
        groups.setdefault(array.dtype.name, []).append(array.ravel())
    return {dtype: np.concatenate(parts) for dtype, parts in groups.items()}, layout


def _packed_sizes(layout: list[list[Any]]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for _, dtype, shape, _ in layout:
        sizes[dtype] = sizes.get(dtype, 0) + math.prod(shape)
    return sizes


def _unpack(packed: Mapping[str, np.ndarray], layout: list[list[Any]], abstract: Any) -> Any:
    """`_pack`'s inverse, into the tree of `abstract` (the fields a restore targets), as
    uncommitted arrays on this process's default device. Raises ValueError if the layout
    is not the one `abstract` has."""
    expected = [
        [jax.tree_util.keystr(path), np.dtype(leaf.dtype).name, list(leaf.shape)]
        for path, leaf in jax.tree_util.tree_leaves_with_path(jax.eval_shape(_key_data, abstract))
    ]
    if [entry[:3] for entry in layout] != expected:
        raise ValueError("the stored arrays are not the ones its config builds")
    offsets = dict.fromkeys(packed, 0)
    leaves = []
    for _, dtype, shape, impl in layout:
        start, size = offsets[dtype], math.prod(shape)
        offsets[dtype] += size
        array = jnp.asarray(packed[dtype][start : start + size].reshape(shape))
        leaves.append(jax.random.wrap_key_data(array, impl=impl) if impl else array)
    return jax.tree.unflatten(jax.tree.structure(abstract), leaves)


def state_digest(state: Any) -> str:
    """A BLAKE2 digest of every array in a pytree (shapes, dtypes and bytes, in tree order)."""
    digest = hashlib.blake2b(digest_size=16)
    for path, leaf in jax.tree_util.tree_leaves_with_path(jax.device_get(_key_data(state))):
        array = np.ascontiguousarray(leaf)
        digest.update(f"{jax.tree_util.keystr(path)}|{array.dtype}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def config_digest(config_dict: Mapping[str, Any]) -> str:
    text = json.dumps(config_dict, sort_keys=True, allow_nan=False)
    return hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def _is_key(x: Any) -> bool:
    return isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key)


def _addressable(x: Any) -> bool:
    return not isinstance(x, jax.Array) or x.is_fully_addressable


def _key_data(tree: Any) -> Any:
    return jax.tree.map(lambda x: jax.random.key_data(x) if _is_key(x) else x, tree)


def _host_copy(tree: Any) -> Any:
    """The arrays of `tree` copied to NumPy, except PRNG keys (Orbax stores those itself).

    A copy, not a view of device memory, so that the caller may donate the state to its
    next step while a save is queued; and NumPy arrays cost Orbax about half the time
    per array of device arrays (1.0 against 1.8 ms; a GAN state has 40 to 100 of them).
    Orbax reads either kind back into whatever the restore asks for. Arrays spread over
    several processes stay device arrays, of which each process writes its own shards.
    """

    def copy(x: Any) -> Any:
        if _is_key(x) or not _addressable(x):  # several processes: each writes its shards
            return jnp.copy(x)
        return np.array(x, copy=True)

    return jax.tree.map(copy, tree)


def _on_this_device(abstract: Any) -> Any:
    """`abstract` (ShapeDtypeStructs) read whole onto this process's first device,
    whatever devices the checkpoint was written from: Orbax refuses a target without
    a sharding when the saved one spans other devices ("topology mismatch")."""
    device = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
    return jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device), abstract)


def _encode_metrics(metrics: Mapping[str, np.ndarray]) -> dict[str, Any]:
    # Base64 of the raw float32 bytes: exact, and compact for an epoch of 60,000 steps.
    return {
        name: {
            "dtype": str(values.dtype),
            "data": base64.b64encode(np.ascontiguousarray(values).tobytes()).decode(),
        }
        for name, values in metrics.items()
    }


def _decode_metrics(encoded: Mapping[str, Any]) -> dict[str, np.ndarray]:
    return {
        name: np.frombuffer(base64.b64decode(item["data"]), dtype=item["dtype"]).copy()
        for name, item in encoded.items()
    }


# Where asynchronous saves run, one at a time for the whole process: Orbax's signalling
# breaks when two saves run at once, even of different directories. Most of a save
# (about 0.1 s, whatever the state's size) is Orbax waiting on its own threads, which
# this thread does while the caller goes on: a sweep saves 64 members at each step.
_SAVER = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint")


class Checkpoints:
    """Saves and restores verified `(GANState, Config)` pairs under one directory.

    Args:
      directory: the checkpoints folder (`workdir.checkpoints_dir(workdir)`).
      max_to_keep: how many steps a writer keeps.
      asynchronous: whether saves return before the files are written; an error of
        such a save is raised by the next `save`, `wait` or `close`.
      read_only: a reader: no directory creation, no temp-folder cleanup, no saves.
    """

    def __init__(
        self,
        directory: str,
        *,
        max_to_keep: int = 3,
        asynchronous: bool = True,
        read_only: bool = False,
    ):
        self.directory = os.path.abspath(directory)
        self.read_only = read_only
        self.asynchronous = asynchronous
        self._queued: list[concurrent.futures.Future] = []
        if read_only:
            if not os.path.isdir(self.directory):
                raise NoCheckpointError(f"no checkpoints directory {self.directory}")
            options = ocp.CheckpointManagerOptions(
                read_only=True, create=False, save_interval_steps=0, max_to_keep=None
            )
        else:
            options = ocp.CheckpointManagerOptions(
                max_to_keep=max_to_keep,
                # Each save runs on `_SAVER`: Orbax's own background writing would only
                # keep the previous save's directory busy when the next one starts.
                enable_async_checkpointing=False,
                # A process killed mid-save leaves a '*.orbax-checkpoint-tmp' folder.
                cleanup_tmp_directories=True,
                create=True,
            )
        self._manager = ocp.CheckpointManager(
            self.directory,
            options=options,
            item_handlers={
                "state": ocp.StandardCheckpointHandler(),
                "config": ocp.JsonCheckpointHandler(),
                "manifest": ocp.JsonCheckpointHandler(),
            },
        )

    def __enter__(self) -> "Checkpoints":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def all_steps(self) -> list[int]:
        """The finalised steps, oldest first (a save in flight is not among them).

        Orbax's own list, not `workdir.checkpoint_steps`: the steps this manager can
        restore, as it read them when it opened and updated by its own saves and by
        `_move_aside`; so a reader beside a writer keeps one consistent view.
        """
        return sorted(self._manager.all_steps())

    def latest_step(self) -> int | None:
        steps = self.all_steps()
        return steps[-1] if steps else None

    def save(
        self,
        step: int,
        state: GANState,
        config: config_lib.Config,
        pending_metrics: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Writes `state` at `step` (or starts to, when asynchronous); a step that is
        already saved is left as it is.

        The caller guarantees that the state is finite: nothing here checks it, and the
        caller may donate `state` to its next step as soon as this returns.
        """
        if self.read_only:
            raise RuntimeError("a read-only Checkpoints cannot save")
        # One save in flight per directory, as with Orbax's own asynchronous saves: a run
        # that saves faster than the disk takes them waits, rather than queueing copies.
        self._finish_queued_saves()
        state = _host_copy(state)  # one transfer, for both the digest and the save
        config_dict = config_lib.to_dict(config)
        fields = _stored_fields(state)
        # Several processes: each writes its shards of the arrays, one stored array a leaf.
        packed = all(_addressable(leaf) for leaf in jax.tree.leaves(fields))
        manifest = {
            "format": MANIFEST_FORMAT if packed else _PER_LEAF_FORMAT,
            "step": step,
            "state_digest": state_digest(state),
            "config_digest": config_digest(config_dict),
            "pending_metrics": _encode_metrics(pending_metrics or {}),
        }
        if packed:
            fields, manifest["layout"] = _pack(fields)
        if self.asynchronous:
            self._queued.append(_SAVER.submit(self._write, step, fields, config_dict, manifest))
        else:
            self._write(step, fields, config_dict, manifest)

    def _write(
        self, step: int, fields: dict[str, Any], config_dict: dict[str, Any], manifest: Any
    ) -> None:
        if step in self._manager.all_steps():
            return
        self._manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(fields),
                config=ocp.args.JsonSave(config_dict),
                manifest=ocp.args.JsonSave(manifest),
            ),
            force=True,
        )

    def _finish_queued_saves(self) -> None:
        """Waits for the queued saves; raises the error of one that failed."""
        queued, self._queued = self._queued, []
        concurrent.futures.wait(queued)
        for future in queued:
            future.result()

    def restore_config(self, step: int) -> config_lib.Config:
        """The config saved with `step`, checked against its digest."""
        return self._read_config(step)[0]

    def restore_step(self, step: int, gan_for: Callable[[config_lib.Config], GAN]) -> Restored:
        """Restores and verifies one step; raises DamagedCheckpointError if it does not verify.

        Args:
          step: the step to read.
          gan_for: builds the GAN whose state shape the restore targets, from the
            step's own config (so a config whose structure changed since is still read).
        """
        config, manifest = self._read_config(step)
        try:
            gan = gan_for(config)
            abstract = jax.eval_shape(lambda: create_state(gan, 0))
            fields = _stored_fields(abstract)
            # Uncommitted, as a fresh state is: Orbax commits what it restores, and jit lowers
            # committed inputs to another program, so a resumed run would miss the fresh
            # run's compilation cache and compile its step twice.
            if manifest is not None and manifest["format"] == MANIFEST_FORMAT:
                layout = manifest["layout"]
                packed = {
                    dtype: jax.ShapeDtypeStruct((size,), np.dtype(dtype))
                    for dtype, size in _packed_sizes(layout).items()
                }
                packed = self._restore_state(step, packed)
                fields = _unpack(jax.device_get(packed), layout, fields)
            else:
                fields = distributed.uncommitted_copy(self._restore_state(step, fields))
            state = abstract.replace(**fields)
        except UserError:
            raise
        except Exception as error:  # Orbax/TensorStore raise many types for bad files.
            reason = f"state unreadable ({first_line(error)})"
            raise DamagedCheckpointError(f"step {step}: {reason}") from None
        if manifest is None:
            if self._has_manifests():
                raise DamagedCheckpointError(f"step {step}: manifest missing")
            logging.warning("checkpoint %d has no checksums (older gan_jax); not verified", step)
            return Restored(step, config, state, {})
        if state_digest(state) != manifest["state_digest"]:
            raise DamagedCheckpointError(f"step {step}: state does not match its checksum")
        return Restored(step, config, state, _decode_metrics(manifest["pending_metrics"]))

    def _restore_state(self, step: int, abstract: Any) -> Any:
        target = ocp.args.StandardRestore(_on_this_device(abstract))
        return self._manager.restore(step, args=ocp.args.Composite(state=target))["state"]

    def restore_latest(
        self,
        gan_for: Callable[[config_lib.Config], GAN] = build_gan,
        *,
        step: int | None = None,
    ) -> Restored | None:
        """The newest step that verifies (or `step` exactly); None if there are no steps.

        Damaged steps are skipped with a one-line warning each; a writer also moves
        them aside so that training saves them anew. Raises NoCheckpointError if no
        step verifies, DamagedCheckpointError if an explicit `step` does not, and
        FileNotFoundError if the steps that failed had been pruned meanwhile by a writer
        beside this reader (`restore_gan` then lists the newer ones).
        """
        _silence_closed_loop_noise()
        steps = self.all_steps()
        if step is not None:
            if step not in steps:
                raise NoCheckpointError(
                    f"no checkpoint for step {step} in {self.directory}; have {steps}"
                )
            return self.restore_step(step, gan_for)
        if not steps:
            return None
        vanished = []
        for candidate in reversed(steps):
            try:
                return self.restore_step(candidate, gan_for)
            except DamagedCheckpointError as error:
                if not os.path.isdir(self._step_dir(candidate)):
                    # Not damaged: a writer beside us pruned it (max_to_keep) meanwhile.
                    vanished.append(candidate)
                    continue
                logging.warning("skipping damaged checkpoint: %s", error)
                if not self.read_only and distributed.is_main():
                    self._move_aside(candidate)
        if vanished:  # newer steps have replaced them: the caller lists again
            raise FileNotFoundError(f"steps {sorted(vanished)} were pruned while being read")
        raise NoCheckpointError(f"no readable checkpoint in {self.directory} (tried {steps})")

    def wait(self) -> None:
        """Blocks until every started save is on disk; raises a failed save's error."""
        self._finish_queued_saves()
        self._manager.wait_until_finished()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._manager.close()

    def _read_config(self, step: int) -> tuple[config_lib.Config, dict[str, Any] | None]:
        has_manifest = os.path.isdir(os.path.join(self._step_dir(step), "manifest"))
        items = {"config": ocp.args.JsonRestore()}
        if has_manifest:
            items["manifest"] = ocp.args.JsonRestore()
        try:
            restored = self._manager.restore(step, args=ocp.args.Composite(**items))
            config_dict = restored["config"]
            manifest = restored["manifest"] if has_manifest else None
            if manifest is not None and (
                manifest.get("format") not in _READABLE_FORMATS
                or config_digest(config_dict) != manifest["config_digest"]
            ):
                raise ValueError("config does not match its checksum")
            config = config_lib.from_dict(config_lib.Config, config_dict)
        except Exception as error:  # Orbax/JSON raise many types for bad files.
            raise DamagedCheckpointError(
                f"step {step}: config or manifest unreadable ({first_line(error)})"
            ) from None
        return config, manifest

    def _has_manifests(self) -> bool:
        """Whether any step has a manifest: then every step written since should have one."""
        return any(
            os.path.isdir(os.path.join(self._step_dir(s), "manifest")) for s in self.all_steps()
        )

    def _step_dir(self, step: int) -> str:
        # Orbax's layout: a folder named by the step, holding one folder per item.
        return os.path.join(self.directory, str(step))

    def _move_aside(self, step: int) -> None:
        workdir = os.path.dirname(self.directory)  # a writer's is checkpoints_dir(workdir)
        os.makedirs(workdir_lib.damaged_checkpoints_dir(workdir), exist_ok=True)
        destination = workdir_lib.damaged_checkpoint_dir(workdir, step, workdir_lib.time_stamp())
        shutil.move(self._step_dir(step), destination)
        logging.warning("moved damaged checkpoint %d to %s", step, destination)
        self._manager.reload()


def _silence_closed_loop_noise() -> None:
    """Drops the 'Event loop is closed' errors that a failed Orbax read leaves behind.

    TensorStore completes a failed read's outstanding futures after Orbax has closed
    the asyncio loop that awaited them; Python prints each as an exception with a
    traceback, dozens of them, though nothing is wrong any more.
    """
    if getattr(sys.excepthook, "gan_jax_filter", False):
        return

    def benign(value: BaseException | None) -> bool:
        return isinstance(value, RuntimeError) and str(value) == "Event loop is closed"

    previous_excepthook, previous_unraisablehook = sys.excepthook, sys.unraisablehook

    def excepthook(kind: Any, value: Any, traceback: Any) -> None:
        if not benign(value):
            previous_excepthook(kind, value, traceback)

    def unraisablehook(unraisable: Any) -> None:
        if not benign(unraisable.exc_value):
            previous_unraisablehook(unraisable)

    excepthook.gan_jax_filter = True
    sys.excepthook, sys.unraisablehook = excepthook, unraisablehook


def save_pytree(path: str, tree: Any) -> None:
    """Writes one pytree of arrays to the directory `path` (replacing it), synchronously.

    For artefacts other than training checkpoints, such as the MNIST classifier, so
    that Orbax is used from this module only.
    """
    with ocp.StandardCheckpointer() as checkpointer:
        checkpointer.save(path, tree, force=True)
        checkpointer.wait_until_finished()


def restore_pytree(path: str, abstract: Any) -> Any:
    """Reads a pytree written by `save_pytree` into the structure of `abstract`."""
    with ocp.StandardCheckpointer() as checkpointer:
        return distributed.uncommitted_copy(checkpointer.restore(path, abstract))


_READ_ATTEMPTS = 5  # listings of a directory that a writer is pruning, before giving up


def restore_gan(workdir: str, step: int | None = None) -> tuple[GAN, GANState, int]:
    """Rebuilds a run's GAN from its saved config and restores its newest good state.

    Read-only: safe beside a process that is training in `workdir`.

    Args:
      workdir: the run's directory.
      step: which checkpoint; None for the newest that verifies.

    Returns:
      (gan, state, step).
    """
    directory = workdir_lib.checkpoints_dir(workdir)
    if not os.path.isdir(directory):
        raise NoCheckpointError(f"no checkpoints directory in {os.path.abspath(workdir)}")
    for attempt in range(_READ_ATTEMPTS):
        try:
            with Checkpoints(directory, read_only=True) as checkpoints:
                restored = checkpoints.restore_latest(step=step)
            break
        except NoCheckpointError:
            raise
        except FileNotFoundError as error:
            # A writer beside us deleted an old step (max_to_keep) while Orbax listed
            # the steps; listing again sees the steps as they are now.
            if attempt == _READ_ATTEMPTS - 1:
                raise NoCheckpointError(
                    f"the checkpoints in {directory} kept changing while being read "
                    f"({first_line(error)}); try again"
                ) from None
            logging.info("a checkpoint step vanished while listing (%s); listing again", error)
    if restored is None:
        raise NoCheckpointError(f"no checkpoint in {directory}")
    return build_gan(restored.config), restored.state, restored.step
