"""Writing label and image volumes to OME-Zarr or TIFF, atomically.

Outputs are built under a temporary sibling name and renamed into place at the end, so an
interrupted write never leaves a file or store that looks complete. Existing outputs are
replaced only with ``overwrite=True``; paths opened as inputs are never written.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import __version__
from ..checks import check_disk, check_voxel_size
from ..errors import BatterySegError
from ..names import LABELS_ARRAY, OUR_ATTRIBUTES
from ..phases import PhaseSet
from ._atomic import check_output, remove, replace_path, temp_sibling
from ._common import MICROMETRE, PIXEL
from ._ome import multiscales_attrs
from ._store import LabelStore, compressor
from ._tiff import BATTERY_SEG_TAG

DEFAULT_LABEL_CHUNKS = (32, 256, 256)
_BIGTIFF_BYTES = 2**32 - 2**25  # classic TIFF offsets are 32-bit; keep room for the headers
_IMAGEJ_DTYPES = ("uint8", "uint16", "float32")


def _output_kind(path: Path) -> str:
    name = path.name.lower()
    if name.endswith(".zarr"):
        return "zarr"
    if name.endswith((".tif", ".tiff")):
        return "tiff"
    raise BatterySegError(
        f"Cannot write {path}: unsupported extension. Use .zarr (OME-Zarr, best for large "
        "volumes) or .tif (TIFF with the voxel size, opens in Fiji)."
    )


def _as_volume(data: Any, what: str, path: Path) -> Any:
    if not hasattr(data, "ndim"):
        data = np.asarray(data)
    if data.ndim == 2:
        data = data[np.newaxis]
    if data.ndim != 3:
        raise BatterySegError(
            f"Cannot write {path}: the {what} have shape {tuple(data.shape)}; a (Z, Y, X) volume "
            "or a 2D (Y, X) image is needed."
        )
    return data


def _slabs(data: Any, depth: int) -> Iterator[tuple[slice, np.ndarray]]:
    """(z range, in-memory block) pairs covering ``data`` in slabs of ``depth`` slices."""
    for z in range(0, data.shape[0], depth):
        region = slice(z, min(z + depth, data.shape[0]))
        block = data[region]
        yield region, np.asarray(block.compute() if hasattr(block, "compute") else block)


def _checked_labels(block: np.ndarray, phases: PhaseSet, path: Path) -> np.ndarray:
    if block.dtype.kind == "b":
        return block.astype(np.uint8)
    if block.size and (int(block.min()) < 0 or int(block.max()) > len(phases)):
        bad = int(block.min()) if int(block.min()) < 0 else int(block.max())
        raise BatterySegError(
            f"Cannot write {path}: the labels hold the value {bad}, but the phase set has "
            f"{len(phases)} phases ({phases.describe()}; 0 = unlabelled). Pass the phase set "
            "that matches the labels, e.g. phases='pore,active,cbd'."
        )
    return block.astype(np.uint8, copy=False)


def write_labels(
    path: str | Path,
    labels: Any,
    *,
    phases: PhaseSet | str,
    voxel_size: Any,
    unit: str = MICROMETRE,
    overwrite: bool = False,
    chunks: tuple[int, int, int] | None = None,
) -> Path:
    """Write a label volume (values 0..K, 0 = unlabelled) with its phases and voxel size.

    Parameters
    ----------
    path : str or Path
        ``.zarr`` (or ``.ome.zarr``): an NGFF 0.4 label image on zarr v2 with phase names and
        colours in its ``image-label`` metadata. ``.tif``/``.tiff``: an ImageJ TIFF (BigTIFF
        with OME-XML above 4 GB) with the voxel size and the phases in a private tag.
    labels : array-like or dask array
        (Z, Y, X) or (Y, X) integers; written slab by slab, so dask arrays larger than memory
        work.
    phases : PhaseSet or str
        The phases of values 1..K, e.g. ``"si-graphite"``.
    voxel_size : float or (dz, dy, dx)
    unit : str
    overwrite : bool
        Replace an existing output (atomically).
    chunks : (int, int, int), optional
        Zarr chunks; default (32, 256, 256).

    Returns
    -------
    Path
        The written file or store.

    Examples
    --------
    >>> write_labels("seg.zarr", labels, phases="si-graphite", voxel_size=0.5)  # doctest: +SKIP
    PosixPath('seg.zarr')
    """
    path = Path(path)
    kind = _output_kind(path)
    phases = PhaseSet.parse(phases)
    voxel_size = check_voxel_size(voxel_size, str(path))
    labels = _as_volume(labels, "labels", path)
    if labels.dtype.kind not in "biu":
        raise BatterySegError(
            f"Cannot write {path}: labels must be integers, got {labels.dtype}. Round or cast "
            "them first (e.g. labels.astype('uint8'))."
        )
    check_output(path, overwrite)
    if kind == "tiff":
        return _write_label_tiff(path, labels, phases, voxel_size, unit, overwrite)
    chunks = tuple(
        min(c, n) for c, n in zip(chunks or DEFAULT_LABEL_CHUNKS, labels.shape, strict=True)
    )
    store = LabelStore.create_or_resume(
        path,
        shape=labels.shape,
        chunks=chunks,
        phases=phases,
        voxel_size=voxel_size,
        unit=unit,
        fingerprint=f"write_labels {uuid.uuid4().hex}",
        overwrite=overwrite,
    )
    try:
        for region, block in _slabs(labels, chunks[0]):
            store.array[region] = _checked_labels(block, phases, path)
        return store.finalize()
    except BaseException:
        store.abort()
        raise


def _write_label_tiff(path: Path, labels, phases: PhaseSet, voxel_size, unit, overwrite) -> Path:
    """The labels as an ImageJ TIFF, slab by slab, with the phases in a private tag."""
    pages = (
        page
        for _, block in _slabs(labels, DEFAULT_LABEL_CHUNKS[0])
        for page in _checked_labels(block, phases, path)
    )
    info = {
        "phases": phases.to_dict(),
        "voxel_size": list(voxel_size),
        "unit": unit,
        "software": f"napari-battery-seg {__version__}",
        "complete": True,
    }
    return _write_tiff(
        path,
        pages,
        labels.shape,
        np.uint8,
        voxel_size,
        unit,
        overwrite,
        info=info,
        display_range=(0, len(phases)),
    )


def write_image(
    path: str | Path,
    image: Any,
    *,
    voxel_size: Any,
    unit: str = MICROMETRE,
    overwrite: bool = False,
) -> Path:
    """Write a grey-value volume to TIFF (ImageJ-readable spacing) or an OME-Zarr image.

    ``.tif`` files are ImageJ hyperstacks for uint8, uint16 and float32 data below 4 GB, and
    OME-TIFF BigTIFFs otherwise; ``.zarr`` stores are NGFF 0.4 images on zarr v2.

    Examples
    --------
    >>> write_image("image.tif", volume, voxel_size=(0.5, 0.25, 0.25))  # doctest: +SKIP
    PosixPath('image.tif')
    """
    path = Path(path)
    kind = _output_kind(path)
    voxel_size = check_voxel_size(voxel_size, str(path))
    image = _as_volume(image, "image", path)
    if image.dtype.kind not in "biuf":
        raise BatterySegError(f"Cannot write {path}: unsupported data type {image.dtype}.")
    check_output(path, overwrite)
    depth = DEFAULT_LABEL_CHUNKS[0]
    if kind == "tiff":
        pages = (page for _, block in _slabs(image, depth) for page in block)
        return _write_tiff(path, pages, image.shape, image.dtype, voxel_size, unit, overwrite)
    import zarr

    building = temp_sibling(path, "writing")
    try:
        root = zarr.open_group(store=str(building), mode="w", zarr_format=2)
        root.attrs.update(multiscales_attrs(path.name.removesuffix(".zarr"), voxel_size, unit))
        # marks the store as ours, so that --overwrite may replace it
        root.attrs[OUR_ATTRIBUTES] = {
            "software": f"napari-battery-seg {__version__}",
            "kind": "image",
        }
        chunks = tuple(min(c, n) for c, n in zip(DEFAULT_LABEL_CHUNKS, image.shape, strict=True))
        array = root.create_array(
            LABELS_ARRAY,
            shape=image.shape,
            chunks=chunks,
            dtype=image.dtype,
            fill_value=0,
            compressors=compressor(),
            chunk_key_encoding={"name": "v2", "separator": "/"},
        )
        for region, block in _slabs(image, chunks[0]):
            array[region] = block
        replace_path(building, path)
    except BaseException:
        remove(building)
        raise
    return path


def _write_tiff(
    path: Path,
    pages: Iterator[np.ndarray],
    shape: tuple[int, ...],
    dtype: Any,
    voxel_size: tuple[float, float, float],
    unit: str,
    overwrite: bool,
    *,
    info: dict[str, Any] | None = None,
    display_range: tuple[int, int] | None = None,
) -> Path:
    import tifffile

    dtype = np.dtype(dtype)
    dz, dy, dx = voxel_size
    nbytes = int(np.prod(shape)) * dtype.itemsize
    check_disk(path, nbytes, f"the TIFF {path} ({'x'.join(map(str, shape))} {dtype})")
    big = nbytes >= _BIGTIFF_BYTES
    tags = [(BATTERY_SEG_TAG, "s", 0, json.dumps({"battery_seg": info}), True)] if info else []
    options: dict[str, Any] = {
        "shape": shape,
        "dtype": dtype,
        "photometric": "minisblack",
        "extratags": tags,
    }
    if not big and dtype.name in _IMAGEJ_DTYPES:
        metadata: dict[str, Any] = {"axes": "ZYX", "spacing": dz}
        if unit != PIXEL:
            metadata["unit"] = "micron" if unit == MICROMETRE else unit
        if display_range:
            metadata.update(min=display_range[0], max=display_range[1])
        options.update(imagej=True, resolution=(1 / dx, 1 / dy), metadata=metadata)
    else:
        metadata = {"axes": "ZYX"}
        if unit != PIXEL:
            for axis, size in zip("ZYX", voxel_size, strict=True):
                metadata.update({f"PhysicalSize{axis}": size, f"PhysicalSize{axis}Unit": unit})
        options.update(bigtiff=big, ome=True, metadata=metadata)
        if unit == MICROMETRE:
            options.update(resolution=(1e4 / dx, 1e4 / dy), resolutionunit="CENTIMETER")
    tmp = temp_sibling(path, "writing")
    try:
        tifffile.imwrite(tmp, pages, **options)
        replace_path(tmp, path)
    except BaseException:
        remove(tmp)
        raise
    return path
