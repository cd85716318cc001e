"""Uncertainty from per-phase probabilities: every number again at a low and a high threshold.

Segmentation choices move tortuosity by up to a factor of two. Given the probabilities the
segmentation wrote (array (K, Z, Y, X), float in [0, 1] or uint8 with 255 = 1.0), phase k's mask
at threshold t is ``p_k >= t`` (a network's: the sum of its phases' probabilities ``>= t``),
restricted to labelled voxels. The low threshold gives the generous mask, the high one the strict
mask; each number is reported at both and as a ``range`` [min, max].
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from ..errors import BatterySegError
from ..jobs import Job, Progress, run_job
from ..phases import PhaseSet
from ._config import AXES, AnalysisConfig
from ._connectivity import Clusters
from ._fractions import as_dask
from ._surface import surface_areas_job
from ._tortuosity import tortuosity_job

__all__ = ["check_probabilities", "probability_mask", "uncertainty_job"]


def check_probabilities(probabilities, phases: PhaseSet, shape: Sequence[int]):
    """Dask view of ``probabilities`` after checking its shape against phases and labels."""
    data = as_dask(probabilities, chunks=None) if probabilities is not None else None
    expected = (len(phases), *shape)
    if data is None or tuple(data.shape) != expected:
        got = None if data is None else tuple(data.shape)
        raise BatterySegError(
            f"Probabilities must have shape (phases, Z, Y, X) = {expected} for the phases "
            f"{', '.join(phases.names)}, got {got}; pass the probabilities written by the same "
            "segmentation as the labels."
        )
    if data.dtype.kind != "f" and data.dtype != np.uint8:
        raise BatterySegError(
            f"Probabilities must be float in [0, 1] or uint8 (255 = 1.0), got {data.dtype}."
        )
    return data


def probability_mask(
    probabilities, members: Sequence[int], threshold: float, box: tuple[slice, ...] = ()
) -> np.ndarray:
    """``sum(p_k for k in members) >= threshold`` in memory (members are 0-based phase rows)."""
    total = None
    for k in members:
        layer = np.asarray(probabilities[(k, *box)])
        if layer.dtype.kind == "f" and not ((layer >= 0) & (layer <= 1)).all():  # NaN too
            raise BatterySegError(
                f"The probabilities of phase row {k} hold NaN or values outside [0, 1]; pass "
                "the probabilities 'battery-seg segment --probabilities' wrote with the labels."
            )
        if layer.dtype == np.uint8:
            layer = layer.astype(np.uint16)
        total = layer if total is None else total + layer
    if probabilities.dtype == np.uint8:
        return total >= math.ceil(threshold * 255 - 1e-9)
    return total >= threshold


def _spread(low: float, high: float) -> dict[str, Any]:
    values = [v for v in (low, high) if not math.isnan(v)]
    rng = [min(values), max(values)] if values else [math.nan, math.nan]
    return {"low_threshold": low, "high_threshold": high, "range": rng}


def _measure(
    mask: np.ndarray,
    config: AnalysisConfig,
    labelled: int,
    *,
    surfaces: bool,
    tortuosity: bool,
    name: str,
):
    """Numbers of one mask at one threshold: generator yielding progress, returning a dict."""
    numbers: dict[str, Any] = {
        "volume_fraction": float(mask.sum()) / labelled if labelled else math.nan
    }
    if config.connectivity or tortuosity:
        clusters = Clusters(mask)
        numbers["through_fraction"] = {
            AXES[a]: clusters.connectivity(a, config.front_face).through
            for a in config.axis_indices
        }
    if surfaces:
        areas = yield from surface_areas_job(
            mask.astype(np.uint8), PhaseSet.from_names([name]), config.voxel_size, pairs=False
        )
        numbers["specific_surface_area"] = areas.specific(name)
    if tortuosity:
        numbers["tortuosity"] = {}
        for a in config.axis_indices:
            result = yield from tortuosity_job(mask, a, config.voxel_size, config.solver, name=name)
            numbers["tortuosity"][AXES[a]] = result.tortuosity
    return numbers


def uncertainty_job(
    probabilities, encoded: np.ndarray, config: AnalysisConfig, box: tuple[slice, ...] = ()
) -> Job[dict[str, Any]]:
    """Numbers at the low and high probability thresholds for every phase and network.

    ``encoded`` are the in-memory phase indices of the analysed box (0 = unlabelled), ``box``
    the slices of that box in the full volume.
    """
    phases = config.phases
    labelled_voxels = encoded != 0
    labelled = int(labelled_voxels.sum())
    targets = [(n, (n,), "phases") for n in phases.names]
    if config.tortuosity:
        for network in config.transport_networks:
            if network.phases != (network.name,):
                targets.append((network.name, network.phases, "networks"))
    solved = {n.name for n in config.transport_networks} if config.tortuosity else set()
    at: dict[float, dict[str, dict[str, Any]]] = {}
    total = 2 * len(targets)
    step = 0
    for threshold in config.thresholds:
        at[threshold] = {}
        for name, members, _ in targets:
            rows = [phases.value_of(m) - 1 for m in members]
            mask = probability_mask(probabilities, rows, threshold, box) & labelled_voxels
            job = _measure(
                mask,
                config,
                labelled,
                surfaces=config.surfaces and len(rows) == 1,
                tortuosity=name in solved,
                name=name,
            )
            at[threshold][name] = yield from _relabel(
                job, step, total, f"uncertainty p>={threshold:g} {name}"
            )
            step += 1
    low, high = config.thresholds
    report: dict[str, Any] = {
        "thresholds": [low, high],
        "definition": __doc__.split("\n\n")[1].replace("\n", " "),
        "phases": {},
        "networks": {},
    }
    for name, _, group in targets:
        report[group][name] = _combine(at[low][name], at[high][name])
    return report


def _combine(low: dict[str, Any], high: dict[str, Any]) -> dict[str, Any]:
    combined: dict[str, Any] = {}
    for key, value in low.items():
        if isinstance(value, dict):
            combined[key] = {axis: _spread(v, high[key][axis]) for axis, v in value.items()}
        else:
            combined[key] = _spread(value, high[key])
    return combined


def _relabel(job, step: int, total: int, label: str):
    """Run a sub-job, mapping its progress into ``step`` of ``total``; return its value."""
    while True:
        try:
            event = next(job)
        except StopIteration as stop:
            return stop.value
        yield Progress(
            step * 1000 + int(1000 * min(event.fraction, 1.0)),
            total * 1000,
            f"{label}: {event.message}",
            event.data,
        )


def uncertainty(probabilities, labels_encoded: np.ndarray, config: AnalysisConfig) -> dict:
    """Drain :func:`uncertainty_job` (for scripts and tests)."""
    data = check_probabilities(probabilities, config.phases, labels_encoded.shape)
    return run_job(uncertainty_job(data, labels_encoded, config))
