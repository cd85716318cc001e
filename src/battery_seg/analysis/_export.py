"""Atomic writes of analysis outputs (JSON, CSV, mask TIFFs): complete files or none."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..checks import check_disk, check_output
from ..errors import BatterySegError

__all__ = ["atomic_write", "save_mask"]


def atomic_write(
    path: str | os.PathLike, write: Callable[[Path], None], *, overwrite: bool = False
) -> Path:
    """Call ``write(temporary_path)`` then move the file onto ``path`` in one rename.

    The output guard (:func:`battery_seg.checks.check_output`) refuses an input, and an existing
    ``path`` unless ``overwrite`` (and then only a file of its kind); a failed or interrupted
    write leaves nothing behind.
    """
    path = check_output(path, overwrite=overwrite)
    temporary = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:12]}{path.suffix}")
    try:
        write(temporary)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return path


def save_mask(
    path: str | os.PathLike,
    mask: np.ndarray,
    voxel_size: Sequence[float],
    *,
    unit: str = "µm",
    overwrite: bool = False,
) -> Path:
    """Write a 0/1 uint8 mask (transport axis first) as an ImageJ TIFF with its voxel size.

    ``voxel_size`` is given in the mask's own axis order (transport axis first).
    """
    import tifffile

    mask = np.ascontiguousarray(mask, dtype=np.uint8)
    if mask.ndim != 3:
        raise BatterySegError(f"A mask must be 3D, got shape {mask.shape}.")
    dz, dy, dx = (float(v) for v in voxel_size)
    check_disk(path, mask.nbytes, f"the mask {path}")
    imagej_unit = "micron" if unit in ("µm", "um", "micron") else unit

    def write(target: Path) -> None:
        tifffile.imwrite(
            target,
            mask,
            imagej=True,
            resolution=(1.0 / dx, 1.0 / dy),
            metadata={"spacing": dz, "unit": imagej_unit, "axes": "ZYX"},
        )

    return atomic_write(path, write, overwrite=overwrite)
