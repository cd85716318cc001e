"""Where finished blocks go: arrays in memory (optionally saved as TIFF at the end) or a store.

On Cancel or an error the in-memory arrays are dropped; a store stays ``OUT.zarr.partial`` with
its finished blocks recorded, so running the same job again continues it. Only a job that has
every block finalizes the store (renamed to ``OUT.zarr``), so a partial result never looks
complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BatterySegError
from ..phases import PhaseSet
from ._blocks import BlockResult

__all__ = ["MemorySink", "StoreSink"]


class MemorySink:
    """Assembles blocks into in-memory arrays; writes a TIFF at the end when asked to."""

    store = None

    def __init__(
        self,
        shape: tuple[int, int, int],
        n_phases: int,
        probabilities: bool,
        uncertainty: bool,
        tiff: Path | None = None,
    ) -> None:
        self.labels: np.ndarray | None = np.zeros(shape, np.uint8)
        self.probabilities = np.zeros((n_phases, *shape), np.uint8) if probabilities else None
        self.uncertainty = np.zeros(shape, np.uint8) if uncertainty else None
        self.tiff = tiff

    def done_keys(self) -> set[str]:
        return set()

    def accept(self, result: BlockResult) -> np.ndarray:
        """Place a finished block; return its labels."""
        if self.labels is None:
            raise BatterySegError("This segmentation was cancelled; its result was discarded.")
        self.labels[result.box] = result.labels
        if self.probabilities is not None:
            self.probabilities[(slice(None), *result.box)] = result.probabilities
        if self.uncertainty is not None:
            self.uncertainty[result.box] = result.uncertainty
        return result.labels  # type: ignore[return-value]

    def finish(
        self,
        keys: list[str],
        phases: PhaseSet,
        voxel_size: tuple[float, ...],
        unit: str,
        overwrite: bool,
    ) -> tuple[Any, Any, Any]:
        if self.tiff is None:
            return self.labels, self.probabilities, self.uncertainty
        from ..io import write_labels

        path = write_labels(
            self.tiff,
            self.labels,
            phases=phases,
            voxel_size=voxel_size,
            unit=unit,
            overwrite=overwrite,
        )
        return Path(path), None, None

    def discard(self) -> None:
        self.labels = self.probabilities = self.uncertainty = None


class StoreSink:
    """Blocks are written into a :class:`~battery_seg.io.LabelStore` by the workers."""

    def __init__(self, store: Any) -> None:
        self.store = store

    def done_keys(self) -> set[str]:
        return self.store.done_keys()

    def accept(self, result: BlockResult) -> None:
        """Nothing to do: the worker wrote the block (it is not read back, which for a big
        volume would pass the whole output through this process once more)."""
        return None

    def finish(
        self,
        keys: list[str],
        phases: PhaseSet,
        voxel_size: tuple[float, ...],
        unit: str,
        overwrite: bool,
    ) -> tuple[Any, Any, Any]:
        missing = set(keys) - self.store.done_keys()
        if missing:
            raise BatterySegError(
                f"{len(missing)} blocks of {self.store.partial_path} were not written; run the "
                "same command again to finish them."
            )
        path = self.store.finalize()
        return Path(path), self._lazy("probabilities"), self._lazy("uncertainty")

    def _lazy(self, name: str) -> Any:
        if name not in self.store.extras:
            return None
        import dask.array as da

        return da.from_zarr(self.store.extra(name))

    def discard(self) -> None:
        """Keep the partial store: its finished blocks let a re-run continue."""
