"""A resumable OME-Zarr label store, written block by block by one or many processes.

Layout of ``OUT.zarr.partial`` while it is written (NGFF 0.4 on zarr v2)::

    .zattrs                       multiscales + image-label + battery_seg {complete: false, ...}
    0/                            uint8 labels (z, y, x) with the caller's chunks
    probabilities/, ...           extra arrays (e.g. (K, z, y, x) uint8)
    .battery_seg/done/<key>       one completion record per finished block

A record is written only after its block's data, so a crash (even ``kill -9``) loses at most
the blocks in flight; resuming with the same fingerprint skips recorded blocks. ``finalize``
sets ``complete: true`` and renames the folder to ``OUT.zarr``: a store at the final path is
always complete.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import __version__
from ..checks import check_output, check_voxel_size
from ..errors import BatterySegError
from ..names import LABELS_ARRAY, OUR_ATTRIBUTES, PARTIAL_SUFFIX, battery_seg_attrs
from ..phases import PhaseSet
from ._atomic import remove, replace_path, temp_sibling, write_json_atomic
from ._ome import image_label_attrs, multiscales_attrs

STORE_VERSION = 1
_RECORDS = ".battery_seg"
_DONE = "done"
_RESERVED = {LABELS_ARRAY, "labels", _RECORDS}


def is_complete_store(path: str | Path) -> bool:
    """Whether ``path`` is a label store written to the end by :class:`LabelStore`."""
    path = Path(path)
    if not path.is_dir() or path.name.endswith(PARTIAL_SUFFIX):
        return False
    attrs = battery_seg_attrs(path)
    return bool(attrs) and attrs.get("complete") is True


def compressor() -> Any:
    """Blosc/zstd with bit shuffle: label volumes shrink 20-100x and decode fast."""
    import numcodecs

    return numcodecs.Blosc(cname="zstd", clevel=3, shuffle=numcodecs.Blosc.BITSHUFFLE)


def _positive_ints(values: Any, what: str, path: Path) -> tuple[int, ...]:
    values = tuple(int(v) for v in values)
    if len(values) != 3 or min(values) < 1:
        raise BatterySegError(f"{path}: {what} must be three positive integers, got {values}.")
    return values


def _record_name(key: str) -> str:
    if not key:
        raise BatterySegError("A block key must be a non-empty string, e.g. '0-64_0_0'.")
    name = urllib.parse.quote(str(key), safe="")
    return "%2E" + name[1:] if name.startswith(".") else name


@dataclass(eq=False)
class LabelStore:
    """Writer of a big OME-Zarr label volume with per-block completion records.

    Build one with :meth:`create_or_resume`. It pickles to its path and description only; the
    zarr arrays are reopened on first use in each process (dask.distributed workers).

    Examples
    --------
    >>> store = LabelStore.create_or_resume(  # doctest: +SKIP
    ...     "seg.zarr", shape=(256, 512, 512), chunks=(64, 256, 256), phases="si-graphite",
    ...     voxel_size=(0.5, 0.5, 0.5), fingerprint="model=abc;image=def")
    >>> for key, region, block in blocks:  # doctest: +SKIP
    ...     if not store.is_done(key):
    ...         store.array[region] = block
    ...         store.mark_done(key)
    >>> store.finalize()  # doctest: +SKIP
    PosixPath('seg.zarr')
    """

    path: Path
    shape: tuple[int, int, int]
    chunks: tuple[int, int, int]
    phases: PhaseSet
    voxel_size: tuple[float, float, float]
    unit: str
    fingerprint: str
    extras: dict[str, tuple[tuple[int, ...], str]] = field(default_factory=dict)
    resumed: bool = False
    _arrays: dict[str, Any] = field(default_factory=dict, repr=False)

    # -- creation -----------------------------------------------------------------------------
    @classmethod
    def create_or_resume(
        cls,
        path: str | Path,
        *,
        shape: Any,
        chunks: Any,
        phases: PhaseSet | str,
        voxel_size: Any,
        unit: str = "µm",
        fingerprint: str,
        extras: dict[str, tuple[tuple[int, ...], str]] | None = None,
        overwrite: bool = False,
    ) -> LabelStore:
        """Create ``OUT.zarr.partial`` or reopen it to resume an interrupted run.

        A partial store with the same ``fingerprint`` (a string identifying the input and the
        settings) is resumed even with ``overwrite``. A partial store with another fingerprint,
        or a finished store at ``path``, raises a :class:`BatterySegError` unless ``overwrite``
        (the old partial store is then discarded; a finished one is replaced at
        :meth:`finalize`, so it survives a crash).
        """
        path = Path(path)
        if path.suffix.lower() != ".zarr":
            raise BatterySegError(
                f"{path}: a label store is an OME-Zarr folder; give a path ending in .zarr."
            )
        store = cls(
            path,
            _positive_ints(shape, "shape", path),
            _positive_ints(chunks, "chunks", path),
            PhaseSet.parse(phases),
            check_voxel_size(voxel_size, str(path)),
            unit,
            str(fingerprint),
            cls._check_extras(extras or {}, path),
        )
        check_output(path, overwrite=overwrite, kind="zarr")
        partial = store.partial_path
        check_output(partial, overwrite=True, kind="zarr")  # never an input, ours if present
        if partial.exists():
            found = battery_seg_attrs(partial)
            if found is not None and found.get("fingerprint") == store.fingerprint:
                store._check_same_layout(found)
                store.resumed = True
                return store
            if not overwrite:
                raise BatterySegError(
                    f"{partial} is a partially written store from another run "
                    f"({store._difference(found)}). Re-run that command to finish it, or pass "
                    "overwrite=True (--overwrite) to discard it."
                )
            remove(partial)
        store._create()
        return store

    @staticmethod
    def _check_extras(extras: dict, path: Path) -> dict[str, tuple[tuple[int, ...], str]]:
        import numpy as np

        checked = {}
        for name, (shape, dtype) in extras.items():
            if name in _RESERVED or not name.isidentifier():
                raise BatterySegError(f"{path}: invalid extra array name {name!r}.")
            checked[name] = (tuple(int(n) for n in shape), np.dtype(dtype).name)
        return checked

    def _difference(self, found: dict[str, Any] | None) -> str:
        """What differs between this run and the one that started a partial store."""
        if not found:
            return "an empty folder or one of an unknown layout"
        theirs = found.get("voxel_size")
        if theirs is not None and [float(v) for v in theirs] != list(self.voxel_size):
            return f"voxel size {theirs} instead of {list(self.voxel_size)}"
        return "a different input or settings"

    def _metadata(self, complete: bool) -> dict[str, Any]:
        return {
            "version": STORE_VERSION,
            "software": f"napari-battery-seg {__version__}",
            "complete": complete,
            "fingerprint": self.fingerprint,
            "phases": self.phases.to_dict(),
            "voxel_size": list(self.voxel_size),
            "unit": self.unit,
            "shape": list(self.shape),
            "chunks": list(self.chunks),
            "extras": {n: {"shape": list(s), "dtype": d} for n, (s, d) in self.extras.items()},
        }

    def _check_same_layout(self, found: dict[str, Any]) -> None:
        expected = self._metadata(False)
        for key in ("shape", "chunks", "phases", "extras"):
            if found.get(key) != expected[key]:
                raise BatterySegError(
                    f"{self.partial_path} has the same fingerprint but a different {key} "
                    f"({found.get(key)} instead of {expected[key]}); pass overwrite=True to "
                    "discard it."
                )

    def _create(self) -> None:
        import zarr

        building = temp_sibling(self.partial_path, "creating")
        try:
            root = zarr.open_group(store=str(building), mode="w", zarr_format=2)
            name = self.path.name.removesuffix(".zarr")
            root.attrs.update(
                {
                    **multiscales_attrs(name, self.voxel_size, self.unit),
                    **image_label_attrs(self.phases),
                    OUR_ATTRIBUTES: self._metadata(False),
                }
            )
            self._new_array(root, LABELS_ARRAY, self.shape, "uint8", self.chunks, ["z", "y", "x"])
            for extra, (shape, dtype) in self.extras.items():
                lead = len(shape) - 3
                chunks = tuple(shape[:lead]) + self.chunks if shape[lead:] == self.shape else None
                dims = [*["t", "c"][2 - lead :], "z", "y", "x"] if chunks and lead <= 2 else None
                self._new_array(root, extra, shape, dtype, chunks or "auto", dims)
            (building / _RECORDS / _DONE).mkdir(parents=True)
            os.rename(building, self.partial_path)
        except OSError:
            remove(building)
            found = battery_seg_attrs(self.partial_path) or {}
            if found.get("fingerprint") != self.fingerprint:
                raise
            self.resumed = True  # another process created it at the same moment
        except BaseException:
            remove(building)
            raise

    @staticmethod
    def _new_array(root: Any, name: str, shape: Any, dtype: str, chunks: Any, dims: Any) -> None:
        root.create_array(
            name,
            shape=tuple(shape),
            chunks=chunks,
            dtype=dtype,
            fill_value=0,
            compressors=compressor(),
            chunk_key_encoding={"name": "v2", "separator": "/"},
            attributes={"_ARRAY_DIMENSIONS": dims} if dims else None,
        )

    # -- paths and arrays ---------------------------------------------------------------------
    @property
    def partial_path(self) -> Path:
        return self.path.with_name(self.path.name + PARTIAL_SUFFIX)

    @property
    def store_path(self) -> Path:
        """The partial store while it is written, the final path once finalized."""
        return self.partial_path if self.partial_path.exists() else self.path

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_arrays"] = {}
        return state

    def _array(self, name: str) -> Any:
        if name not in self._arrays:
            import zarr

            root = self.store_path
            mode = "r+" if root == self.partial_path else "r"
            self._arrays[name] = zarr.open_array(store=str(root / name), mode=mode)
        return self._arrays[name]

    @property
    def array(self) -> Any:
        """The uint8 label array (zarr); write chunk-aligned regions into it."""
        return self._array(LABELS_ARRAY)

    def extra(self, name: str) -> Any:
        """The extra array ``name`` (zarr) declared at creation."""
        if name not in self.extras:
            raise BatterySegError(
                f"{self.path} has no extra array {name!r}; it has {sorted(self.extras) or 'none'}."
            )
        return self._array(name)

    # -- completion records -------------------------------------------------------------------
    @property
    def _done_dir(self) -> Path:
        return self.partial_path / _RECORDS / _DONE

    def mark_done(self, key: str) -> None:
        """Record block ``key`` as written; call it only after its data is stored."""
        record = self._done_dir / _record_name(key)
        tmp = temp_sibling(record)
        tmp.write_text(str(key), encoding="utf-8")
        os.replace(tmp, record)

    def is_done(self, key: str) -> bool:
        """Whether block ``key`` was recorded as written (always True once finalized)."""
        if not self.partial_path.exists() and is_complete_store(self.path):
            return True
        return (self._done_dir / _record_name(key)).exists()

    def done_keys(self) -> set[str]:
        """Keys of all recorded blocks."""
        if not self._done_dir.is_dir():
            return set()
        return {
            urllib.parse.unquote(p.name)
            for p in self._done_dir.iterdir()
            if not p.name.startswith(".")
        }

    # -- the end ------------------------------------------------------------------------------
    def finalize(self) -> Path:
        """Mark the store complete and rename it to its final path (atomically); return it.

        Checking that every block is written is the caller's job.
        """
        partial = self.partial_path
        self._arrays.clear()
        if not partial.exists():
            found = battery_seg_attrs(self.path) or {}
            if is_complete_store(self.path) and found.get("fingerprint") == self.fingerprint:
                return self.path
            raise BatterySegError(
                f"Cannot finalize {self.path}: {partial.name} does not exist (it was aborted or "
                "removed). Run the segmentation again."
            )
        attrs_file = partial / ".zattrs"
        attrs = json.loads(attrs_file.read_text(encoding="utf-8"))
        attrs[OUR_ATTRIBUTES]["complete"] = True
        write_json_atomic(attrs_file, attrs)
        replace_path(partial, self.path)
        remove(self.path / _RECORDS)
        return self.path

    def abort(self) -> None:
        """Delete the partial store (nothing at the final path is touched)."""
        self._arrays.clear()
        if self.partial_path.exists():
            remove(self.partial_path)
