"""The plan of a segmentation job: checks, blocks, tile grids, intensity range, precision.

The plan's :func:`fingerprint` identifies everything that changes the output, so a store written
by the same job (on this machine or a cluster) is resumed and any other is refused.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import BatterySegError
from ._blocks import (
    Block,
    PassInput,
    default_block_shape,
    pass_input,
    plan_blocks,
    read_stack,
)
from ._config import AXES, SegmentConfig
from ._inputs import InputVolume
from ._models import PreparedModel
from ._predictor import choose_precision, get_predictor, resolve_device
from ._tiling import AxisGrid, plan_axis

__all__ = ["Plan", "fingerprint", "plan_job"]


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
            raise BatterySegError(
                f"{volume.name} is thinner than the model's context: it has {what}, but the model "
                f"{model.name} predicts each slice from {context} neighbouring slices. Use a "
                "model with a smaller context (1 = slice by slice) or another slicing axis."
            )
    multiple = card.architecture.multiple
    if config.tile % multiple:
        lower, upper = config.tile // multiple * multiple, -(-config.tile // multiple) * multiple
        hint = f"{lower} or {upper}" if lower else f"{upper}"
        raise BatterySegError(
            f"Tile size {config.tile} is not a multiple of {multiple}, which the model "
            f"{model.name} (depth {card.architecture.depth}) needs; use {hint}."
        )
    grids = {}
    for a in axes:
        b, c = (i for i in range(3) if i != a)
        grids[a] = tuple(plan_axis(shape[i], config.tile, config.overlap, multiple) for i in (b, c))
    block_shape = config.block_shape or default_block_shape(shape, axes[0], config.triplanar)
    blocks = plan_blocks(shape, block_shape)
    intensity = estimate_intensity_range(volume.data, card.normalization)
    plan = Plan(context, axes, grids, block_shape, blocks, intensity, "float32")  # type: ignore
    plan.precision = _precision(volume, config, model, plan)
    if not config.cluster_options.distributed:  # local tasks reuse the loaded network
        get_predictor(model.source, config.device, plan.precision, model.network)
    return plan


def _precision(volume: InputVolume, config: SegmentConfig, model: PreparedModel, plan: Plan) -> str:
    # an existing cluster's workers may have other hardware than this machine: no trial here
    if config.precision != "auto" or config.cluster_options.remote:
        return "float32" if config.precision == "auto" else config.precision
    block = plan.blocks[len(plan.blocks) // 2]

    def sample_tiles() -> np.ndarray:
        spec = plan.inputs(volume.data, block)[0]
        stack = read_stack(spec, plan.intensity, block)
        grid_y, grid_x = plan.grids[spec.axis]
        n = min(config.batch_size, stack.shape[0] - plan.context + 1)
        return np.stack(
            [stack[j : j + plan.context, : grid_y.tile, : grid_x.tile] for j in range(n)]
        )

    return choose_precision(
        "auto", resolve_device(config.device), model.source, sample_tiles, model.network
    )


def fingerprint(
    volume: InputVolume, config: SegmentConfig, model: PreparedModel, plan: Plan
) -> str:
    """Identity of input, model and every setting that changes the output (not speed knobs)."""
    payload = {
        "version": 1,
        "input": volume.identity(),
        "model": model.sha256,
        "phases": list(model.card.phases.names),
        "context": plan.context,
        "axes": list(plan.axes),
        "tile": config.tile,
        "overlap": config.overlap,
        "block_shape": list(plan.block_shape),
        "precision": plan.precision,
        "intensity": [plan.intensity.low, plan.intensity.high],
        "probabilities": config.probabilities,
        "uncertainty": config.uncertainty,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()
