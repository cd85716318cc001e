"""Reading and writing tomography volumes, lazily and with their voxel size.

:func:`open_volume` opens TIFF stacks (ImageJ, OME-TIFF, BigTIFF), folders of 2D TIFF slices,
Zarr v2/v3 and OME-Zarr stores, and HDF5/NeXus datasets as a :class:`Volume` whose ``data`` is a
(Z, Y, X) dask array backed by the file; only metadata is read on opening.
:func:`write_labels` / :func:`write_image` write OME-Zarr or TIFF atomically, and
:class:`LabelStore` writes a large label volume block by block, resumably.

Examples
--------
>>> from battery_seg.io import open_volume, write_labels
>>> vol = open_volume("electrode.tif")  # doctest: +SKIP
>>> vol.data, vol.voxel_size, vol.unit, vol.voxel_size_source  # doctest: +SKIP
(dask.array<...>, (0.5, 0.325, 0.325), 'µm', 'metadata')
>>> write_labels("seg.zarr", labels, phases="si-graphite",  # doctest: +SKIP
...              voxel_size=vol.voxel_size)
"""

from __future__ import annotations

from ._store import LabelStore, is_complete_store
from ._volume import ValueRange, Volume, open_volume
from ._write import write_image, write_labels

__all__ = [
    "LabelStore",
    "ValueRange",
    "Volume",
    "is_complete_store",
    "open_volume",
    "write_image",
    "write_labels",
]
