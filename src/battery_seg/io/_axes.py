"""Reading a file's axes as the user says (``open_volume(..., axes="ZYX")``, ``--axes ZYX``).

A file's own axis names are not always what its data are: a 3D stack saved for Fiji with
``tifffile.imwrite("scan.tif", volume, imagej=True)`` names its slices channels (``CYX``), and a
3-slice stack saved plainly is taken for an RGB image (``SYX``). ``axes`` renames the file's
axes, one letter per axis in the file's order; the data are not moved, the voxel size moves with
its axis, and the chunks are those of the axes as read.
"""

from __future__ import annotations

from dataclasses import replace

from ..errors import BatterySegError
from ._common import RawVolume, axis_listing, guess_axes, nd_chunks

__all__ = ["AXIS_LETTERS", "check_axes", "read_with_axes"]

# Z, Y, X for space; C a channel, T a time point, S a colour sample (RGB)
AXIS_LETTERS = "TCZYXS"


def _advice(example: str) -> str:
    return f"e.g. axes='{example}' (--axes {example} on the command line)"


def check_axes(given: str, file_axes: str, shape: tuple[int, ...], where: str) -> str:
    """The upper-cased ``given`` axes, or a one-line refusal when they do not fit the file."""
    axes = str(given).strip().upper()
    listing = axis_listing(file_axes, shape)
    unknown = sorted({a for a in axes if a not in AXIS_LETTERS})
    if unknown or not axes:
        raise BatterySegError(
            f"{where}: axes={given!r} is not a list of axis letters; name each axis of the file "
            f"(axes {listing}) with Z, Y, X, C (channel), T (time) or S (colour sample), "
            f"{_advice(guess_axes(shape)[0])}."
        )
    if len(axes) != len(shape):
        raise BatterySegError(
            f"{where} has {len(shape)} axes ({listing}) but axes={given!r} names {len(axes)}: "
            f"give one letter per axis, in the file's order, {_advice(guess_axes(shape)[0])}."
        )
    repeated = sorted({a for a in axes if axes.count(a) > 1})
    if repeated:
        raise BatterySegError(
            f"{where}: axes={given!r} names {', '.join(repeated)} more than once; give each of "
            f"the file's axes ({listing}) its own letter."
        )
    if "Y" not in axes or "X" not in axes:
        raise BatterySegError(
            f"{where}: axes={given!r} names no Y and X image plane; the file's axes are "
            f"{listing}, {_advice(guess_axes(shape)[0])}."
        )
    return axes


def read_with_axes(raw: RawVolume, given: str, where: str) -> RawVolume:
    """``raw`` with its axes renamed to ``given`` (checked against the file's axes)."""
    shape = tuple(raw.levels[0].shape)
    axes = check_axes(given, raw.axes, shape, where)
    spacing = {
        new: raw.spacing[old]
        for old, new in zip(raw.axes, axes, strict=True)
        if new in "ZYX" and old in raw.spacing
    }
    if "Z" in axes and "Z" not in raw.axes and "Z" in raw.spacing:
        spacing.setdefault("Z", raw.spacing["Z"])  # ImageJ's slice spacing, on no named axis
    levels = [
        level.rechunk(nd_chunks(axes, level.shape, level.dtype.itemsize, level.chunksize))
        if hasattr(level, "rechunk")
        else level
        for level in raw.levels
    ]
    metadata = {**raw.metadata, "file_axes": raw.axes}
    return replace(
        raw, levels=levels, axes=axes, spacing=spacing, metadata=metadata, axes_guessed=False
    )
