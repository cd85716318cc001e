"""The one configuration object of a segmentation job, and its result.

The widget, the CLI and the Python API all build a :class:`SegmentConfig`, so the three cannot
drift apart.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import check_device
from ..cluster import ClusterOptions
from ..errors import BatterySegError
from ..names import AXES, BACKENDS
from ..phases import PhaseSet

__all__ = ["AXES", "SegmentConfig", "SegmentResult"]

_PRECISIONS = ("auto", "float32", "bfloat16", "float16")
_UNCERTAINTY = ("none", "entropy", "margin")
_STORE_SUFFIXES = (".zarr",)
_TIFF_SUFFIXES = (".tif", ".tiff")


@dataclass(frozen=True)
class SegmentConfig:
    """How to segment a volume.

    Parameters
    ----------
    model
        Checkpoint path; ``None`` or ``"default"`` for the bundled model; or an
        :class:`~battery_seg.inference.InMemoryModel`.
    context
        Slices the model sees; ``None`` takes it from the model card (a different value is an
        error, since a model only works with the context it was trained with).
    axis
        Slicing axis ``"z"``, ``"y"`` or ``"x"`` (planes perpendicular to it are segmented).
    triplanar
        Average the per-phase probabilities of the z, y and x passes (3x the work).
    tile
        In-plane tile size in pixels, a multiple of ``2**depth`` of the model; ``None`` (the
        default): the fewest tiles of up to 1152 pixels that cover a plane, overlapping by at
        least 64 pixels (a plane up to 1152 wide is one tile, computed once).
    overlap
        Fraction by which neighbouring tiles of the given ``tile`` size overlap (blended with
        Gaussian weights).
    batch_size
        Tiles per network call; ``None``: 4 tiles of 256 (fewer of larger tiles) on the CPU, as
        many as a quarter of the free memory holds on a GPU.
    device
        ``"cpu"``, ``"cuda"`` or ``"auto"`` (CUDA when a GPU is visible to the worker). On
        CUDA the whole block stays on the GPU: normalisation, context stacking, blending,
        argmax and uncertainty run there, and only the uint8 results come back.
    precision
        ``"auto"`` (bfloat16, or float16 on GPUs without it, only where the hardware runs it
        natively and it keeps at least 99.5 % of the float32 labels on a sample of the volume),
        ``"float32"``, ``"bfloat16"`` or ``"float16"`` (CUDA).
    backend
        How the network runs on the CPU: ``"auto"`` (OpenVINO when installed and it keeps at
        least 99.5 % of PyTorch's labels on a sample, else PyTorch), ``"torch"`` or
        ``"openvino"``.
    probabilities
        Also return per-phase probabilities, ``(K, Z, Y, X)`` uint8 = round(p * 255).
    uncertainty
        ``"none"``, ``"entropy"`` (normalised to 0..1) or ``"margin"`` (1 - max probability);
        returned as uint8 = round(u * 255).
    output
        ``None`` keeps the result in memory; a ``.zarr`` / ``.ome.zarr`` path writes an OME-Zarr
        store block by block (resumable); a ``.tif`` path writes the labels as TIFF at the end.
    overwrite
        Replace an existing output.
    block_shape
        ``(z, y, x)`` voxels per dask task (and the store's chunks); ``None`` picks one.
    cluster
        Where the blocks run (:class:`~battery_seg.cluster.ClusterOptions`; default: threads on
        this machine): ``ClusterOptions(scheduler="tcp://host:8786")`` names a
        ``dask.distributed`` scheduler (or its scheduler file, ``.json``), ``workers=N`` starts N
        worker processes on this machine for the job, ``scheduler="threads"`` /
        ``"processes"`` with ``workers`` sets the pool size. On a cluster the workers read the
        input and write the OME-Zarr output themselves (both must be on a filesystem they share
        at the same paths); the model's weights are sent to each worker once.
    phases
        Phase set the model must predict (``None``: whatever it predicts).

    Examples
    --------
    >>> config = SegmentConfig(model="my_model.pt", axis="z", output="labels.zarr")
    >>> SegmentConfig(tile=96).tile, SegmentConfig().tile  # None: tiles chosen per plane
    (96, None)
    >>> local = ClusterOptions(workers=2, memory_limit="2GiB")
    >>> SegmentConfig(output="labels.zarr", cluster=local).cluster.workers
    2
    """

    model: Any = None
    context: int | None = None
    axis: str = "z"
    triplanar: bool = False
    tile: int | None = None
    overlap: float = 0.25
    batch_size: int | None = None
    device: str = "auto"
    precision: str = "auto"
    backend: str = "auto"
    probabilities: bool = False
    uncertainty: str = "none"
    output: str | os.PathLike | None = None
    overwrite: bool = False
    block_shape: tuple[int, int, int] | None = None
    cluster: ClusterOptions = field(default_factory=ClusterOptions)
    phases: str | PhaseSet | None = None

    def __post_init__(self) -> None:
        set_ = object.__setattr__  # frozen: only the checks normalise fields
        set_(self, "axis", str(self.axis).lower())
        if self.axis not in AXES:
            raise BatterySegError(f"Slicing axis must be one of z, y, x; got {self.axis!r}.")
        set_(self, "device", check_device(self.device))
        _check_choice("precision", self.precision, _PRECISIONS)
        _check_choice("uncertainty", self.uncertainty, _UNCERTAINTY)
        _check_choice("backend", self.backend, BACKENDS)
        if self.tile is not None:
            if int(self.tile) < 1:
                raise BatterySegError(
                    f"Tile size must be a positive pixel count (or None: chosen), got {self.tile}."
                )
            set_(self, "tile", int(self.tile))
        if not 0 <= float(self.overlap) < 1:
            raise BatterySegError(
                f"Tile overlap is a fraction in [0, 1), got {self.overlap}; 0.25 is a good value."
            )
        if self.batch_size is not None and int(self.batch_size) < 1:
            raise BatterySegError(f"Batch size must be at least 1, got {self.batch_size}.")
        if self.block_shape is not None:
            shape = tuple(int(b) for b in self.block_shape)
            if len(shape) != 3 or min(shape) < 1:
                raise BatterySegError(
                    f"block_shape must be three positive sizes (z, y, x), got {self.block_shape}."
                )
            set_(self, "block_shape", shape)
        if self.context is not None and (int(self.context) < 1 or int(self.context) % 2 == 0):
            raise BatterySegError(f"Context must be an odd number of slices, got {self.context}.")
        set_(self, "cluster", ClusterOptions.of(self.cluster))
        if self.output is not None:
            set_(self, "output", Path(self.output))
            if self.output_kind == "tiff" and (self.probabilities or self.uncertainty != "none"):
                raise BatterySegError(
                    f"Probabilities and uncertainty need an OME-Zarr output, but {self.output} is "
                    "a TIFF (it holds only the labels). Write to a .zarr path instead."
                )

    @property
    def output_kind(self) -> str:
        """``"memory"``, ``"zarr"`` or ``"tiff"``."""
        if self.output is None:
            return "memory"
        name = Path(self.output).name.lower()
        if name.endswith(_STORE_SUFFIXES):
            return "zarr"
        if name.endswith(_TIFF_SUFFIXES):
            return "tiff"
        raise BatterySegError(
            f"Unsupported output {self.output}: use a .zarr / .ome.zarr store (large volumes, "
            "resumable) or a .tif file."
        )

    @property
    def axis_index(self) -> int:
        return AXES.index(self.axis)


def _check_choice(name: str, value: str, choices: tuple[str, ...]) -> None:
    if value in choices:
        return
    raise BatterySegError(f"{name} must be one of {', '.join(choices)}; got {value!r}.")


@dataclass
class SegmentResult:
    """What :func:`~battery_seg.inference.segment` returns.

    ``labels`` is a uint8 ``(Z, Y, X)`` array with the model's phase values 1..K, or the path of
    the written output. ``probabilities`` (``(K, Z, Y, X)``) and ``uncertainty`` (``(Z, Y, X)``)
    are uint8 arrays scaled by 255 (lazy dask arrays read from the store for a Zarr output), or
    ``None`` when not requested. ``precision`` and ``backend`` say how the network ran.
    ``timing`` holds ``seconds``, ``compute_seconds``, ``voxels_per_second``, ``blocks``,
    ``blocks_resumed`` and, on a cluster, ``bytes_received`` (what the workers sent back to this
    process, pickled). ``notes`` says what the user may want to change (e.g. a model that reads
    neighbouring slices run over a stack of unrelated images).
    """

    labels: np.ndarray | Path
    phases: PhaseSet
    voxel_size: tuple[float, float, float]
    unit: str = "µm"
    probabilities: Any = None
    uncertainty: Any = None
    context: int = 1
    axis: str = "z"
    precision: str = "float32"
    backend: str = "torch"
    timing: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def output(self) -> Path | None:
        return self.labels if isinstance(self.labels, Path) else None
