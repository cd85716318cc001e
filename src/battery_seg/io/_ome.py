"""OME-Zarr (OME-NGFF) metadata: building it for the stores we write and parsing any store's.

We write NGFF 0.4 on zarr format 2 (``dimension_separator "/"``): it is what most readers
(napari-ome-zarr, Fiji/MoBIE, ome-zarr-py, neuroglancer) open today. We read 0.4 (zarr v2) and
0.5 (zarr v3, metadata nested under ``"ome"``), and the older 0.1-0.3 layouts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..names import LABELS_ARRAY
from ..phases import PhaseSet

NGFF_VERSION = "0.4"
_NGFF_UNITS = {
    "µm": "micrometer",
    "nm": "nanometer",
    "mm": "millimeter",
    "cm": "centimeter",
    "m": "meter",
    "Å": "angstrom",
    "pm": "picometer",
    "inch": "inch",
}


def ngff_unit(unit: str) -> str | None:
    """The NGFF name of ``unit`` (``"µm"`` -> ``"micrometer"``), or None if it has none."""
    return _NGFF_UNITS.get(unit, unit if unit in _NGFF_UNITS.values() else None)


def multiscales_attrs(
    name: str, voxel_size: tuple[float, float, float], unit: str
) -> dict[str, Any]:
    """Root attributes of a single-level NGFF 0.4 image with array ``"0"`` (z, y, x)."""
    unit_name = ngff_unit(unit)
    axes = [
        {"name": a, "type": "space", **({"unit": unit_name} if unit_name else {})} for a in "zyx"
    ]
    scale = [{"type": "scale", "scale": [float(v) for v in voxel_size]}]
    return {
        "multiscales": [
            {
                "version": NGFF_VERSION,
                "name": name,
                "axes": axes,
                "datasets": [{"path": LABELS_ARRAY, "coordinateTransformations": scale}],
            }
        ]
    }


def _rgba(color: str) -> list[int]:
    color = color.lstrip("#")
    values = [int(color[i : i + 2], 16) for i in range(0, len(color), 2)]
    return [*values, 255][:4]


def image_label_attrs(phases: PhaseSet) -> dict[str, Any]:
    """``image-label`` attributes: one colour and one phase name per label value."""
    return {
        "image-label": {
            "version": NGFF_VERSION,
            "colors": [{"label-value": p.value, "rgba": _rgba(p.color)} for p in phases],
            "properties": [{"label-value": p.value, "name": p.name} for p in phases],
        }
    }


@dataclass
class Multiscale:
    """The parts of an NGFF ``multiscales`` entry that reading needs."""

    version: str
    name: str
    paths: list[str]
    axes: str
    units: list[str | None]
    scale: list[float]
    image_label: dict[str, Any] | None = None
    attrs: dict[str, Any] = field(default_factory=dict)


def ome_attrs(attrs: dict[str, Any]) -> dict[str, Any]:
    """The OME part of a group's attributes (0.5 nests it under ``"ome"``)."""
    nested = attrs.get("ome")
    return nested if isinstance(nested, dict) else attrs


def parse_multiscales(attrs: dict[str, Any], ndim: int | None = None) -> Multiscale | None:
    """Parse the first ``multiscales`` entry of ``attrs``; None if there is none."""
    ome = ome_attrs(attrs)
    entries = ome.get("multiscales")
    if not entries or not isinstance(entries, list):
        return None
    entry = entries[0]
    datasets = entry.get("datasets") or []
    paths = [str(d["path"]) for d in datasets if "path" in d]
    if not paths:
        return None
    raw_axes = entry.get("axes") or list("tczyx")[-(ndim or 5) :]
    letters, units = [], []
    for axis in raw_axes:
        name = axis.get("name", "") if isinstance(axis, dict) else str(axis)
        kind = axis.get("type", "") if isinstance(axis, dict) else ""
        letter = (
            name.upper()
            if name.lower() in ("t", "c", "z", "y", "x")
            else ({"time": "T", "channel": "C"}.get(kind, "Q"))
        )
        letters.append(letter)
        units.append(axis.get("unit") if isinstance(axis, dict) else None)
    scale = scale_of(datasets[0].get("coordinateTransformations"), len(letters))
    overall = scale_of(entry.get("coordinateTransformations"), len(letters))
    return Multiscale(
        version=str(entry.get("version", ome.get("version", ""))),
        name=str(entry.get("name", "")),
        paths=paths,
        axes="".join(letters),
        units=units,
        scale=[a * b for a, b in zip(scale, overall, strict=True)],
        image_label=ome.get("image-label"),
        attrs=attrs,
    )


def scale_of(transforms: Any, ndim: int) -> list[float]:
    for transform in transforms or []:
        if transform.get("type") == "scale" and len(transform.get("scale", [])) == ndim:
            return [float(v) for v in transform["scale"]]
    return [1.0] * ndim


def phases_from_image_label(image_label: dict[str, Any]) -> PhaseSet | None:
    """A phase set from ``image-label`` properties naming values 1..K, else None."""
    names = {}
    for prop in image_label.get("properties") or []:
        name = prop.get("name") or prop.get("phase")
        if "label-value" in prop and isinstance(name, str):
            names[int(prop["label-value"])] = name
    if not names or sorted(names) != list(range(1, len(names) + 1)):
        return None
    try:
        return PhaseSet.from_names([names[v] for v in sorted(names)])
    except ValueError:
        return None
