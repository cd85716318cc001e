"""What a block task carries: the block, the box of input it reads, the job's settings.

Kept apart from :mod:`._blocks` (the work of a block) so that the device pipeline
(:mod:`._device`), which :mod:`._blocks` calls, can use them without importing it back.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import BatterySegError
from ._predictor import InMemoryModel, ModelFile
from ._tiling import AxisGrid

if TYPE_CHECKING:
    from ..model.normalization import IntensityRange

__all__ = ["Block", "BlockJob", "PassInput", "VolumeRegion", "check_finite"]


@dataclass(frozen=True)
class Block:
    """One box of the output volume; ``key`` names it in a store's completion records."""

    index: tuple[int, int, int]
    box: tuple[slice, slice, slice]

    @property
    def key(self) -> str:
        return ".".join(str(i) for i in self.index)

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(s.stop - s.start for s in self.box)  # type: ignore[return-value]


class VolumeRegion:
    """A box of the input volume, read when the task runs.

    A dask volume is sliced (and culled) when the task is built; a NumPy volume is kept as a view
    and only the box's voxels are pickled when a task goes to another process.
    """

    def __init__(self, volume: Any, box: tuple[slice, ...]) -> None:
        if hasattr(volume, "dask"):
            import dask

            (self.source,) = dask.optimize(volume[box])
            self.box: tuple[slice, ...] | None = None
        else:
            self.source, self.box = volume, box

    def read(self) -> np.ndarray:
        data = self.source if self.box is None else self.source[self.box]
        if hasattr(data, "dask"):
            data = data.compute(scheduler="sync", optimize_graph=False)  # culled when built
        return np.asarray(data)

    def __getstate__(self) -> dict:
        if self.box is None:  # a culled dask graph: cheap to send, read where the task runs
            return dict(self.__dict__)
        return {"source": np.ascontiguousarray(self.source[self.box]), "box": (slice(None),)}


@dataclass(frozen=True)
class PassInput:
    """What one slicing-axis pass over one block reads."""

    axis: int
    region: VolumeRegion
    plane_index: np.ndarray  # planes of region (along axis) feeding the network, mirrored at ends
    pad: tuple[int, int]  # mirror padding after the two in-plane axes (one short tile)
    window: tuple[tuple[int, int], tuple[int, int]]  # output region, in-plane coordinates


@dataclass(frozen=True)
class BlockJob:
    """Settings shared by every block of a job (small and picklable)."""

    job_id: str
    model: ModelFile | InMemoryModel
    device: str
    precision: str
    context: int
    n_phases: int
    grids: dict[int, tuple[AxisGrid, AxisGrid]]
    intensity: IntensityRange
    batch_size: int = 4
    probabilities: bool = False
    uncertainty: str = "none"
    store: Any = None  # battery_seg.io.LabelStore, or None to return the arrays
    backend: str = "torch"


def check_finite(raw: np.ndarray, block: Block) -> None:
    """Refuse NaN / infinite voxels, naming the block they are in."""
    if raw.dtype.kind == "f" and not np.isfinite(raw).all():
        where = ", ".join(f"{s.start}:{s.stop}" for s in block.box)
        raise BatterySegError(
            f"The image holds NaN or infinite voxels near block [{where}] (z, y, x). Replace them "
            "(for example with the reconstruction's background value) and run again."
        )
