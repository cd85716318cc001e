"""Where new layers sit: the physical scale, units and axis names of the layer they came from."""

from __future__ import annotations

from typing import Any

from .._reader import axis_labels

__all__ = ["same_space"]


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
