"""Zarr v2/v3 arrays and groups, OME-Zarr images and label images, read lazily.

An OME-Zarr image gives its level 0 for computing and the whole pyramid for display, with the
voxel size from the level-0 ``scale`` transform. A plain group with one array (or one 3D array)
opens that array; otherwise the error lists the arrays and how to address one
(``store.zarr:/path/to/array`` or the folder path ``store.zarr/path/to/array``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ..checks import check_dataset
from ..errors import BatterySegError
from ..names import PARTIAL_SUFFIX, battery_seg_attrs
from ._common import DatasetChoiceError, RawVolume, guess_axes, nd_chunks
from ._lazy import file_token, lazy_dask
from ._ome import (
    Multiscale,
    ome_attrs,
    parse_multiscales,
    phases_from_image_label,
    scale_of,
)

_MAX_LISTED = 12


def partial_error(store: Path) -> BatterySegError:
    final = store.name.removesuffix(PARTIAL_SUFFIX)
    return BatterySegError(
        f"{store} is a partially written label store (an interrupted or running segmentation "
        f"of {final}): re-run the segmentation command to finish it, or delete the folder."
    )


def check_not_partial(store: Path, allow_partial: bool) -> None:
    """Raise if ``store`` is one of our unfinished label stores (unless ``allow_partial``)."""
    if allow_partial:
        return
    for root in (store, *list(store.parents)[:2]):
        ours = battery_seg_attrs(root)
        if ours is None:
            continue
        if root.name.endswith(PARTIAL_SUFFIX) or not ours.get("complete", True):
            raise partial_error(root)


def open_zarr(path: Path, inner: str | None, *, allow_partial: bool = False) -> RawVolume:
    """Describe a Zarr store (or an array or group inside it) as a :class:`RawVolume`."""
    import zarr

    check_not_partial(path, allow_partial)
    target = path.joinpath(*inner.strip("/").split("/")) if inner and inner.strip("/") else path
    where = f"{path}:{inner}" if inner else str(path)
    try:
        node = zarr.open(store=str(target), mode="r")
    except (FileNotFoundError, zarr.errors.BaseZarrError, KeyError, ValueError) as exc:
        if target != path and path.exists():
            raise BatterySegError(
                f"{where}: there is no array {inner.strip('/')!r} in {path}. {_listing(path)}"
            ) from None
        raise BatterySegError(
            f"{where} is not a readable Zarr store ({exc}). Point to the store folder "
            "(the one holding .zgroup/.zarray or zarr.json)."
        ) from None
    name = inner.strip("/") if inner else ""
    if isinstance(node, zarr.Group):
        return _open_group(node, target, where, name)
    return _open_array(node, target, where, name)


def _open_group(group: Any, target: Path, where: str, name: str) -> RawVolume:
    attrs = group.attrs.asdict()
    multiscale = parse_multiscales(attrs)
    if multiscale is not None:
        return _open_multiscale(group, multiscale, target)
    labels = ome_attrs(attrs).get("labels")
    if isinstance(labels, list) and len(labels) == 1:
        return _open_group(group[labels[0]], target / labels[0], where, f"{name}/{labels[0]}")
    arrays = _arrays(group)
    choice = arrays if len(arrays) == 1 else [(n, a) for n, a in arrays if a.ndim == 3]
    if len(choice) != 1:
        raise DatasetChoiceError(
            f"{where} is a Zarr group with {len(arrays) or 'no'} arrays and no OME-Zarr "
            f"image metadata, so it is unclear which array to open. {_listing(target)}",
            [f"{target}:/{n}" for n, a in arrays if a.ndim == 3],
        )
    array_name, array = choice[0]
    return _open_array(array, target / array_name, where, f"{name}/{array_name}".strip("/"))


def _arrays(group: Any) -> list[tuple[str, Any]]:
    import zarr

    return [(n, a) for n, a in group.members(max_depth=None) if isinstance(a, zarr.Array)]


def _listing(store: Path) -> str:
    import zarr

    try:
        arrays = _arrays(zarr.open_group(store=str(store), mode="r"))
    except (FileNotFoundError, zarr.errors.BaseZarrError, ValueError):
        return "It holds no Zarr group to list."
    if not arrays:
        return "It holds no arrays."
    lines = [f"{store}:/{n} {tuple(a.shape)} {a.dtype}" for n, a in arrays[:_MAX_LISTED]]
    more = f" and {len(arrays) - _MAX_LISTED} more" if len(arrays) > _MAX_LISTED else ""
    return f"Open one of: {'; '.join(lines)}{more}."


def _zarr_format(array: Any) -> str:
    return f"Zarr v{array.metadata.zarr_format}"


def _dask(array: Any, axes: str, store: Path, key: str) -> Any:
    chunks = nd_chunks(axes, tuple(array.shape), array.dtype.itemsize, tuple(array.chunks))
    return lazy_dask(array, chunks, "zarr", *file_token(store), key)


def _open_multiscale(group: Any, ms: Multiscale, target: Path) -> RawVolume:
    arrays = [group[p] for p in ms.paths]
    check_dataset(tuple(arrays[0].shape), arrays[0].dtype, str(target))
    if len(ms.axes) != arrays[0].ndim:
        ms.axes = guess_axes(tuple(arrays[0].shape))[0]
        ms.units = [None] * arrays[0].ndim
        ms.scale = [1.0] * arrays[0].ndim
    levels = [_dask(a, ms.axes, target, p) for a, p in zip(arrays, ms.paths, strict=True)]
    spacing = {
        a: (s, u or "") for a, s, u in zip(ms.axes, ms.scale, ms.units, strict=True) if a in "ZYX"
    }
    if all(u is None for a, u in zip(ms.axes, ms.units, strict=True) if a in "ZYX") and all(
        s == 1.0 for a, s in zip(ms.axes, ms.scale, strict=True) if a in "ZYX"
    ):
        spacing = {}
    label = ms.image_label is not None
    fmt = (
        f"OME-Zarr {ms.version or '?'} {'label image' if label else 'image'} "
        f"({_zarr_format(arrays[0])}, {len(levels)} level{'s' * (len(levels) > 1)})"
    )
    metadata: dict[str, Any] = {"ome": {"name": ms.name, "version": ms.version}}
    ours = ms.attrs.get("battery_seg")
    if isinstance(ours, dict):
        metadata["battery_seg"] = ours
        metadata.update({k: ours[k] for k in ("phases", "extras") if k in ours})
    if label:
        metadata["image-label"] = ms.image_label
        if "phases" not in metadata:
            phases = phases_from_image_label(ms.image_label)
            if phases is not None:
                metadata["phases"] = phases.to_dict()
    return RawVolume(levels, ms.axes, fmt, spacing, metadata, "labels" if label else "image")


def _open_array(array: Any, target: Path, where: str, name: str) -> RawVolume:
    check_dataset(tuple(array.shape), array.dtype, where)
    names = getattr(array.metadata, "dimension_names", None) or array.attrs.get("_ARRAY_DIMENSIONS")
    guessed = False
    if names and len(names) == array.ndim and all(isinstance(n, str) for n in names):
        axes = "".join(n.upper() if n.lower() in "tczyx" and n else "Q" for n in names)
    else:
        axes, guessed = guess_axes(tuple(array.shape))
    spacing = _parent_scale(target, axes)
    data = _dask(array, axes, target, name)
    fmt = f"{_zarr_format(array)} array" + (f" {name}" if name else "")
    return RawVolume([data], axes, fmt, spacing, {"array": name}, axes_guessed=guessed)


def _parent_scale(target: Path, axes: str) -> dict[str, tuple[float, str]]:
    """Voxel size of an OME-Zarr level addressed directly (``image.zarr/0``)."""
    import zarr

    try:
        parent = zarr.open_group(store=str(target.parent), mode="r")
    except (FileNotFoundError, zarr.errors.BaseZarrError, ValueError):
        return {}
    ms = parse_multiscales(parent.attrs.asdict())
    if ms is None or target.name not in ms.paths or len(ms.axes) != len(axes):
        return {}
    level = ms.paths.index(target.name)
    datasets = ome_attrs(ms.attrs)["multiscales"][0]["datasets"]
    scale = scale_of(datasets[level].get("coordinateTransformations"), len(axes))
    return {a: (s, u or "") for a, s, u in zip(ms.axes, scale, ms.units, strict=True) if a in "ZYX"}
