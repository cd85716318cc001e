"""Lazy, picklable access to pixels in files: dask arrays that read only what is computed."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_declared_shape, os_error_message, printable
from ..errors import BatterySegError


class LazyFileArray:
    """Array-like that opens its file on the first read in each process.

    Pickling keeps only the path and array description, so dask.distributed workers and child
    processes reopen the file themselves; reads of a region touch only that region.
    """

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: Any):
        self.path = Path(path)
        self.shape = tuple(int(n) for n in shape)
        self.dtype = np.dtype(dtype)
        self._handle: Any = None
        self._lock = threading.Lock()

    @property
    def ndim(self) -> int:
        return len(self.shape)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_handle"] = None
        state["_lock"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    def _open(self) -> Any:
        raise NotImplementedError

    def handle(self) -> Any:
        with self._lock:
            if self._handle is None:
                self._handle = self._open()
            return self._handle

    def _read(self, key: tuple[Any, ...]) -> np.ndarray:
        """Read a basic selection (ints and slices) from the file."""
        return np.asarray(self.handle()[key])

    def __getitem__(self, key: Any) -> np.ndarray:
        key = key if isinstance(key, tuple) else (key,)
        if not any(isinstance(k, (list, np.ndarray)) for k in key):
            return self._read(key)
        # Integer-array indices (dask fuses data[[3, 6, 8]] into one read): read the bounding
        # slab, then pick the entries in memory.
        basic, local = [], []
        for k in key:
            if isinstance(k, (list, np.ndarray)):
                index = np.asarray(k)
                index = np.flatnonzero(index) if index.dtype == bool else index.astype(int)
                low = int(index.min()) if index.size else 0
                high = int(index.max()) + 1 if index.size else 0
                basic.append(slice(low, high))
                local.append(index - low)
            else:
                basic.append(k)
                if not isinstance(k, (int, np.integer)):
                    local.append(slice(None))
        return self._read(tuple(basic))[tuple(local)]


class GuardedArray:
    """Array-like whose reads turn any failure of the file or its library into one
    :class:`BatterySegError` naming the file and the region (a corrupt chunk, a truncated
    slice, a disk error), instead of a traceback from deep inside a codec."""

    def __init__(self, array: Any, where: str) -> None:
        self.array, self.where = array, where
        self.shape, self.dtype, self.ndim = tuple(array.shape), np.dtype(array.dtype), array.ndim

    def __getitem__(self, key: Any) -> np.ndarray:
        try:
            return np.asarray(self.array[key])
        except (BatterySegError, MemoryError):
            raise
        except OSError as exc:
            raise BatterySegError(f"Cannot read {os_error_message(exc, self.where)}") from None
        except Exception as exc:
            raise BatterySegError(
                f"Cannot read {self.where} at [{_region(key)}]: {type(exc).__name__}: "
                f"{printable(exc, limit=200)}. The file is damaged (e.g. a truncated copy or a "
                "corrupt chunk): copy or export it again."
            ) from None


def _region(key: Any) -> str:
    key = key if isinstance(key, tuple) else (key,)
    parts = []
    for k in key:
        if isinstance(k, slice):
            parts.append(f"{'' if k.start is None else k.start}:{'' if k.stop is None else k.stop}")
        else:
            parts.append(str(k) if np.ndim(k) == 0 else "...")
    return ", ".join(parts)


def lazy_dask(array: Any, chunks: tuple[int, ...], kind: str, *token_parts: Any):
    """Dask array over a lazy array-like, named by the file's identity (not its content).

    The name comes from ``token_parts`` (path, modification time, size, level) so building the
    graph never hashes or reads data. A shape too large to plan is refused first, and reads are
    guarded (see :class:`GuardedArray`); ``token_parts[0]`` names the file in messages.
    """
    import dask.array as da
    from dask.base import tokenize

    first = token_parts[0] if token_parts else kind
    where = str(first[0] if isinstance(first, tuple) else first)
    check_declared_shape(array.shape, array.dtype, chunks, where)
    name = f"{kind}-{tokenize(*token_parts)}"
    meta = np.empty((0,) * array.ndim, dtype=array.dtype)
    # fancy=True (the default) lets dask fuse data[z] into a read of one slice; with False it
    # would read the whole chunk.
    guarded = GuardedArray(array, where)
    return da.from_array(guarded, chunks=chunks, name=name, meta=meta, lock=False)


def file_token(path: Path) -> tuple[str, int, int]:
    """(resolved path, mtime in ns, size) identifying a file's current version."""
    stat = Path(path).stat()
    return (str(Path(path).resolve()), stat.st_mtime_ns, stat.st_size)


def read_planes(volume: Any, indices: Any) -> list[np.ndarray]:
    """Planes ``volume[i]`` for each index, read in one dask compute (not one per plane)."""
    parts = [volume[int(i)] for i in indices]
    if hasattr(volume, "dask"):
        import dask

        parts = dask.compute(*parts, scheduler="threads")
    return [np.asarray(p) for p in parts]
