"""npe2 reader: tomography volumes opened lazily at their physical scale (no Qt here).

Handles TIFF stacks (lazily, unlike napari's built-in reader, which loads the whole file), folders
of 2D TIFF slices, Zarr / OME-Zarr stores (pyramids as multiscale layers, label images as Labels
layers with the phase colours) and HDF5 / NeXus files (``file.h5:/path/to/dataset``); the axes
are named z, y, x.

napari's built-in reader also claims ``.tif`` and ``.zarr``; napari 0.9 has no reader priority,
it asks the user unless its ``plugins.extension2reader`` setting names a reader for the file's
pattern. When the plugin is first used (npe2 ``on_activate``), :func:`prefer_this_reader` names
this reader for the tomography patterns the user has not assigned, and says so once.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import os
from collections.abc import Callable
from typing import Any

from .phases import PhaseSet

LayerData = tuple[Any, dict[str, Any], str]
PLUGIN = "napari-battery-seg"
#: napari reader-preference patterns claimed for this reader (``.zarr`` stores are folders)
PREFERRED_PATTERNS = (
    "*.tif",
    "*.tiff",
    "*.btf",
    "*.h5",
    "*.hdf5",
    "*.hdf",
    "*.nxs",
    "*.zarr" + os.sep,
)
_MAX_LAYERS = 8
_TIFF = (".tif", ".tiff", ".btf", ".tf8")
_HDF5 = (".h5", ".hdf5", ".hdf", ".he5", ".nxs")


def _handles(path: str) -> bool:
    from .io._volume import is_zarr_dir, split_address

    file, inner = split_address(path)
    suffix = file.suffix.lower()
    if inner is not None:
        return suffix in (*_HDF5, ".zarr")
    if file.is_dir():
        if is_zarr_dir(file):
            return True
        with os.scandir(file) as entries:
            return any(e.name.lower().endswith(_TIFF) and e.is_file() for e in entries)
    return suffix in (*_TIFF, *_HDF5)


def prefer_this_reader() -> list[str]:
    """Name this plugin's reader in napari's reader preferences for the
    :data:`PREFERRED_PATTERNS` the user has not assigned (their choices are kept); returns the
    patterns set. File > Preferences > Plugins lists and changes them."""
    from napari.settings import get_settings

    plugins = get_settings().plugins
    current = dict(plugins.extension2reader)
    claimed = [pattern for pattern in PREFERRED_PATTERNS if pattern not in current]
    if claimed:
        plugins.extension2reader = {**current, **dict.fromkeys(claimed, PLUGIN)}
    return claimed


def on_activate(_context: Any = None) -> None:
    """npe2 activation hook: prefer this reader for tomography files (see the module doc)."""
    claimed = prefer_this_reader()
    if claimed:
        from napari.utils.notifications import show_info

        show_info(
            f"Battery Segmentation now opens {', '.join(p.strip('*' + os.sep) for p in claimed)}"
            " files lazily with their voxel size; change this in File > Preferences > Plugins."
        )


def get_reader(path: str | list[str]) -> Callable[[Any], list[LayerData]] | None:
    """Return :func:`read_volume` if ``path`` is a format this plugin opens, else None."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    try:
        return read_volume if _handles(str(path)) else None
    except OSError:
        return None


def read_volume(path: str | list[str]) -> list[LayerData]:
    """Layer data for ``path``: one Image (one per channel / time point) or Labels layer,
    lazily backed."""
    from .io import open_volume
    from .io._common import SLICES_NOT_CHANNELS, ChannelChoiceError, DatasetChoiceError

    path = path[0] if isinstance(path, (list, tuple)) else path
    try:
        return [layer_data(open_volume(path))]
    except ChannelChoiceError as exc:
        # napari shows channels and time points side by side: open each volume as a layer (a
        # command-line user picks one with --channel / --timepoint)
        picks = [
            dict(zip(exc.choices, combination, strict=True))
            for combination in itertools.product(*(range(n) for n in exc.choices.values()))
        ]
        if exc.axes is not None and exc.choices["channel"] > SLICES_NOT_CHANNELS:
            # a 3D stack saved as channels (ImageJ): one volume, its planes read as slices
            return [layer_data(open_volume(path, axes=exc.axes))]
        if len(picks) > _MAX_LAYERS:
            raise
        return [layer_data(open_volume(path, **pick)) for pick in picks]
    except DatasetChoiceError as exc:
        # napari's open dialog cannot address a dataset: open every 3D one as a layer
        if not 1 < len(exc.addresses) <= _MAX_LAYERS:
            raise
        return [layer_data(open_volume(address)) for address in exc.addresses]


def layer_data(volume: Any) -> LayerData:
    """napari layer data for an opened :class:`~battery_seg.io.Volume`."""
    multiscale = len(volume.levels) > 1
    data = volume.levels if multiscale else volume.data
    metadata = {
        "path": str(volume.path),
        "voxel_size": volume.voxel_size,
        "unit": volume.unit,
        "voxel_size_source": volume.voxel_size_source,
        "format": volume.metadata.get("format", ""),
    }
    kwargs: dict[str, Any] = {
        "name": volume.name,
        "scale": volume.voxel_size,
        "metadata": metadata,
        "multiscale": multiscale,
    }
    if volume.unit not in ("pixel", "") and _layers_take("units"):
        kwargs["units"] = (_napari_unit(volume.unit),) * 3
    kwargs.update(axis_labels(3))
    if volume.kind == "labels":
        phases = volume.phases or _guess_phases(volume)
        if phases is not None:
            metadata["phases"] = phases.to_dict()
            kwargs["colormap"] = phases.colormap()
            kwargs["features"] = {
                "index": [0, *phases.values],
                "phase": ["unlabelled", *phases.names],
            }
        return data, kwargs, "labels"
    low, high = volume.value_range()[:2]
    kwargs["contrast_limits"] = (low, high if high > low else low + 1)
    return data, kwargs, "image"


def _napari_unit(unit: str) -> str:
    return "micrometer" if unit == "µm" else unit


@functools.cache
def _layers_take(parameter: str) -> bool:
    """Whether this napari's layers accept ``parameter`` (``units``, ``axis_labels``: >= 0.6)."""
    from napari.layers import Image

    return parameter in inspect.signature(Image.__init__).parameters


def axis_labels(spatial: int, leading: int = 0) -> dict[str, tuple[str, ...]]:
    """``{"axis_labels": ("z", "y", "x")}`` for a layer with ``spatial`` (<= 3) axes after
    ``leading`` per-phase axes, so napari's sliders read z, y, x; empty where napari's layers
    have no axis labels or the axes are not spatial."""
    if not 1 <= spatial <= 3 or leading > 1 or not _layers_take("axis_labels"):
        return {}
    return {"axis_labels": ("phase",) * leading + ("z", "y", "x")[-spatial:]}


def _guess_phases(volume: Any) -> PhaseSet | None:
    """Phases of a label image that does not name them (None: not a phase image).

    Up to 4 labels: the si-graphite preset; up to 16: ``phase1..phaseK``; more (e.g. a cell
    segmentation) keep napari's own label colours.
    """
    high = int(volume.value_range().high)
    if high <= 4:
        return PhaseSet.parse("si-graphite")
    if high <= 16:
        return PhaseSet.from_names([f"phase{i}" for i in range(1, high + 1)])
    return None
