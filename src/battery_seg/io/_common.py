"""Pieces shared by the format readers: units, slab chunks, axis selection, the raw volume.

Every reader turns its file into a :class:`RawVolume` (lazy pyramid levels with the file's own
axes, voxel size per axis, metadata); :func:`battery_seg.io.open_volume` then picks the channel /
time point, checks that three spatial axes remain and builds the public ``Volume``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..checks import printable
from ..errors import BatterySegError

# A dask chunk spans a few z-slices and the whole (or a large part of the) y/x plane: the access
# pattern of slab-wise segmentation and statistics and of napari's slice view.
TARGET_CHUNK_BYTES = 64 * 2**20
MAX_SLAB_SLICES = 32
# A stack with more channels than this and no Z axis is more likely the slices of one volume
# saved as channels (a 3D stack written for ImageJ by tifffile) than a multi-channel image.
SLICES_NOT_CHANNELS = 5

MICROMETRE = "µm"
PIXEL = "pixel"
_TO_MICROMETRE = {
    "µm": 1.0,
    "μm": 1.0,
    "um": 1.0,
    "micron": 1.0,
    "microns": 1.0,
    "micrometer": 1.0,
    "micrometre": 1.0,
    "\\u00b5m": 1.0,
    "\\u03bcm": 1.0,
    "nm": 1e-3,
    "nanometer": 1e-3,
    "nanometre": 1e-3,
    "pm": 1e-6,
    "picometer": 1e-6,
    "picometre": 1e-6,
    "å": 1e-4,
    "Å": 1e-4,
    "angstrom": 1e-4,
    "ångström": 1e-4,
    "mm": 1e3,
    "millimeter": 1e3,
    "millimetre": 1e3,
    "cm": 1e4,
    "centimeter": 1e4,
    "centimetre": 1e4,
    "m": 1e6,
    "meter": 1e6,
    "metre": 1e6,
    "in": 25400.0,
    "inch": 25400.0,
}
_NO_UNIT = {"", "pixel", "pixels", "px", "none", "unknown"}


def to_micrometre(value: float, unit: str | None) -> tuple[float, str]:
    """``(value, unit)`` with lengths in a known unit converted to µm.

    Unknown units are kept as given; missing ones become ``"pixel"``.

    >>> to_micrometre(250.0, "nm")
    (0.25, 'µm')
    """
    key = (unit or "").strip()
    factor = _TO_MICROMETRE.get(key, _TO_MICROMETRE.get(key.lower()))
    if factor is not None:
        return float(value) * factor, MICROMETRE
    if key.lower() in _NO_UNIT:
        return float(value), PIXEL
    return float(value), printable(key, limit=32)  # the file's own text: keep terminals safe


def slab_chunks(
    shape: tuple[int, int, int], itemsize: int, native: tuple[int, int, int] | None = None
) -> tuple[int, int, int]:
    """Dask chunks (z, y, x) for slab-wise access, aligned to the file's ``native`` chunks.

    The y/x extent is the whole plane unless one slab of native chunks would exceed
    :data:`TARGET_CHUNK_BYTES`; the z extent then grows by whole native chunks up to the budget
    and at most :data:`MAX_SLAB_SLICES` slices (or one native chunk if that is thicker).
    """
    depth, height, width = (max(1, int(n)) for n in shape)
    nz, ny, nx = (max(1, int(n)) for n in (native or (1, height, width)))
    nz, ny, nx = min(nz, depth), min(ny, height), min(nx, width)
    cy, cx = height, width

    def nbytes(cz: int) -> int:
        return cz * cy * cx * itemsize

    while nbytes(nz) > TARGET_CHUNK_BYTES and (cy > ny or cx > nx):
        if cy >= cx and cy > ny:
            cy = max(ny, (cy // 2) // ny * ny)
        else:
            cx = max(nx, (cx // 2) // nx * nx)
    by_budget = max(1, TARGET_CHUNK_BYTES // nbytes(nz))
    by_slices = max(1, MAX_SLAB_SLICES // nz)
    cz = min(depth, nz * min(by_budget, by_slices))
    return (cz, cy, cx)


def normalize_axes(axes: str) -> str:
    """Upper-case axis letters; a single unnamed stack axis (tifffile ``I``/``Q``) becomes Z."""
    axes = axes.upper()
    if "Z" not in axes and axes.count("Q") + axes.count("I") == 1:
        axes = axes.replace("Q", "Z").replace("I", "Z")
    return axes


def nd_chunks(
    axes: str, shape: tuple[int, ...], itemsize: int, native: tuple[int, ...]
) -> tuple[int, ...]:
    """Chunks for an N-d array: slab chunks on Z/Y/X, whole colour samples, 1 elsewhere."""
    pos = {a: i for i, a in enumerate(axes) if a in "ZYXS"}
    if "Y" not in pos or "X" not in pos:
        return tuple(int(n) for n in native)
    z = pos.get("Z")
    samples = shape[pos["S"]] if "S" in pos else 1
    cz, cy, cx = slab_chunks(
        (shape[z] if z is not None else 1, shape[pos["Y"]], shape[pos["X"]]),
        itemsize * samples,
        (native[z] if z is not None else 1, native[pos["Y"]], native[pos["X"]]),
    )
    chunks = [1] * len(shape)
    for axis, size in (("Z", cz), ("Y", cy), ("X", cx), ("S", samples)):
        if axis in pos:
            chunks[pos[axis]] = size
    return tuple(chunks)


@dataclass
class RawVolume:
    """What a format reader found: lazy levels in the file's axis order plus metadata.

    ``axes`` uses ``Z Y X`` for space, ``C`` channel, ``S`` colour sample (RGB), ``T`` time and
    ``Q`` for an axis the file does not name. ``spacing`` maps spatial axis letters to
    ``(size, unit)`` for the axes the metadata describes.
    """

    levels: list[Any]
    axes: str
    format: str
    spacing: dict[str, tuple[float, str]] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)
    kind: str = "image"
    axes_guessed: bool = False


def guess_axes(shape: tuple[int, ...]) -> tuple[str, bool]:
    """Axis letters for an array whose file names no axes (OME order ``TCZYX``)."""
    ndim = len(shape)
    if ndim == 3 and shape[-1] in (3, 4) and min(shape[:2]) > 4 * shape[-1]:
        return "YXS", True
    names = {2: "YX", 3: "ZYX", 4: "CZYX", 5: "TCZYX"}
    if ndim in names:
        return names[ndim], ndim > 3
    return "Q" * (ndim - 3) + "ZYX", True


def axis_listing(axes: str, shape: tuple[int, ...]) -> str:
    return ", ".join(f"{a} ({n})" for a, n in zip(axes, shape, strict=True))


class ChannelChoiceError(BatterySegError):
    """The file holds several channels or time points and none was chosen.

    ``choices`` maps ``"channel"`` / ``"timepoint"`` to how many there are, so that a caller
    (the napari reader) can open each channel itself; ``axes`` is the reading that takes a
    channels-only stack without Z as slices (``"ZYX"`` for ``CYX``), or None.
    """

    def __init__(self, message: str, choices: dict[str, int], axes: str | None = None):
        super().__init__(message)
        self.choices = choices
        self.axes = axes


class DatasetChoiceError(BatterySegError):
    """A file or store holds several volumes and none was addressed.

    ``addresses`` lists the 3D candidates as ``open_volume`` addresses (``file.h5:/path``).
    """

    def __init__(self, message: str, addresses: list[str]):
        super().__init__(message)
        self.addresses = addresses


def _pick(
    axis: str, size: int, group: str | None, pick: int | None, where: str, listing: str
) -> Any:
    """Index along one axis: all of Z/Y/X, the chosen channel/time point, 0 for length 1."""
    if axis in "ZYX":
        return slice(None)
    if group is not None and pick is not None:
        if not 0 <= pick < size:
            raise BatterySegError(
                f"{where}: {group} {pick} is out of range; the file has {size} "
                f"({group} 0..{size - 1}; axes {listing})."
            )
        return pick
    if size == 1 or group is not None:
        return 0
    raise BatterySegError(
        f"{where} has axes {listing}, which cannot be read as one Z, Y, X volume. "
        "Save the volume you want as a single 3D stack (e.g. in Fiji: Image > Duplicate)."
    )


def slices_reading(axes: str, shape: tuple[int, ...], needed: dict[str, int]) -> str | None:
    """The axes that read a channels-only stack without Z as slices (``CYX`` -> ``ZYX``)."""
    if "Z" in axes or set(needed) != {"channel"}:
        return None
    channel_axis = next(a for a, n in zip(axes, shape, strict=True) if a in "CS" and n > 1)
    return axes.replace(channel_axis, "Z", 1)


def _ask_for_choice(
    axes: str, shape: tuple[int, ...], needed: dict[str, int], where: str, listing: str
):
    slices = slices_reading(axes, shape, needed)
    as_slices = (
        f" If the {needed['channel']} planes are slices of one volume, read it with "
        f"axes='{slices}' (--axes {slices})."
        if slices
        else ""
    )
    if "S" in axes and needed.get("channel"):
        raise ChannelChoiceError(
            f"{where} is an RGB colour image (axes {listing}). Segmentation needs one grey value "
            "per voxel: convert it to greyscale (Fiji: Image > Type > 8-bit) or pick one colour "
            "with channel=0, 1 or 2 (--channel on the command line)." + as_slices,
            needed,
            slices,
        )
    if slices and needed["channel"] > SLICES_NOT_CHANNELS:
        count = needed["channel"]
        raise ChannelChoiceError(
            f"{where} has axes {listing}: {count} channels and no Z, as a 3D stack saved for "
            f"ImageJ as channels has. Read its planes as slices with axes='{slices}' (--axes "
            f"{slices} on the command line), or pick one with channel=N (0..{count - 1}).",
            needed,
            slices,
        )
    asks = " and ".join(f"{g}=N (0..{n - 1})" for g, n in needed.items())
    raise ChannelChoiceError(
        f"{where} is a {len(shape)}D stack with axes {listing}; pick one volume with "
        f"{asks} (--{' and --'.join(needed)} on the command line)." + as_slices,
        needed,
        slices,
    )


def spatial_index(
    axes: str,
    shape: tuple[int, ...],
    *,
    channel: int | None,
    timepoint: int | None,
    where: str,
    guessed: bool = False,
) -> tuple[tuple[Any, ...], str]:
    """Index that reduces ``axes`` to the spatial ones, and the remaining axis letters.

    Raises a :class:`BatterySegError` (or :class:`ChannelChoiceError`) naming the file, the axes
    and the argument to pass when a channel or time point must be chosen.
    """
    axes = normalize_axes(axes)
    listing = axis_listing(axes, shape) + (
        " (assumed: the file does not name its axes)" if guessed else ""
    )
    picks = {"channel": channel, "timepoint": timepoint}
    groups = {"C": "channel", "S": "channel", "T": "timepoint"}
    needed: dict[str, int] = {}
    index: list[Any] = []
    used: set[str] = set()
    for axis, size in zip(axes, shape, strict=True):
        group = groups.get(axis)
        if group is None or size == 1 or group in used:
            group = None  # one axis per choice; others must have length 1
        else:
            used.add(group)
            if picks[group] is None:
                needed[group] = size
        index.append(_pick(axis, size, group, picks[group] if group else None, where, listing))
    if needed:
        _ask_for_choice(axes, shape, needed, where, listing)
    for group, pick in picks.items():
        if pick is not None and group not in used:
            raise BatterySegError(
                f"{where} has no {group} axis (axes {listing}); leave {group} unset."
            )
    remaining = "".join(a for a in axes if a in "ZYX")
    if "Y" not in remaining or "X" not in remaining:
        raise BatterySegError(f"{where} has axes {listing}: no Y and X image plane to read.")
    return tuple(index), remaining
