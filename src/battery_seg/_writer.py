"""npe2 writer: a napari Labels layer saved as phase labels (OME-Zarr or TIFF; no Qt here).

The phases come from the layer's metadata (``metadata["phases"]``, set by this plugin's reader and
widgets); without them values up to 4 are taken as the si-graphite preset and larger ones get
generic names. The voxel size is the layer's ``scale``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import BatterySegError
from .phases import PhaseSet

_SUFFIXES = (".zarr", ".tif", ".tiff")


def write_labels_layer(path: str, data: Any, meta: dict[str, Any]) -> list[str]:
    """Write one Labels layer to ``path`` (``.zarr``/``.ome.zarr`` or ``.tif``); return its path.

    An existing output is replaced only if it is a label file written by this plugin (napari's
    save dialog has already asked to replace it); anything else is refused.

    Examples
    --------
    >>> write_labels_layer("seg.zarr", labels, {"scale": (0.5, 0.5, 0.5)})  # doctest: +SKIP
    ['seg.zarr']
    """
    from .io import write_labels

    if isinstance(data, (list, tuple)):  # multiscale: level 0 is the full resolution
        data = data[0]
    target = Path(path)
    if not target.name.lower().endswith(_SUFFIXES):
        target = target.with_name(target.name + ".zarr")
    layer_metadata = meta.get("metadata") or {}
    phases = _phases(layer_metadata.get("phases"), data, target)
    scale = tuple(float(s) for s in (meta.get("scale") or (1.0, 1.0, 1.0)))
    voxel_size = scale[-3:] if len(scale) >= 3 else (scale[-1], *scale[-2:])
    unit = _unit(layer_metadata, meta, voxel_size)
    written = write_labels(
        target,
        data,
        phases=phases,
        voxel_size=voxel_size,
        unit=unit,
        overwrite=_ours(target),
    )
    return [str(written)]


def _phases(stored: Any, data: Any, path: Path) -> PhaseSet:
    if isinstance(stored, PhaseSet):
        return stored
    if isinstance(stored, dict):
        return PhaseSet.from_dict(stored)
    high = int(np.asarray(data.max()))
    if high <= 4:
        return PhaseSet.parse("si-graphite")
    if high > 255:
        raise BatterySegError(
            f"Cannot save {path}: the layer holds label {high}, but phase labels go up to 255."
        )
    return PhaseSet.from_names([f"phase{i}" for i in range(1, high + 1)])


def _unit(layer_metadata: dict[str, Any], meta: dict[str, Any], voxel_size: tuple) -> str:
    from .io._common import to_micrometre

    if layer_metadata.get("unit"):
        return str(layer_metadata["unit"])
    units = meta.get("units")
    if units:
        return to_micrometre(1.0, str(units[-1]))[1]
    return "pixel" if all(v == 1.0 for v in voxel_size) else "µm"


def _ours(path: Path) -> bool:
    """Whether ``path`` is an existing label file or store written by this plugin."""
    from .io import is_complete_store
    from .io._volume import read_raw

    if not path.exists():
        return False
    if path.is_dir():
        return is_complete_store(path)
    try:
        return "battery_seg" in read_raw(path, None, allow_partial=False).metadata
    except BatterySegError:
        return False
