"""The :class:`Volume` every reader returns and :func:`open_volume`, which picks the reader.

Paths opened as inputs are remembered for this process (:func:`battery_seg.checks.register_input`)
so that no writer here ever writes over (or into) one of them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..checks import check_regular, check_voxel_size, register_input
from ..errors import BatterySegError
from ..phases import PhaseSet
from ._axes import read_with_axes
from ._common import MICROMETRE, PIXEL, RawVolume, spatial_index, to_micrometre

TIFF_SUFFIXES = (".tif", ".tiff", ".btf", ".tf8")
HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf", ".he5", ".nxs")
ZARR_SUFFIXES = (".zarr",)
_ADDRESS = re.compile(r"^(?P<file>.*\.(?:h5|hdf5|hdf|he5|nxs|zarr)):{1,2}(?P<inner>/?[^:]*)$", re.I)
_SUPPORTED = (
    "a TIFF stack (.tif/.tiff, ImageJ, OME-TIFF, BigTIFF), a folder of 2D TIFF slices, a Zarr or "
    "OME-Zarr store (.zarr) or an HDF5 dataset (file.h5:/path/to/dataset)"
)
_SAMPLE_SLICES = 3
_SAMPLE_PLANE_BYTES = 16 * 2**20  # of each sampled slice: a huge plane is sampled in its centre
#: Voxel sizes (µm) a tomogram can have: 0.1 nm (TEM) to 1 cm; metadata outside is ignored.
_PLAUSIBLE_UM = (1e-4, 1e4)
EXACT_RANGE_BYTES = 64 * 2**20


class ValueRange(NamedTuple):
    """Lowest and highest value; ``sampled_slices`` is None when every voxel was read.

    ``nonfinite`` counts the NaN / infinite voxels seen, which the range leaves out.
    """

    low: float
    high: float
    sampled_slices: int | None
    nonfinite: int = 0


@dataclass
class Volume:
    """A lazily opened volume.

    Attributes
    ----------
    data : dask.array.Array
        (Z, Y, X), backed by the file; nothing is read until computed.
    voxel_size : tuple of float
        (dz, dy, dx) in ``unit``; this becomes the napari layer ``scale``.
    unit : str
        ``"µm"`` for every length unit we know (nm, mm, inch... are converted), ``"pixel"`` when
        the size is unknown, else the file's unit as written.
    voxel_size_source : str
        ``"metadata"`` (from the file), ``"user"`` (the ``voxel_size`` argument) or ``"default"``
        (the file gives none: (1, 1, 1) ``"pixel"``, i.e. assumed isotropic).
    levels : list of dask.array.Array
        Multiscale pyramid for display (``levels[0] is data``); ``[data]`` when there is none.
    name, path : str, Path
        Display name and the file (or folder / store) opened.
    metadata : dict
        ``"format"`` (human-readable), ``"phases"`` (a ``PhaseSet.to_dict()``) for label files
        we wrote or OME-Zarr label images naming their values, and format specifics.
    kind : str
        ``"labels"`` for label images (OME-Zarr ``image-label`` or written by us), else
        ``"image"``.
    """

    data: Any
    voxel_size: tuple[float, float, float]
    unit: str
    voxel_size_source: str
    levels: list[Any]
    name: str
    path: Path
    metadata: dict[str, Any] = field(default_factory=dict)
    kind: str = "image"

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.data.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def phases(self) -> PhaseSet | None:
        """The phase set of a label volume, if the file names its phases."""
        stored = self.metadata.get("phases")
        return PhaseSet.from_dict(stored) if stored else None

    def value_range(self, exact_below: int = EXACT_RANGE_BYTES) -> ValueRange:
        """Lowest/highest value: exact for small volumes, else from a few slices.

        The sample is ``3`` evenly spaced z-slices of the coarsest pyramid level (the centre
        16 MiB of each, for huge planes), so it reads a few chunks however large the volume is.
        NaN and infinite voxels are counted (``nonfinite``) and left out of the range.
        """
        if self.data.nbytes <= exact_below:
            sample, sampled = self.data, None
        else:
            level = self.levels[-1]
            picks = np.linspace(0, level.shape[0] - 1, _SAMPLE_SLICES + 2)[1:-1]
            sample, sampled = level[np.unique(picks.round().astype(int))], _SAMPLE_SLICES
            sample = sample[(slice(None), *_central_crop(level.shape[1:], level.dtype.itemsize))]
        values = np.asarray(sample.compute() if hasattr(sample, "compute") else sample)
        nonfinite = 0
        if values.dtype.kind == "f":
            finite = np.isfinite(values)
            nonfinite = int(values.size - np.count_nonzero(finite))
            values = values[finite] if nonfinite else values
        if values.size == 0:
            return ValueRange(0.0, 0.0, sampled, nonfinite)
        return ValueRange(float(values.min()), float(values.max()), sampled, nonfinite)


def _central_crop(plane: tuple[int, ...], itemsize: int) -> tuple[slice, slice]:
    """The centre of a (Y, X) plane, at most :data:`_SAMPLE_PLANE_BYTES` of it."""
    height, width = (int(n) for n in plane)
    scale = min(1.0, (_SAMPLE_PLANE_BYTES / max(1, height * width * itemsize)) ** 0.5)
    crop = []
    for n in (height, width):
        keep = max(1, int(n * scale))
        crop.append(slice((n - keep) // 2, (n - keep) // 2 + keep))
    return crop[0], crop[1]


def split_address(path: str | Path) -> tuple[Path, str | None]:
    """Split ``file.h5:/group/data`` (or ``store.zarr:/array``) into the file and inner path."""
    text = os.path.expanduser(os.fspath(path))
    match = _ADDRESS.match(text)
    if match and not Path(text).exists():
        return Path(match["file"]), match["inner"] or "/"
    return Path(text), None


def _missing(path: Path) -> BatterySegError:
    partial = path.with_name(path.name + ".partial")
    if partial.exists():
        return BatterySegError(
            f"{path} does not exist yet, but {partial.name} (a partially written label store) "
            "does: re-run the segmentation command to finish it."
        )
    return BatterySegError(f"{path} does not exist. Check the path (and the current folder).")


def read_raw(path: Path, inner: str | None, *, allow_partial: bool) -> RawVolume:
    """Dispatch ``path`` to its format reader."""
    from ._folder import open_folder
    from ._hdf5 import open_hdf5
    from ._tiff import open_tiff
    from ._zarr import open_zarr

    if not path.exists():
        raise _missing(path)
    check_regular(path, "volume")
    if not os.access(path, os.R_OK | (os.X_OK if path.is_dir() else 0)):
        raise BatterySegError(
            f"{path} exists but cannot be read (permission denied). Ask its owner for read "
            "access or copy it somewhere you can read."
        )
    suffix = path.suffix.lower()
    if path.is_dir():
        if is_zarr_dir(path):
            return open_zarr(path, inner, allow_partial=allow_partial)
        if not any(path.iterdir()):
            raise BatterySegError(
                f"{path} is an empty folder. Point to a folder of 2D TIFF slices or to "
                f"{_SUPPORTED}."
            )
        return open_folder(path)
    if inner is not None and suffix in HDF5_SUFFIXES:
        return open_hdf5(path, inner if inner.strip("/") else None)
    if suffix in TIFF_SUFFIXES:
        return open_tiff(path)
    if suffix in HDF5_SUFFIXES:
        return open_hdf5(path, None)
    raise BatterySegError(
        f"{path} has an unsupported file type {suffix or '(no extension)'!r}. Convert it to "
        f"{_SUPPORTED} (e.g. in Fiji: File > Save As > Tiff)."
    )


def is_zarr_dir(path: Path) -> bool:
    """Whether the folder ``path`` is a Zarr store (by name or by its metadata files)."""
    if path.suffix.lower() in ZARR_SUFFIXES or path.name.lower().endswith(".zarr.partial"):
        return True
    return any((path / marker).exists() for marker in (".zgroup", ".zarray", "zarr.json"))


def display_name(path: Path) -> str:
    """Layer name for ``path``: the file name without its (OME) extension."""
    name = path.name
    for suffix in (".ome.zarr", ".zarr", ".ome.tiff", ".ome.tif", ".zarr.partial"):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name if path.is_dir() else path.stem


def _voxel_size(raw: RawVolume, where: str) -> tuple[tuple[float, float, float], str, str, dict]:
    """(voxel size, unit, source, notes) from the reader's per-axis spacing."""
    spacing = dict(raw.spacing)
    notes: dict[str, str] = {}
    if "Y" not in spacing or "X" not in spacing:
        return (1.0, 1.0, 1.0), PIXEL, "default", notes
    if "Z" not in spacing:
        spacing["Z"] = spacing["X"]
        notes["voxel_size_note"] = "the file gives no z spacing; assumed equal to the x spacing"
    converted = [to_micrometre(*spacing[a]) for a in "ZYX"]
    units = {u for _, u in converted}
    if len(units) > 1:
        # Mixed units that cannot be converted (e.g. pixel and µm): keep the in-plane unit.
        notes["voxel_size_note"] = f"mixed units {sorted(units)} in the metadata of {where}"
    values = tuple(v for v, _ in converted)
    shown = " × ".join(f"{v:g}" for v in values)
    if not all(np.isfinite(values)) or min(values) <= 0:
        notes["voxel_size_note"] = f"the metadata's voxel size {shown} is not positive: ignored"
        return (1.0, 1.0, 1.0), PIXEL, "default", notes
    unit = converted[2][1]
    if unit == MICROMETRE and not all(_PLAUSIBLE_UM[0] <= v <= _PLAUSIBLE_UM[1] for v in values):
        notes["voxel_size_note"] = (
            f"the metadata's voxel size {shown} µm is outside "
            f"{_PLAUSIBLE_UM[0]:g}..{_PLAUSIBLE_UM[1]:g} µm (not a tomogram's): ignored"
        )
        return (1.0, 1.0, 1.0), PIXEL, "default", notes
    return values, converted[2][1], "metadata", notes  # type: ignore[return-value]


def _phase_set(value: Any) -> PhaseSet | None:
    try:
        return PhaseSet.from_dict(value)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def open_volume(
    path: str | Path,
    *,
    voxel_size: Any = None,
    channel: int | None = None,
    timepoint: int | None = None,
    axes: str | None = None,
    allow_partial: bool = False,
) -> Volume:
    """Open a volume lazily: only metadata is read.

    Parameters
    ----------
    path : str or Path
        A TIFF stack (ImageJ hyperstack, OME-TIFF, BigTIFF), a folder of 2D TIFF slices, a Zarr
        v2/v3 array or group, an OME-Zarr image or label image (``image.zarr/labels/NAME``), or
        an HDF5 / NeXus dataset ``file.h5:/path/to/dataset`` (the path may be left out when the
        file holds a single 3D dataset).
    voxel_size : float or (dz, dy, dx), optional
        Overrides the file's voxel size (in µm).
    channel, timepoint : int, optional
        Which channel (or RGB colour) and time point of a 4D/5D stack to open.
    axes : str, optional
        How the file's axes are read, one letter per axis in the file's order (``Z``, ``Y``,
        ``X``, ``C`` channel, ``T`` time, ``S`` colour sample), instead of the names the file
        gives them: ``"ZYX"`` for a 3D stack saved for ImageJ as channels (``CYX``) or a
        3-slice stack taken for an RGB image.
    allow_partial : bool
        Open a label store that is still being written (for live display).

    Returns
    -------
    Volume
        ``.data`` is a (Z, Y, X) dask array with slab-shaped chunks (a few z-slices, a large
        y/x extent, at most about 64 MiB each).

    Raises
    ------
    BatterySegError
        For a missing file, an unsupported or corrupt file, an RGB image, a 4D/5D stack without
        ``channel``/``timepoint``, an HDF5 file without a clear dataset, or an unfinished store.

    Examples
    --------
    >>> vol = open_volume("electrode.tif")  # doctest: +SKIP
    >>> vol.data.shape, vol.voxel_size, vol.unit  # doctest: +SKIP
    ((1200, 2048, 2048), (0.5, 0.325, 0.325), 'µm')
    >>> vol = open_volume("scan.h5:/exchange/data", voxel_size=0.65)  # doctest: +SKIP
    >>> vol = open_volume("imagej_stack.tif", axes="ZYX")  # doctest: +SKIP
    """
    file, inner = split_address(path)
    where = f"{file}:{inner}" if inner else str(file)
    raw = read_raw(file, inner, allow_partial=allow_partial)
    if axes is not None:
        raw = read_with_axes(raw, axes, where)
    index, remaining = spatial_index(
        raw.axes,
        tuple(raw.levels[0].shape),
        channel=channel,
        timepoint=timepoint,
        where=where,
        guessed=raw.axes_guessed,
    )
    levels = [_as_zyx(level[index], remaining) for level in raw.levels]
    size, unit, source, notes = _voxel_size(raw, where)
    if voxel_size is not None:
        size, unit, source = check_voxel_size(voxel_size, where), MICROMETRE, "user"
    metadata = {"format": raw.format, **raw.metadata, **notes}
    if "phases" in metadata and _phase_set(metadata["phases"]) is None:
        del metadata["phases"]  # unreadable phase description: keep the labels, drop the names
    if raw.axes != "ZYX":
        metadata["axes"] = raw.axes
    name = _volume_name(file, inner, metadata, channel=channel, timepoint=timepoint)
    _check_not_empty(levels[0], where)
    volume = Volume(levels[0], size, unit, source, levels, name, file, metadata, raw.kind)
    register_input(_store_root(file))  # an array inside a store: the whole store is an input
    return volume


def _check_not_empty(data: Any, where: str) -> None:
    if min(data.shape) < 1:
        raise BatterySegError(
            f"{where} is empty: its volume has shape {tuple(data.shape)} (Z, Y, X). Check "
            "that it is the right file, or export the volume again."
        )


def _as_zyx(level: Any, axes: str) -> Any:
    """One resolution level, its remaining ``axes`` (spatial only) put in Z, Y, X order; a
    single plane gets a Z axis of one."""
    order = [axes.index(a) for a in "ZYX" if a in axes]
    level = level.transpose(order) if order != sorted(order) else level
    return level if len(axes) == 3 else level[np.newaxis]


def _volume_name(file: Path, inner: str, metadata: dict, **selection: int | None) -> str:
    """The volume's display name: the file's, the dataset's path inside it, and the channel /
    time point chosen (also recorded in ``metadata``)."""
    name = display_name(file)
    if inner and inner.strip("/"):
        name = f"{name} {inner.strip('/')}"
    for key, value in selection.items():
        if value is not None:
            name, metadata[key] = f"{name} [{key} {value}]", value
    return name


def _store_root(path: Path) -> Path:
    """The outermost Zarr store holding ``path`` (``path`` itself for any other input)."""
    root = path
    while root.parent != root and root.parent.is_dir() and is_zarr_dir(root.parent):
        root = root.parent
    return root
