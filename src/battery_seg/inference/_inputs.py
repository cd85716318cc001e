"""What can be segmented: NumPy / dask arrays and :class:`battery_seg.io.Volume` objects."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_voxel_size
from ..errors import BatterySegError
from ..io._lazy import read_planes

__all__ = ["InputVolume", "as_input_volume"]


@dataclass
class InputVolume:
    """A ``(Z, Y, X)`` NumPy or dask array with its voxel size, name and file (if any)."""

    data: Any
    voxel_size: tuple[float, float, float]
    unit: str
    name: str
    path: Path | None = None
    was_2d: bool = False

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(int(n) for n in self.data.shape)  # type: ignore[return-value]

    def identity(self) -> dict[str, Any]:
        """File, shape, dtype and a hash of the first, middle and last slices."""
        digest = hashlib.sha256()
        depth = self.shape[0]
        for plane in read_planes(self.data, sorted({0, depth // 2, depth - 1})):
            digest.update(np.ascontiguousarray(plane).tobytes())
        return {
            "path": None if self.path is None else str(Path(self.path).resolve()),
            "shape": list(self.shape),
            "dtype": str(self.data.dtype),
            "slices_sha256": digest.hexdigest(),
        }


def as_input_volume(image: Any, voxel_size: Any = None) -> InputVolume:
    """Check ``image`` and wrap it with its voxel size (``voxel_size`` overrides it)."""
    name, path, unit, size = "The image", None, "pixel", (1.0, 1.0, 1.0)
    if hasattr(image, "data") and hasattr(image, "voxel_size") and hasattr(image, "path"):
        name, path, unit, size = f"{image.path}", image.path, image.unit, image.voxel_size
        data = image.data
    elif isinstance(image, np.ndarray) or hasattr(image, "dask"):
        data = image
    elif hasattr(image, "shape") and hasattr(image, "dtype") and hasattr(image, "__getitem__"):
        import dask.array as da

        data = da.from_array(image)  # zarr / h5py arrays: read lazily, block by block
    else:
        data = np.asarray(image)
    if voxel_size is not None:
        size, unit = check_voxel_size(voxel_size, name), ("µm" if unit == "pixel" else unit)
    was_2d = data.ndim == 2
    if was_2d:
        data = data[None]
    if data.ndim != 3:
        raise BatterySegError(
            f"{name} has {data.ndim} dimensions {tuple(data.shape)}; segmentation needs a "
            "(Z, Y, X) volume or a 2D image. Pick one channel / time point first (open_volume("
            "..., channel=, timepoint=) or split the layer in napari)."
        )
    if data.dtype.kind == "b":
        data = data.astype(np.uint8)
    if data.dtype.kind not in "uif":
        raise BatterySegError(
            f"{name} has voxels of type {data.dtype}; give a grey-level image (uint8, uint16, "
            "int or float)."
        )
    if min(data.shape) < 1:
        raise BatterySegError(f"{name} is empty (shape {tuple(data.shape)}).")
    return InputVolume(data, tuple(float(v) for v in size), unit, name, path, was_2d)
