"""The plan of a segmentation job: checks, blocks, tile grids, intensity range, precision.

The plan's :func:`fingerprint` identifies everything that changes the output, so a store written
by the same job (on this machine or a cluster) is resumed and any other is refused.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._bundled import flat_for
from ..checks import check_memory, network_bytes
from ..errors import BatterySegError
from ._blocks import (
    Block,
    PassInput,
    default_block_shape,
    pass_input,
    plan_blocks,
    read_stack,
)
from ._choices import auto_batch_size, choose_backend, choose_precision
from ._config import AXES, SegmentConfig
from ._inputs import InputVolume
from ._models import PreparedModel
from ._predictor import get_predictor, resolve_device
from ._tiling import AxisGrid, plan_axis, plan_axis_auto

__all__ = ["Plan", "fingerprint", "plan_job"]

MAX_BLOCKS = 100_000  # planning and dispatching more takes minutes before any work


@dataclass
class Plan:
    """What a job computes: passes, tile grids, blocks, intensity range and precision."""

    context: int
    axes: tuple[int, ...]
    grids: dict[int, tuple[AxisGrid, AxisGrid]]
    block_shape: tuple[int, int, int]
    blocks: list[Block]
    intensity: Any
    precision: str
    backend: str = "torch"
    batch_size: int = 4

    def inputs(self, volume: Any, block: Block) -> tuple[PassInput, ...]:
        return tuple(pass_input(volume, block, a, self.context, self.grids[a]) for a in self.axes)


def plan_job(volume: InputVolume, config: SegmentConfig, model: PreparedModel) -> Plan:
    """Check the request against the model and the volume; blocks, tile grids, intensity."""
    from ..model import estimate_intensity_range

    card = model.card
    context = card.context
    if config.context is not None and config.context != context:
        raise BatterySegError(
            f"The model {model.name} was trained with a context of {context} slices, not "
            f"{config.context}; leave the context empty (it is read from the model) or use a "
            f"model trained with context {config.context}."
        )
    axes = (0, 1, 2) if config.triplanar else (config.axis_index,)
    shape = volume.shape
    for a in axes:
        if shape[a] < context:
            what = f"only {shape[a]} slices along {AXES[a]}"
            if volume.was_2d:
                what = "a single 2D image"
            flat = flat_for(config.model)
            raise BatterySegError(
                f"{volume.name} is thinner than the model's context: it has {what}, but the model "
                f"{model.name} predicts each slice from {context} neighbouring slices. Use "
                f"the bundled model '{flat}' (--model {flat}, one slice at a time), "
                "another model with a smaller context, or another slicing axis."
            )
    multiple = card.architecture.multiple
    if config.tile is not None and config.tile % multiple:
        lower, upper = config.tile // multiple * multiple, -(-config.tile // multiple) * multiple
        hint = f"{lower} or {upper}" if lower else f"{upper}"
        raise BatterySegError(
            f"Tile size {config.tile} is not a multiple of {multiple}, which the model "
            f"{model.name} (depth {card.architecture.depth}) needs; use {hint}."
        )
    _check_tile(volume, config, model, axes)
    grids = {}
    for a in axes:
        b, c = (i for i in range(3) if i != a)
        grids[a] = tuple(
            plan_axis_auto(shape[i], multiple)
            if config.tile is None
            else plan_axis(shape[i], config.tile, config.overlap, multiple)
            for i in (b, c)
        )
    block_shape = config.block_shape or default_block_shape(shape, axes[0], config.triplanar)
    block_shape = tuple(min(b, n) for b, n in zip(block_shape, shape, strict=True))
    if config.block_shape is not None:  # the default shape scales with the volume
        _check_blocks(shape, block_shape)
    _check_memory(volume, config, model, grids, block_shape)
    blocks = plan_blocks(shape, block_shape)
    intensity = estimate_intensity_range(volume.data, card.normalization)
    plan = Plan(context, axes, grids, block_shape, blocks, intensity, "float32")  # type: ignore
    # an existing cluster's workers may have other hardware than this machine: no trials here
    local = not config.cluster.remote
    device = resolve_device(config.device) if local else config.device
    sample = _SampleTiles(volume, plan)
    if config.precision != "auto" or not local:
        plan.precision = "float32" if config.precision == "auto" else config.precision
    else:
        plan.precision = choose_precision("auto", device, model.source, sample, model.network)
    if config.backend != "auto" or local:
        plan.backend = choose_backend(
            config.backend,
            device,
            plan.precision,
            model.source,
            sample,
            model.network,
            voxels=int(np.prod(shape)) * len(axes),
        )
    plan.batch_size = config.batch_size or auto_batch_size(
        device, grids[axes[0]], card.architecture, plan.precision
    )
    if not config.cluster.distributed:  # local tasks reuse the loaded network
        get_predictor(model.source, device, plan.precision, model.network, plan.backend)
    return plan


def _check_tile(
    volume: InputVolume, config: SegmentConfig, model: PreparedModel, axes: tuple[int, ...]
) -> None:
    """Refuse tiles smaller than the network's field of view needs (where they would be used:
    an in-plane axis longer than the tile)."""
    if config.tile is None:
        return  # chosen from the volume: whole planes up to a limit, never below the minimum
    smallest = model.card.architecture.smallest_tile
    in_plane = {volume.shape[i] for a in axes for i in range(3) if i != a}
    if config.tile < smallest and max(in_plane) > config.tile:
        raise BatterySegError(
            f"Tile size {config.tile} is too small for the model {model.name}: its field of view "
            f"(radius {model.card.architecture.receptive_radius} px) needs tiles of at least "
            f"{smallest} px, or the segmentation loses accuracy. Use a tile of {smallest} or "
            "more, or leave the tile empty to have one chosen."
        )


def _block_count(shape: tuple[int, ...], block_shape: tuple[int, ...]) -> int:
    return math.prod(math.ceil(n / b) for n, b in zip(shape, block_shape, strict=True))


def _check_blocks(shape: tuple[int, ...], block_shape: tuple[int, ...]) -> None:
    count = _block_count(shape, block_shape)
    if count > MAX_BLOCKS:
        raise BatterySegError(
            f"Blocks of {block_shape} voxels cut the volume {shape} into {count:,} blocks; at "
            f"most {MAX_BLOCKS:,} are supported. Use larger blocks (--block Z Y X), or leave "
            "the block shape empty to have one chosen from the volume."
        )


def _check_memory(
    volume: InputVolume,
    config: SegmentConfig,
    model: PreparedModel,
    grids: dict[int, tuple[AxisGrid, AxisGrid]],
    block_shape: tuple[int, ...],
) -> None:
    """What the blocks running at once here need: their input stack with halos, the per-phase
    probabilities and one batch of tiles through the network (lower bounds)."""
    if config.cluster.distributed:
        return  # the workers' memory, not this machine's (each worker has its own limit)
    card = model.card
    per_block = 0
    for axis, (grid_y, grid_x) in grids.items():
        in_plane = [i for i in range(3) if i != axis]
        window = math.prod(
            min(grid.padded_length, block_shape[i] + 2 * grid.tile)
            for i, grid in zip(in_plane, (grid_y, grid_x), strict=True)
        )
        planes = block_shape[axis] + card.context - 1
        network = network_bytes(
            card.architecture.base_channels,
            grid_y.tile,
            grid_x.tile,
            config.batch_size or 1,  # chosen later from free memory; at least one tile
            card.context,
            training=False,
        )
        per_block = max(per_block, 4 * planes * window + network)
    per_block += 4 * len(card.phases) * math.prod(block_shape)
    running = min(
        _block_count(volume.shape, block_shape), config.cluster.workers or os.cpu_count() or 1
    )
    check_memory(
        per_block * running,
        f"segmenting {running} block{'s' * (running > 1)} of {block_shape} voxels at once",
        "Use smaller blocks (--block), tiles (--tile) or batches (--batch).",
    )


class _SampleTiles:
    """A few tiles from the middle block of the volume, for the precision and backend trials."""

    def __init__(self, volume: InputVolume, plan: Plan) -> None:
        self.volume, self.plan = volume, plan
        self.tiles: np.ndarray | None = None

    def __call__(self) -> np.ndarray:
        if self.tiles is None:
            plan = self.plan
            block = plan.blocks[len(plan.blocks) // 2]
            spec = plan.inputs(self.volume.data, block)[0]
            stack = read_stack(spec, plan.intensity, block)
            size = [min(g.tile, 256) for g in plan.grids[spec.axis]]  # 64 k labels to judge
            self.tiles = stack[None, : plan.context, : size[0], : size[1]]
        return self.tiles


def fingerprint(
    volume: InputVolume, config: SegmentConfig, model: PreparedModel, plan: Plan
) -> str:
    """Identity of input, model and every setting that changes the output (not speed knobs)."""
    payload = {
        "version": 2,
        "input": volume.identity(),
        "voxel_size": [*volume.voxel_size, volume.unit],
        "model": model.sha256,
        "phases": list(model.card.phases.names),
        "context": plan.context,
        "axes": list(plan.axes),
        "tiles": [[(g.tile, *g.starts) for g in plan.grids[a]] for a in plan.axes],
        "block_shape": list(plan.block_shape),
        "precision": plan.precision,
        "intensity": [plan.intensity.low, plan.intensity.high],
        "probabilities": config.probabilities,
        "uncertainty": config.uncertainty,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
