"""Where new layers sit: the physical scale, units and axis names of the layer they came from."""

from __future__ import annotations

from typing import Any

from .._reader import axis_labels

__all__ = ["displayed_volume", "same_space", "voxel_size_um"]


def same_space(layer: Any, leading_axes: int = 0, last: int | None = None) -> dict[str, tuple]:
    """``scale`` (and ``units``, ``axis_labels`` on napari versions that have them) for a layer
    derived from ``layer``: its ``last`` axes (all by default), with ``leading_axes`` extra
    unscaled axes in front (e.g. one per phase).

    Matching units keep napari from dropping physical units for the whole viewer; the axes are
    named ``z, y, x`` (``phase`` for a leading axis) so the sliders say what they move.
    """
    axes = slice(-last, None) if last else slice(None)
    scale = tuple(float(s) for s in layer.scale[axes])
    space = {"scale": (1.0,) * leading_axes + scale}
    units = getattr(layer, "units", None)
    if units is not None:
        units = tuple(str(u) for u in units)[axes]
        if len(units) == len(scale):
            space["units"] = ("pixel",) * leading_axes + units
    space.update(axis_labels(len(scale), leading_axes))
    return space


def displayed_volume(layer: Any, viewer: Any) -> Any:
    """The ``(Z, Y, X)`` (or 2D) data of ``layer`` at full resolution; for a layer with more
    axes (time points, channels in front), the volume the viewer shows now: the widgets' way of
    choosing a time point or channel, like ``--timepoint`` / ``--channel`` on the command line.
    """
    data = layer.data[0] if getattr(layer, "multiscale", False) else layer.data
    extra = data.ndim - 3
    if extra <= 0:
        return data
    position = layer.world_to_data(viewer.dims.point)
    index = tuple(
        min(max(round(float(p)), 0), n - 1)
        for p, n in zip(position[:extra], data.shape[:extra], strict=True)
    )
    return data[index]


def voxel_size_um(layer: Any) -> tuple[float, ...] | None:
    """The layer's ``scale`` when its ``units`` say micrometres (napari >= 0.6, set by our
    reader from the file's metadata), else None: napari's default scale of 1 says nothing."""
    units = getattr(layer, "units", None)
    if units is None or not all(str(u) in ("micrometer", "µm", "um") for u in units):
        return None
    return tuple(float(s) for s in layer.scale[-3:])
