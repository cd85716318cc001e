"""HDF5 (and NeXus ``.nxs``) datasets addressed as ``file.h5:/path/to/dataset``, read lazily.

Without a dataset path the only 3D dataset in the file is opened (for NeXus files the default
plot signal); otherwise the error lists the candidates. Voxel sizes come from common attributes
on the dataset or its group (``element_size_um`` of Fiji/ilastik, ``voxel_size``, ``spacing``,
``pixel_size``, ``resolution``, with a ``unit``/``units`` attribute).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_dataset
from ..errors import BatterySegError
from ._common import DatasetChoiceError, RawVolume, guess_axes, nd_chunks
from ._lazy import LazyFileArray, file_token, lazy_dask

_MAX_LISTED = 12
_SIZE_KEYS_UM = ("element_size_um", "voxel_size_um", "pixel_size_um", "spacing_um")
_SIZE_KEYS = ("voxel_size", "voxelsize", "element_size", "spacing", "pixel_size", "resolution")
_UNIT_KEYS = ("unit", "units", "voxel_size_unit", "spacing_unit", "pixel_size_unit")


class HDF5Array(LazyFileArray):
    """One HDF5 dataset, opened read-only in each process on first read."""

    def __init__(self, path: Path, dataset: str, shape: tuple[int, ...], dtype: Any):
        super().__init__(path, shape, dtype)
        self.dataset = dataset

    def _open(self) -> Any:
        import h5py

        return h5py.File(self.path, "r")[self.dataset]


def _datasets(group: Any) -> list[Any]:
    import h5py

    found: list[Any] = []

    def visit(_name: str, obj: Any) -> None:
        if isinstance(obj, h5py.Dataset) and obj.dtype.kind in "biuf" and obj.ndim >= 2:
            found.append(obj)

    group.visititems(visit)
    return found


def _listing(path: Path, datasets: list[Any]) -> str:
    if not datasets:
        return "It holds no image datasets (2D or more, numeric)."
    lines = [f"{path}:{d.name} {d.shape} {d.dtype}" for d in datasets[:_MAX_LISTED]]
    more = f" and {len(datasets) - _MAX_LISTED} more" if len(datasets) > _MAX_LISTED else ""
    return f"Address one as FILE:/path/to/dataset, e.g. one of: {'; '.join(lines)}{more}."


def _nexus_default(root: Any) -> Any:
    """The NeXus default plot signal (``/@default -> entry/@default -> data/@signal``)."""
    import h5py

    group = root
    for _ in range(3):
        name = group.attrs.get("default")
        if isinstance(name, bytes):
            name = name.decode()
        if not name or name not in group or not isinstance(group[name], h5py.Group):
            break
        group = group[name]
    signal = group.attrs.get("signal")
    if isinstance(signal, bytes):
        signal = signal.decode()
    if signal and signal in group and isinstance(group[signal], h5py.Dataset):
        return group[signal]
    return None


def _choose(file: Any, path: Path, inner: str | None) -> Any:
    import h5py

    where = f"{path}:{inner}" if inner else str(path)
    node = file
    if inner and inner.strip("/"):
        node = file.get(inner)
        if node is None:
            raise BatterySegError(
                f"{where}: there is no dataset {inner!r} in {path}. "
                f"{_listing(path, _datasets(file))}"
            )
    if isinstance(node, h5py.Dataset):
        return node
    if node is file and path.suffix.lower() == ".nxs":
        signal = _nexus_default(file)
        if signal is not None:
            return signal
    candidates = _datasets(node)
    three_d = [d for d in candidates if d.ndim == 3]
    if len(three_d) == 1:
        return three_d[0]
    what = "no dataset path" if node is file else f"the group {inner!r}"
    count = f"{len(three_d)} 3D datasets" if three_d else "no 3D dataset"
    raise DatasetChoiceError(
        f"{where}: {what} was given and the file holds {count}, so it is unclear which to "
        f"open. {_listing(path, candidates)}",
        [f"{path}:{d.name}" for d in three_d],
    )


def _attr_spacing(dataset: Any) -> tuple[dict[str, tuple[float, str]], dict[str, str]]:
    """Voxel size from attributes of the dataset or, failing that, its parent group."""
    for obj in (dataset, dataset.parent):
        attrs = {k.lower(): v for k, v in obj.attrs.items()}
        unit = next((attrs[k] for k in _UNIT_KEYS if k in attrs), None)
        unit = unit.decode() if isinstance(unit, bytes) else unit
        for key in (*_SIZE_KEYS_UM, *_SIZE_KEYS):
            if key not in attrs:
                continue
            values = np.atleast_1d(np.asarray(attrs[key], dtype=float)).tolist()
            if len(values) == 1:
                values *= 3
            if len(values) == 2:
                values = [values[1], *values]
            if len(values) != 3 or not all(v > 0 for v in values):
                continue
            notes = {}
            if key in _SIZE_KEYS_UM:
                unit = "µm"
            elif not isinstance(unit, str) or not unit:
                unit = "µm"
                notes["voxel_size_note"] = f"attribute {key!r} has no unit; assumed µm"
            return {a: (v, str(unit)) for a, v in zip("ZYX", values, strict=True)}, notes
    return {}, {}


def _dimension_labels(dataset: Any) -> str | None:
    labels = [str(dim.label or "") for dim in dataset.dims]
    if all(label.lower() in ("t", "c", "z", "y", "x") and label for label in labels):
        return "".join(label.upper() for label in labels)
    return None


def open_hdf5(path: Path, inner: str | None) -> RawVolume:
    """Describe one dataset of an HDF5 / NeXus file as a :class:`RawVolume`."""
    import h5py

    try:
        file = h5py.File(path, "r")
    except OSError as exc:
        raise BatterySegError(
            f"{path} could not be read as an HDF5 file ({exc}). It is corrupt, truncated or not "
            "HDF5: copy or export it again."
        ) from None
    with file:
        dataset = _choose(file, path, inner)
        name, shape, dtype = dataset.name, tuple(dataset.shape), dataset.dtype
        native = tuple(dataset.chunks or (1,) * (len(shape) - 2) + shape[-2:])
        spacing, notes = _attr_spacing(dataset)
        labelled = _dimension_labels(dataset)
    check_dataset(shape, dtype, f"{path}:{name}")
    axes, guessed = (labelled, False) if labelled else guess_axes(shape)
    chunks = nd_chunks(axes, shape, dtype.itemsize, native)
    array = HDF5Array(path, name, shape, dtype)
    data = lazy_dask(array, chunks, "hdf5", *file_token(path), name)
    fmt = f"{'NeXus' if path.suffix.lower() == '.nxs' else 'HDF5'} dataset {name}"
    metadata = {"dataset": name, **notes}
    return RawVolume([data], axes, fmt, spacing, metadata, axes_guessed=guessed)
