"""Multi-page TIFF / BigTIFF, ImageJ hyperstacks and OME-TIFF, read lazily.

Pixels are read through tifffile's zarr view of the file (``imread(aszarr=True)``), which decodes
only the pages (or tiles) a region needs, for contiguous and compressed files alike. Opening
parses the headers only. The voxel size comes from OME-XML ``PhysicalSize*``, ImageJ ``spacing``
plus the resolution tags, or plain resolution tags with their resolution unit, in that order.
"""

from __future__ import annotations

import contextlib
import json
import logging
import struct
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..checks import check_dataset
from ..errors import BatterySegError
from ._common import RawVolume, nd_chunks, normalize_axes
from ._lazy import LazyFileArray, file_token, lazy_dask

# Private TIFF tag holding our JSON metadata (phases, voxel size) in label files we write.
BATTERY_SEG_TAG = 65111
_DEFAULT_DPI = (72.0, 96.0)  # what image editors write when they know no pixel size


class TiffArray(LazyFileArray):
    """One level of a TIFF series, opened through tifffile's zarr store in each process."""

    def __init__(self, path: Path, shape: tuple[int, ...], dtype: Any, level: int):
        super().__init__(path, shape, dtype)
        self.level = level

    def _open(self) -> Any:
        import tifffile
        import zarr

        store = tifffile.imread(self.path, aszarr=True, series=0, level=self.level)
        return zarr.open(store, mode="r")


@contextlib.contextmanager
def _tifffile_errors() -> Iterator[list[str]]:
    """Collect the errors tifffile logs (instead of raising) for corrupt or truncated files."""
    messages: list[str] = []

    class _Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            messages.append(record.getMessage())

    handler = _Collect(logging.ERROR)
    logger = logging.getLogger("tifffile")
    logger.addHandler(handler)
    try:
        yield messages
    finally:
        logger.removeHandler(handler)


def _corrupt(path: Path, detail: str) -> BatterySegError:
    return BatterySegError(
        f"{path} could not be read as a TIFF stack: {detail}. The file is truncated or corrupt "
        "(e.g. an interrupted copy or export): copy or export it again."
    )


def open_tiff(path: Path) -> RawVolume:
    """Describe ``path`` (headers only) as a :class:`RawVolume` of lazy levels."""
    import tifffile

    try:
        with _tifffile_errors() as errors, tifffile.TiffFile(path) as tif:
            series = tif.series[0]
            axes = normalize_axes(series.axes)
            levels = [(tuple(lvl.shape), lvl.dtype) for lvl in series.levels]
            _check_data_in_file(tif, series, path)
            spacing = _spacing(tif, series)
            ours = _our_metadata(series.keyframe)
            fmt = _describe(tif, len(tif.series), len(levels))
            tile = _native_plane(series.keyframe)
    except (tifffile.TiffFileError, OSError, ValueError, IndexError, KeyError, struct.error) as exc:
        if isinstance(exc, BatterySegError):
            raise
        raise _corrupt(path, str(exc) or type(exc).__name__) from None
    if errors:
        raise _corrupt(path, errors[0])
    token = file_token(path)
    arrays = []
    for i, (shape, dtype) in enumerate(levels):
        check_dataset(shape, dtype, str(path))
        plane = {"Y": tile[0], "X": tile[1]}
        native = tuple(
            min(plane[a], n) if a in plane else n if a == "S" else 1
            for a, n in zip(axes, shape, strict=True)
        )
        chunks = nd_chunks(axes, shape, dtype.itemsize, native)
        arrays.append(lazy_dask(TiffArray(path, shape, dtype, i), chunks, "tiff", *token, i))
    metadata: dict[str, Any] = {}
    kind = "image"
    if ours:
        metadata["battery_seg"] = ours
        if "phases" in ours:
            metadata["phases"] = ours["phases"]
            kind = "labels"
    return RawVolume(arrays, axes, fmt, spacing, metadata, kind=kind)


def _native_plane(page: Any) -> tuple[int, int]:
    if page.is_tiled:
        return (page.tilelength, page.tilewidth)
    return (page.imagelength, page.imagewidth)


def _describe(tif: Any, n_series: int, n_levels: int) -> str:
    kind = "OME-TIFF" if tif.is_ome else "ImageJ TIFF" if tif.is_imagej else "TIFF"
    if tif.is_bigtiff:
        kind += " (BigTIFF)"
    if n_levels > 1:
        kind += f", pyramid of {n_levels} levels"
    if n_series > 1:
        kind += f", series 1 of {n_series}"
    return kind


def _check_data_in_file(tif: Any, series: Any, path: Path) -> None:
    """Raise when the pixel data of the last page lies beyond the end of the file."""
    size = tif.filehandle.size
    if series.dataoffset is not None:
        end = series.dataoffset + series.nbytes
    else:
        page = series.pages[-1] if len(series.pages) else None
        if page is None:
            raise _corrupt(path, "the last page is missing")
        ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=True)]
        end = max(ends, default=0)
        size = page.parent.filehandle.size  # multi-file OME-TIFF: the page's own file
    if end > size:
        raise _corrupt(path, f"the pixel data needs {end} bytes but the file has {size}")


def _spacing(tif: Any, series: Any) -> dict[str, tuple[float, str]]:
    """Voxel size per axis letter from OME-XML, ImageJ metadata or resolution tags."""
    if tif.is_ome and tif.ome_metadata:
        spacing = _ome_spacing(tif.ome_metadata)
        if spacing:
            return spacing
    page = series.keyframe
    xres, yres = page.resolution
    spacing: dict[str, tuple[float, str]] = {}
    if tif.is_imagej:
        ij = tif.imagej_metadata or {}
        unit = str(ij.get("unit", "") or "")
        if xres > 0 and yres > 0 and (unit or (xres, yres) != (1.0, 1.0)):
            spacing = {"Y": (1.0 / yres, unit), "X": (1.0 / xres, unit)}
        if ij.get("spacing"):
            spacing["Z"] = (float(ij["spacing"]), unit)
    else:
        unit = {2: "inch", 3: "cm", 4: "mm", 5: "µm"}.get(int(page.resolutionunit))
        default = (xres, yres) == (1.0, 1.0) or (unit == "inch" and xres in _DEFAULT_DPI)
        if unit and xres > 0 and yres > 0 and not default:
            spacing = {"Y": (1.0 / yres, unit), "X": (1.0 / xres, unit)}
    return spacing


def _ome_spacing(xml: str) -> dict[str, tuple[float, str]]:
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return {}
    pixels = next((el for el in root.iter() if el.tag.rsplit("}", 1)[-1] == "Pixels"), None)
    if pixels is None:
        return {}
    spacing = {}
    for axis in "ZYX":
        value = pixels.get(f"PhysicalSize{axis}")
        if value is not None:
            spacing[axis] = (float(value), pixels.get(f"PhysicalSize{axis}Unit", "µm"))
    return spacing


def _our_metadata(page: Any) -> dict[str, Any]:
    tag = page.tags.get(BATTERY_SEG_TAG)
    if tag is None:
        return {}
    try:
        value = json.loads(tag.value)
    except (TypeError, ValueError):
        return {}
    return value.get("battery_seg", {}) if isinstance(value, dict) else {}
