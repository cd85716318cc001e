"""A folder of 2D TIFF slices as one lazy volume (natural order: slice_2 before slice_10).

Opening reads each slice's header to check that all slices share one size and type; pixels
are read per slice when a region is needed. The voxel size comes from the first slice's
metadata (z spacing from ImageJ ``spacing`` if present).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BatterySegError
from ._common import RawVolume, slab_chunks
from ._lazy import LazyFileArray, file_token, lazy_dask

TIFF_SUFFIXES = (".tif", ".tiff")


def natural_key(name: str) -> list[Any]:
    """Sort key that orders embedded numbers by value.

    >>> sorted(["s10.tif", "s2.tif", "s1.tif"], key=natural_key)
    ['s1.tif', 's2.tif', 's10.tif']
    """
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def slice_files(folder: Path) -> list[Path]:
    """The TIFF files directly in ``folder`` (hidden files skipped), in natural order."""
    files = [
        p
        for p in folder.iterdir()
        if p.suffix.lower() in TIFF_SUFFIXES and not p.name.startswith(".") and p.is_file()
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


class SliceStack(LazyFileArray):
    """(Z, Y, X) view of 2D TIFF files; a read opens only the slices it needs."""

    def __init__(self, files: list[Path], shape: tuple[int, ...], dtype: Any):
        super().__init__(files[0].parent, shape, dtype)
        self.files = [Path(f) for f in files]

    def _open(self) -> Any:
        return self.files

    def _read(self, key: tuple[Any, ...]) -> np.ndarray:

        key = key + (slice(None),) * (3 - len(key))
        first, plane = key[0], key[1:]
        if isinstance(first, (int, np.integer)):
            return self._slice(int(first))[plane]
        images = [self._slice(z)[plane] for z in range(*first.indices(len(self)))]
        if images:
            return np.stack(images)
        return np.empty((0, *np.empty(self.shape[1:], dtype=bool)[plane].shape), self.dtype)

    def _slice(self, z: int) -> np.ndarray:
        import tifffile

        file = self.files[z]
        try:
            image = tifffile.imread(file)
        except Exception as exc:  # the file changed or broke since the folder was opened
            raise BatterySegError(
                f"Slice {file} could not be read ({type(exc).__name__}: {exc}); replace or "
                "remove it."
            ) from None
        if image.shape != self.shape[1:]:
            raise BatterySegError(
                f"Slice {file} has shape {image.shape}, not {self.shape[1:]} like the others "
                "(it changed since the folder was opened); replace or remove it."
            )
        return image

    def __len__(self) -> int:
        return self.shape[0]


def open_folder(folder: Path) -> RawVolume:
    """Describe a folder of 2D TIFF slices as a :class:`RawVolume` (headers only)."""
    import tifffile

    from ._tiff import _check_data_in_file, _spacing

    files = slice_files(folder)
    if not files:
        others = sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))
        found = f"it holds {', '.join(others[:5])}" + (", ..." if len(others) > 5 else "")
        raise BatterySegError(
            f"{folder} holds no TIFF slices ({found if others else 'it is empty'}). Point to a "
            "folder of 2D .tif/.tiff slices, a TIFF stack, a .zarr store or an HDF5 file."
        )
    shapes: dict[tuple[tuple[int, ...], str], list[str]] = {}
    spacing: dict[str, tuple[float, str]] = {}
    for i, file in enumerate(files):
        try:
            with tifffile.TiffFile(file) as tif:
                series = tif.series[0]
                _check_data_in_file(tif, series, file)
                shapes.setdefault((tuple(series.shape), str(series.dtype)), []).append(file.name)
                if i == 0:
                    axes, dtype = series.axes, series.dtype
                    spacing = _spacing(tif, series)
        except (tifffile.TiffFileError, OSError, ValueError, IndexError) as exc:
            if isinstance(exc, BatterySegError):
                raise
            raise BatterySegError(
                f"Slice {file} in {folder} could not be read as TIFF ({exc}); replace or remove it."
            ) from None
    if len(shapes) > 1:
        listing = "; ".join(
            f"{len(names)} of shape {shape} {dtype} (e.g. {names[0]})"
            for (shape, dtype), names in shapes.items()
        )
        raise BatterySegError(
            f"The slices in {folder} differ in size or type: {listing}. All slices of a volume "
            "must have one size and type: move the odd ones out of the folder."
        )
    ((plane, _),) = shapes
    if axes.upper() not in ("YX", "YXS"):
        raise BatterySegError(
            f"{files[0]} in {folder} is not a 2D slice (axes {axes}, shape {plane}). A folder "
            "must hold 2D slices; open a multi-page stack as a single file instead."
        )
    shape = (len(files), *plane)
    samples = int(np.prod(plane[2:]))
    chunks = (*slab_chunks(shape[:3], dtype.itemsize * samples, (1, *plane[:2])), *plane[2:])
    stack = SliceStack(files, shape, dtype)
    tokens = [file_token(folder), str(files[0]), str(files[-1])]
    data = lazy_dask(stack, chunks, "tiff-slices", *tokens)
    axes = "Z" + axes.upper()
    fmt = f"folder of {len(files)} TIFF slices"
    return RawVolume([data], axes, fmt, spacing, {"first_slice": files[0].name})
