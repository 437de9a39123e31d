"""Reading `torch.save` files without torch: the weights of a PyTorch model as NumPy.

Both of torch's formats are read: the zip archive (torch >= 1.6) and the legacy pickle
stream before it (pytorch-fid's Inception weights of 2019 may be either). Only tensors and
(ordered) dicts are unpickled, so reading a file runs none of its code.
"""

import collections
import pickle
import zipfile
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import ml_dtypes
import numpy as np

from gan_jax.errors import UserError, first_line


class TorchFileError(UserError, ValueError):
    """A file that is not a readable torch state dict (one line)."""


class _StorageType(NamedTuple):
    """Stands in for `torch.FloatStorage` and the like: the element type they name."""

    dtype: np.dtype


_STORAGE_DTYPES = {
    "DoubleStorage": np.float64,
    "FloatStorage": np.float32,
    "HalfStorage": np.float16,
    "BFloat16Storage": ml_dtypes.bfloat16,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}
# `torch.load`'s legacy (pre-1.6, non-zip) format opens with this pickled number.
_LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C


def _rebuild_tensor(storage: np.ndarray, offset: int, size: tuple, stride: tuple, *_) -> Any:
    """`torch._utils._rebuild_tensor(_v2)`: a strided NumPy view of a storage."""
    size, stride = tuple(size), tuple(stride)
    if len(size) != len(stride) or any(n < 0 for n in size) or any(s < 0 for s in stride):
        raise pickle.UnpicklingError(f"bad tensor geometry {size} / {stride}")
    last = offset + sum((n - 1) * s for n, s in zip(size, stride, strict=True))
    if 0 not in size and not 0 <= offset <= last < storage.size:
        raise pickle.UnpicklingError(f"a tensor reaches past its storage of {storage.size}")
    itemsize = storage.dtype.itemsize
    return np.lib.stride_tricks.as_strided(
        storage[offset:],
        shape=size,
        strides=[s * itemsize for s in stride],
        writeable=False,
    )


def _rebuild_parameter(data: np.ndarray, *_) -> np.ndarray:
    """`torch._utils._rebuild_parameter`: an `nn.Parameter` is read as its data."""
    return data


class _TorchUnpickler(pickle.Unpickler):
    """Unpickles a state dict, building tensors as NumPy views of the storages that
    `new_storage(key, dtype, numel)` returns; refuses every other global (so a file cannot
    run code on load, as a plain `pickle.load` or `torch.load(weights_only=False)` would
    let it)."""

    def __init__(
        self, file: Any, new_storage: Callable[[str, np.dtype, int], np.ndarray] | None = None
    ):
        super().__init__(file, encoding="utf-8")
        self._new_storage = new_storage
        self._storages: dict[str, np.ndarray] = {}

    def find_class(self, module: str, name: str) -> Any:
        allowed = {
            ("collections", "OrderedDict"): collections.OrderedDict,
            ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
            ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
            ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
        }
        if (module, name) in allowed:
            return allowed[module, name]
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(np.dtype(_STORAGE_DTYPES[name]))
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")

    def persistent_load(self, pid: Any) -> np.ndarray:
        # ('storage', storage type, key, location, numel[, view metadata (legacy format)]).
        if not (isinstance(pid, tuple) and len(pid) in (5, 6) and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unknown persistent id {pid!r:.80}")
        storage_type, key, numel = pid[1], str(pid[2]), int(pid[4])
        if not isinstance(storage_type, _StorageType) or self._new_storage is None:
            raise pickle.UnpicklingError(f"unknown storage type {storage_type!r:.80}")
        if key not in self._storages:
            self._storages[key] = self._new_storage(key, storage_type.dtype, numel)
        storage = self._storages[key]
        view = pid[5] if len(pid) == 6 else None
        if view is not None:  # Storage views, from torch < 0.4: (key, offset, size).
            _, view_offset, view_size = view
            storage = storage[view_offset : view_offset + view_size]
        return storage


def _read_zip(path: str) -> Any:
    """A `torch.save` zip file (torch >= 1.6): `<name>/data.pkl` plus one record
    `<name>/data/<key>` of raw little-endian bytes per storage."""
    with zipfile.ZipFile(path) as archive:
        pickles = [name for name in archive.namelist() if name.endswith("data.pkl")]
        if len(pickles) != 1:
            raise pickle.UnpicklingError("no single data.pkl record")
        prefix = pickles[0][: -len("data.pkl")]
        byteorder = prefix + "byteorder"  # Older files have none; they are little-endian.
        if byteorder in archive.NameToInfo and archive.read(byteorder).strip() != b"little":
            raise pickle.UnpicklingError("big-endian files are not supported")

        def new_storage(key: str, dtype: np.dtype, numel: int) -> np.ndarray:
            storage = np.frombuffer(archive.read(f"{prefix}data/{key}"), dtype=dtype)
            if storage.size != numel:
                raise pickle.UnpicklingError(f"storage {key} holds {storage.size}, not {numel}")
            return storage

        with archive.open(pickles[0]) as f:
            return _TorchUnpickler(f, new_storage).load()


def _read_legacy(path: str) -> Any:
    """A `torch.save` file in the legacy format (torch < 1.6, or
    `_use_new_zipfile_serialization=False`): pickled magic number, protocol version and
    system info; the pickled object; the pickled list of storage keys; then each storage
    in that order as its int64 element count and raw little-endian bytes."""
    with open(path, "rb") as f:
        if _TorchUnpickler(f).load() != _LEGACY_MAGIC_NUMBER:
            raise pickle.UnpicklingError("not a torch.save file")
        _TorchUnpickler(f).load()  # The protocol version.
        sys_info = _TorchUnpickler(f).load()
        if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
            raise pickle.UnpicklingError("big-endian files are not supported")
        storages = {}

        def new_storage(key: str, dtype: np.dtype, numel: int) -> np.ndarray:
            storages[key] = np.empty(numel, dtype)  # Filled below, once the pickle is read.
            return storages[key]

        result = _TorchUnpickler(f, new_storage).load()
        for key in _TorchUnpickler(f).load():
            storage = storages[str(key)]
            numel = int(np.frombuffer(f.read(8), "<i8")[0])
            if numel != storage.size or f.readinto(storage.view(np.uint8)) != storage.nbytes:
                raise pickle.UnpicklingError(f"storage {key} is truncated")
    return result


def read_torch_state_dict(path: str) -> dict[str, np.ndarray]:
    """Reads a state dict that `torch.save` wrote, without torch.

    Both of torch's formats are read: the zip archive (torch >= 1.6) and the legacy
    pickle stream before it. Only tensors and (ordered) dicts are unpickled; any other
    object in the file is refused, so reading a file runs none of its code.

    Args:
      path: the file.

    Returns:
      name -> NumPy array (read-only; a view sharing memory with the other views of its
      storage, with the tensor's offset and strides, so a transposed or sliced tensor
      reads as it did in torch).

    Raises:
      TorchFileError: (one line) if the file is not a readable torch state dict.
    """
    try:
        result = _read_zip(path) if zipfile.is_zipfile(path) else _read_legacy(path)
    except (pickle.UnpicklingError, EOFError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise TorchFileError(f"cannot read {path} as a torch file: {first_line(e)}") from e
    if not isinstance(result, Mapping) or not all(
        isinstance(k, str) and isinstance(v, np.ndarray) for k, v in result.items()
    ):
        raise TorchFileError(f"{path} holds a {type(result).__name__}, not a state dict")
    return dict(result)
