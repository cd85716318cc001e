"""Blocks of the output volume and the work of one block (one dask task).

A block is a box of the output ``(Z, Y, X)`` volume; blocks are also the chunks of an output
store, so process workers can write them concurrently. For every slicing axis (one, or three for
tri-planar) a block reads its input with a halo:

* along the slicing axis, ``context // 2`` extra planes on each side; at the ends of the volume
  the missing planes are mirrored (``reflect``: plane -1 is plane 1, plane Z is plane Z - 2);
* in-plane, the union of the tiles of the global tile grid that touch the block (see
  :mod:`._tiling`), so the block's values equal a single pass over the whole volume.

A task carries only small things: the block, a :class:`VolumeRegion` (the box of the input it
reads, loaded when the task runs), and a :class:`BlockJob` that names the model by path and hash.
"""

from __future__ import annotations

import math
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ._block_spec import Block, BlockJob, PassInput, VolumeRegion, check_finite
from ._device import block_outputs_on_device
from ._predictor import get_predictor
from ._tiling import AxisGrid, blend_planes

if TYPE_CHECKING:
    from ..model.normalization import IntensityRange

__all__ = [
    "Block",
    "BlockJob",
    "BlockResult",
    "BlockTask",
    "PassInput",
    "plan_blocks",
    "run_block",
]

_BLOCK_VOXELS = 4 * 2**20
_MAX_PLANE_SIDE = 2048
_CANCELLED: set[str] = set()
_CANCEL_LOCK = threading.Lock()


def default_block_shape(
    shape: tuple[int, int, int], axis: int, triplanar: bool
) -> tuple[int, int, int]:
    """Blocks of whole planes (up to 2048 x 2048), 2 to 16 of them, about 4 Mi voxels.

    Whole planes mean no tile is computed twice at block borders; only planes larger than
    2048 x 2048 are split in-plane. Tri-planar blocks are cubes of up to 256 (whole axes up to
    384), since every axis is an in-plane axis of one pass.
    """
    if triplanar:
        return tuple(n if n <= 384 else 256 for n in shape)  # type: ignore[return-value]
    sides = [n if n <= _MAX_PLANE_SIDE else _MAX_PLANE_SIDE // 2 for n in shape]
    area = math.prod(s for i, s in enumerate(sides) if i != axis)
    sides[axis] = int(min(shape[axis], 16, max(2, _BLOCK_VOXELS // area)))
    return tuple(sides)  # type: ignore[return-value]


def plan_blocks(shape: tuple[int, ...], block_shape: tuple[int, ...]) -> list[Block]:
    """All blocks of ``shape`` in C order (the last one along each axis may be smaller)."""
    counts = [math.ceil(n / b) for n, b in zip(shape, block_shape, strict=True)]
    blocks = []
    for index in np.ndindex(*counts):
        box = tuple(
            slice(i * b, min((i + 1) * b, n))
            for i, b, n in zip(index, block_shape, shape, strict=True)
        )
        blocks.append(Block(tuple(int(i) for i in index), box))  # type: ignore[arg-type]
    return blocks


def pass_input(
    volume: Any, block: Block, axis: int, context: int, grids: tuple[AxisGrid, AxisGrid]
) -> PassInput:
    """Input of the ``axis`` pass over ``block``: mirrored plane halo, tile window in-plane."""
    n_planes = volume.shape[axis]
    half = context // 2
    first, stop = block.box[axis].start, block.box[axis].stop
    planes = np.arange(first - half, stop + half)
    planes = np.abs(planes)  # mirror below 0
    planes = np.where(planes >= n_planes, 2 * (n_planes - 1) - planes, planes)  # and above
    box: list[slice] = [slice(0)] * 3
    box[axis] = slice(int(planes.min()), int(planes.max()) + 1)
    in_plane = [a for a in range(3) if a != axis]
    pad, window = [], []
    for a, grid in zip(in_plane, grids, strict=True):
        lo, hi = block.box[a].start, block.box[a].stop
        _, u0, u1 = grid.window(lo, hi)
        box[a] = slice(u0, min(u1, grid.length))
        pad.append(u1 - box[a].stop)
        window.append((lo, hi))
    return PassInput(
        axis,
        VolumeRegion(volume, tuple(box)),
        planes - box[axis].start,
        (pad[0], pad[1]),
        (window[0], window[1]),
    )


@dataclass
class BlockResult:
    """Outcome of one block; arrays are ``None`` when they went into the store."""

    key: str
    box: tuple[slice, slice, slice]
    labels: np.ndarray | None = None
    probabilities: np.ndarray | None = None
    uncertainty: np.ndarray | None = None
    seconds: float = 0.0
    skipped: bool = False


def set_cancelled(job_id: str, cancelled: bool) -> None:
    """Mark ``job_id`` cancelled (its blocks that have not started return at once) or not."""
    with _CANCEL_LOCK:
        (_CANCELLED.add if cancelled else _CANCELLED.discard)(job_id)


def read_stack(spec: PassInput, intensity: IntensityRange, block: Block) -> np.ndarray:
    """Normalised ``(planes + context - 1, H, W)`` float32 input of one pass over ``block``."""
    from ..model.normalization import normalize  # (the model package imports torch)

    raw = spec.region.read()
    check_finite(raw, block)
    stack = normalize(np.moveaxis(raw, spec.axis, 0)[spec.plane_index], intensity)
    if any(spec.pad):
        stack = np.pad(stack, ((0, 0), (0, spec.pad[0]), (0, spec.pad[1])), mode="reflect")
    return stack


def block_probabilities(job: BlockJob, block: Block, inputs: tuple[PassInput, ...]) -> np.ndarray:
    """Per-phase probabilities ``(K, z, y, x)`` of ``block``, averaged over the passes."""
    predictor = get_predictor(job.model, job.device, job.precision, backend=job.backend)
    total = np.zeros((job.n_phases, *block.shape), np.float32)
    for spec in inputs:
        stack = read_stack(spec, job.intensity, block)
        view = np.moveaxis(total, spec.axis + 1, 1)  # (K, planes, in-plane 1, in-plane 2)
        groups = blend_planes(
            stack,
            job.context,
            job.grids[spec.axis],
            spec.window,
            predictor,
            job.n_phases,
            job.batch_size,
        )
        for first, probabilities in groups:
            view[:, first : first + probabilities.shape[0]] += probabilities.transpose(1, 0, 2, 3)
    total /= np.float32(len(inputs))
    return total


def summarize(probabilities: np.ndarray, uncertainty: str) -> tuple[np.ndarray, np.ndarray | None]:
    """Labels 1..K (uint8) and the uncertainty (uint8, 255 = most uncertain) of probabilities."""
    labels = probabilities.argmax(axis=0).astype(np.uint8) + np.uint8(1)
    if uncertainty == "none":
        return labels, None
    if uncertainty == "margin":
        value = 1.0 - probabilities.max(axis=0)
    else:
        n_phases = probabilities.shape[0]
        p = np.clip(probabilities, 1e-12, 1.0)
        entropy = -(probabilities * np.log(p)).sum(axis=0)
        value = entropy / np.float32(np.log(n_phases)) if n_phases > 1 else 0 * entropy
    return labels, to_uint8(value)


def to_uint8(values: np.ndarray) -> np.ndarray:
    return np.rint(np.clip(values, 0.0, 1.0) * 255.0).astype(np.uint8)


def _on_device(predictor: Any) -> bool:
    """Whether a block runs the device-resident pipeline (:mod:`._device`): on a GPU."""
    return predictor.device.type == "cuda"


class BlockTask:
    """The argument of one dask task (a plain object, so dask does not traverse it)."""

    __slots__ = ("block", "inputs", "job")

    def __init__(self, job: BlockJob, block: Block, inputs: tuple[PassInput, ...]) -> None:
        self.job, self.block, self.inputs = job, block, inputs

    def __getstate__(self) -> tuple:
        return self.job, self.block, self.inputs

    def __setstate__(self, state: tuple) -> None:
        self.job, self.block, self.inputs = state


def run_block(task: BlockTask) -> BlockResult:
    """Segment one block (the body of a dask task); write it to the store if the job has one."""
    job, block, inputs = task.job, task.block, task.inputs
    if job.job_id in _CANCELLED:
        return BlockResult(block.key, block.box, skipped=True)
    start = time.perf_counter()
    predictor = get_predictor(job.model, job.device, job.precision, backend=job.backend)
    if _on_device(predictor):  # normalise, blend, argmax where the network runs
        labels, stored, uncertainty = block_outputs_on_device(job, block, inputs, predictor)
    else:
        probabilities = block_probabilities(job, block, inputs)
        labels, uncertainty = summarize(probabilities, job.uncertainty)
        stored = to_uint8(probabilities) if job.probabilities else None
    seconds = time.perf_counter() - start
    if job.store is None:
        return BlockResult(block.key, block.box, labels, stored, uncertainty, seconds)
    job.store.array[block.box] = labels
    if stored is not None:
        job.store.extra("probabilities")[(slice(None), *block.box)] = stored
    if uncertainty is not None:
        job.store.extra("uncertainty")[block.box] = uncertainty
    job.store.mark_done(block.key)
    return BlockResult(block.key, block.box, seconds=seconds)
