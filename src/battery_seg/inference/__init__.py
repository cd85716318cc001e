"""Segment volumes into phases with a 2D / 2.5D U-Net, block by block on dask.

:func:`segment_job` (a generator job yielding one progress event per finished block) and
:func:`segment` run a model over a NumPy / dask array or a :class:`battery_seg.io.Volume` of any
size: blocks with halos, seamless Gaussian-blended tiles on a global grid (the chunked result
equals a single pass), optional tri-planar ensembling, per-phase probabilities and uncertainty,
results in memory, as TIFF, or in a resumable OME-Zarr store; any dask scheduler, including
``dask.distributed`` with process workers (each loads the model file once).

Examples
--------
>>> from battery_seg.inference import SegmentConfig, segment
>>> config = SegmentConfig(model="model.pt", output="labels.zarr")
>>> result = segment(volume, config)  # doctest: +SKIP
>>> result.labels  # doctest: +SKIP
PosixPath('labels.zarr')
"""

from __future__ import annotations

from ._config import SegmentConfig, SegmentResult
from ._predictor import InMemoryModel
from ._segment import segment, segment_job

__all__ = ["InMemoryModel", "SegmentConfig", "SegmentResult", "segment", "segment_job"]
