"""The device-resident block pipeline: everything after reading runs where the network runs.

On a GPU the NumPy path of :mod:`._blocks` leaves the device idle while the CPU normalises,
stacks context slices, blends tiles and takes the argmax. Here the raw block goes to the device
once (from pinned memory, asynchronously), and normalisation, mirroring, context stacking, tile
cutting, Gaussian blending, the average over tri-planar passes, argmax, uncertainty and the
uint8 conversion all run there, in the same float32 operations in the same order as the NumPy
path, so the labels are the same (tested on the CPU). Only the uint8 results come back. Reading
the next block and writing the last one overlap the GPU's work through dask's other threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from ._block_spec import Block, BlockJob, PassInput, check_finite
from ._tiling import ArrayOps, blend_planes

if TYPE_CHECKING:
    import torch


__all__ = ["block_outputs_on_device"]


def block_outputs_on_device(
    job: BlockJob, block: Block, inputs: tuple[PassInput, ...], predictor: Any
) -> tuple[np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Labels 1..K, uint8 probabilities (if asked) and uncertainty of ``block`` (NumPy, host)."""
    import torch

    device = predictor.device
    total = torch.zeros((job.n_phases, *block.shape), dtype=torch.float32, device=device)
    for spec in inputs:
        stack = _read_stack(spec, job, block, device)
        view = total.movedim(spec.axis + 1, 1)  # (K, planes, in-plane 1, in-plane 2)
        for first, probabilities in _blend(stack, job, spec, predictor):
            view[:, first : first + probabilities.shape[0]] += probabilities.transpose(0, 1)
    total /= float(len(inputs))
    labels = (total.argmax(0) + 1).to(torch.uint8)
    uncertainty = None
    if job.uncertainty == "margin":
        uncertainty = _to_uint8(1.0 - total.max(0).values)
    elif job.uncertainty == "entropy":
        p = total.clamp(1e-12, 1.0)
        entropy = -(total * p.log()).sum(0)
        n = job.n_phases
        uncertainty = _to_uint8(entropy / np.float32(np.log(n)) if n > 1 else 0 * entropy)
    stored = _to_uint8(total) if job.probabilities else None
    return tuple(None if a is None else a.cpu().numpy() for a in (labels, stored, uncertainty))


def _to_uint8(values: torch.Tensor) -> torch.Tensor:
    import torch

    return torch.round(values.clamp(0.0, 1.0) * 255.0).to(torch.uint8)


def _read_stack(spec: PassInput, job: BlockJob, block: Block, device: Any) -> torch.Tensor:
    """The normalised ``(planes + context - 1, H, W)`` float32 stack of one pass, on the device."""
    import torch
    import torch.nn.functional as F

    raw = spec.region.read()
    check_finite(raw, block)
    host = torch.from_numpy(np.ascontiguousarray(_torch_dtype(raw)))
    if device.type == "cuda":
        host = host.pin_memory()
    x = host.to(device, non_blocking=True).movedim(spec.axis, 0)
    index = torch.from_numpy(spec.plane_index).to(device)
    x = x.index_select(0, index).to(torch.float32)
    x -= np.float32(job.intensity.low)
    x *= np.float32(1.0 / (job.intensity.high - job.intensity.low))
    if any(spec.pad):
        x = F.pad(x[None], (0, spec.pad[1], 0, spec.pad[0]), mode="reflect")[0]
    return x


def _torch_dtype(raw: np.ndarray) -> np.ndarray:
    """Unsigned types torch cannot index fully (uint16, uint32) travel as a wider signed type."""
    if raw.dtype in (np.uint16, np.uint32):
        return raw.astype(np.int32 if raw.dtype == np.uint16 else np.int64)
    return raw


def _blend(stack: torch.Tensor, job: BlockJob, spec: PassInput, predictor: Any):
    """:func:`._tiling.blend_planes` with torch operations on the stack's device."""
    import torch

    ops = ArrayOps(
        zeros=lambda shape, like: like.new_zeros(shape),
        stack=torch.stack,
        concatenate=torch.cat,
        from_numpy=lambda array, like: torch.from_numpy(np.array(array)).to(like.device),
    )
    return blend_planes(
        stack,
        job.context,
        job.grids[spec.axis],
        spec.window,
        predictor.forward,
        job.n_phases,
        job.batch_size,
        ops=ops,
    )
