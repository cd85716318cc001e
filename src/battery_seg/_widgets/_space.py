"""Where new layers sit: the physical scale and units of the layer they were computed from."""

from __future__ import annotations

from typing import Any

__all__ = ["same_space", "voxel_size_um"]


def same_space(layer: Any, leading_axes: int = 0, last: int | None = None) -> dict[str, tuple]:
    """``scale`` (and ``units``, on napari versions that have them) for a layer derived from
    ``layer``: its ``last`` axes (all by default), with ``leading_axes`` extra unscaled axes in
    front (e.g. one per phase).

    Matching units keep napari from dropping physical units for the whole viewer.
    """
    axes = slice(-last, None) if last else slice(None)
    scale = tuple(float(s) for s in layer.scale[axes])
    space = {"scale": (1.0,) * leading_axes + scale}
    units = getattr(layer, "units", None)
    if units is not None:
        units = tuple(str(u) for u in units)[axes]
        if len(units) == len(scale):
            space["units"] = ("pixel",) * leading_axes + units
    return space


def voxel_size_um(layer: Any) -> tuple[float, ...] | None:
    """The layer's ``scale`` when its ``units`` say micrometres (napari >= 0.6, set by our
    reader from the file's metadata), else None: napari's default scale of 1 says nothing."""
    units = getattr(layer, "units", None)
    if units is None or not all(str(u) in ("micrometer", "µm", "um") for u in units):
        return None
    return tuple(float(s) for s in layer.scale[-3:])
