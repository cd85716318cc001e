"""Segment volumes into phases with a 2D / 2.5D U-Net, block by block on dask.

:func:`segment_job` (a generator job yielding one progress event per finished block) and
:func:`segment` run a model over a NumPy / dask array or a :class:`battery_seg.io.Volume` of any
size: blocks with halos, seamless Gaussian-blended tiles on a global grid (the chunked result
equals a single pass), optional tri-planar ensembling, per-phase probabilities and uncertainty,
results in memory, as TIFF, or in a resumable OME-Zarr store; any dask scheduler, including a
``dask.distributed`` cluster (``cluster=ClusterOptions(scheduler="tcp://host:8786")``, or
``workers=N`` processes started here; see :mod:`battery_seg.cluster`): the workers write their
blocks into the store, the model's weights reach each worker once, and a run stopped by a crash
or a lost worker resumes.

Examples
--------
>>> from battery_seg.inference import SegmentConfig, segment
>>> config = SegmentConfig(model="model.pt", output="labels.zarr")
>>> result = segment(volume, config)  # doctest: +SKIP
>>> result.labels  # doctest: +SKIP
PosixPath('labels.zarr')
>>> from battery_seg.cluster import ClusterOptions
>>> on_cluster = SegmentConfig(model="model.pt", output="/scratch/labels.zarr",
...                            cluster=ClusterOptions(scheduler="tcp://10.0.0.5:8786"))
"""

from __future__ import annotations

from ._config import SegmentConfig, SegmentResult
from ._predictor import InMemoryModel
from ._segment import segment, segment_job

__all__ = ["InMemoryModel", "SegmentConfig", "SegmentResult", "segment", "segment_job"]
