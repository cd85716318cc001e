"""The analyse job: fractions, profiles, surfaces, connectivity, tortuosity and uncertainty.

Fractions, profiles, surface areas and connectivity stream through the volume slab by slab on
all cores (the fraction counting on a ``dask.distributed`` cluster when the configuration names
one). Through-connected masks, tortuosity, sizes and uncertainty need the analysed box in memory
(about 16 bytes per voxel, plus TauFactor's ~72 bytes per voxel on the CPU during a solve); the
memory and every tortuosity solve's time are checked before any work.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from ..cluster import open_session
from ..errors import BatterySegError
from ..jobs import Job, Progress, run_job
from ._cellmodel import check_cell_fractions, check_cell_request
from ._chunked_clusters import chunked_clusters_job
from ._config import AXES, AnalysisConfig
from ._connectivity import Clusters
from ._estimate import (
    _available_memory,
    check_limits,
    estimate_tortuosity,
    fitting_roi,
    resolve_device,
)
from ._fractions import count_phases_job, encoded_view
from ._masks import phase_mask
from ._metrics import bytes_per_voxel, metrics_job, metrics_stage_count, needs_volume
from ._result import AnalysisResult
from ._surface import surface_areas_job
from ._tortuosity import tortuosity_job
from ._uncertainty import check_probabilities, uncertainty_job

__all__ = ["analyse", "analyse_job"]

_IN_MEMORY_BYTES_PER_VOXEL = 16


class _Stages:
    """Maps the progress of successive sub-jobs onto one bar of ``count`` equal stages."""

    def __init__(self, count: int) -> None:
        self.count = max(count, 1)
        self.done = 0

    def run(self, job, label: str):
        while True:
            try:
                event = next(job)
            except StopIteration as stop:
                self.done += 1
                yield Progress(self.done * 1000, self.count * 1000, f"{label}: done")
                return stop.value
            step = self.done * 1000 + int(1000 * min(event.fraction, 1.0))
            yield Progress(step, self.count * 1000, f"{label}: {event.message}", event.data)


def _stage_count(config: AnalysisConfig, probabilities) -> int:
    count = 1 + int(config.surfaces) + int(config.connectivity or config.tortuosity)
    if config.tortuosity:
        count += len(config.transport_networks) * len(config.axes)
    return count + int(probabilities is not None) + metrics_stage_count(config)


def analyse_job(
    labels, config: AnalysisConfig | None = None, *, probabilities=None
) -> Job[AnalysisResult]:
    """Analyse a label volume; a generator yielding progress and returning the result.

    Parameters
    ----------
    labels : numpy, dask or zarr array (Z, Y, X), or a battery_seg.io.Volume
        Phase labels (values of ``config.phases``; 0 = unlabelled). On a cluster the workers
        read the chunks of a file-backed volume themselves.
    config : AnalysisConfig
        What to measure and how (the same object the CLI and the widget build); its
        ``cluster`` runs the chunked counting on a ``dask.distributed`` cluster, the rest runs
        here.
    probabilities : array (K, Z, Y, X), optional
        Per-phase probabilities (float in [0, 1] or uint8 with 255 = 1.0) for the uncertainty
        ranges at ``config.thresholds``.

    Examples
    --------
    >>> labels = np.ones((4, 4, 4), dtype=np.uint8)
    >>> labels[:, :, 2:] = 2
    >>> result = run_job(analyse_job(labels, AnalysisConfig("pore,solid", surfaces=False)))
    >>> result.volume_fractions
    {'pore': 0.5, 'solid': 0.5}
    """
    config = config or AnalysisConfig()
    start = time.perf_counter()
    source = None
    if hasattr(labels, "data") and hasattr(labels, "path") and hasattr(labels, "voxel_size"):
        labels, source = labels.data, labels.path  # a battery_seg.io.Volume
    phases, axes = config.phases, config.axis_indices
    encoded_lazy = encoded_view(labels, phases, config.roi)
    shape = tuple(int(s) for s in encoded_lazy.shape)
    clusters = config.connectivity or config.tortuosity or probabilities is not None
    in_memory = (
        config.tortuosity
        or needs_volume(config)
        or probabilities is not None
        or (clusters and config.keep_masks)
    )
    yield from _refuse_early(shape, config, in_memory)
    stages = _Stages(_stage_count(config, probabilities))
    profile_axes = axes if config.profiles else ()
    counts = yield from _count(labels, source, config, profile_axes, stages)
    if config.electrode is not None:
        check_cell_fractions(config.phases, counts.volume_fractions())  # before the solves
    result = AnalysisResult(config=config, shape=shape, counts=counts)
    if config.isotropic_default:
        result.notes.append("no voxel size in the metadata: assumed isotropic 1 voxel")
    if config.surfaces:
        result.surfaces = yield from stages.run(
            surface_areas_job(labels, phases, config.voxel_size, roi=config.roi), "surface areas"
        )
    through = {}
    if clusters:
        job = _connectivity_job(encoded_lazy, config, result)
        through = yield from stages.run(job, "connectivity")
    if in_memory:
        encoded = np.asarray(encoded_lazy.compute())
        if clusters and config.keep_masks:
            _keep_masks(encoded, config, result)
        yield from _in_memory_stages(encoded, labels, probabilities, result, through, stages)
    result.seconds = time.perf_counter() - start
    return result


def _refuse_early(shape: tuple[int, ...], config: AnalysisConfig, in_memory: bool):
    """Every refusal that needs no counting (the box, the cell model, each solve's estimate,
    the memory), before any work."""
    check_transport_box(shape, config)
    if config.electrode is not None:
        check_cell_request(config, shape, config.electrode)
    if config.tortuosity:
        yield from _tortuosity_estimates(shape, config)
    if in_memory:
        _check_memory(shape, config)  # before the counting, not after it


def _in_memory_stages(encoded, labels, probabilities, result: AnalysisResult, through, stages):
    """The solves, metrics and uncertainty, on the analysed box ``encoded`` in memory."""
    config = result.config
    if config.tortuosity:
        yield from _tortuosity_stages(encoded, config, result, through, stages)
    if needs_volume(config):
        result.metrics = yield from metrics_job(encoded, config, stages)
        result.notes.extend(result.metrics.notes)
    if probabilities is not None:
        data = check_probabilities(probabilities, config.phases, _full_shape(labels))
        box = () if not _is_box(config.roi) else tuple(slice(a, b) for a, b in config.roi)
        result.uncertainty = yield from stages.run(
            uncertainty_job(data, encoded, config, box), "uncertainty"
        )


def check_transport_box(shape: tuple[int, ...], config: AnalysisConfig) -> None:
    """A multi-phase transport solve needs two or more slices along its axis (checked before
    any work; TauFactor's multi-phase solver has no answer for one slice)."""
    solves = config.cbd_diffusivity is not None or config.conductivity is not None
    thin = [AXES[a] for a in config.axis_indices if shape[a] < 2]
    if solves and thin:
        raise BatterySegError(
            f"The analysed box ({' x '.join(map(str, shape))} voxels) is one voxel thick along "
            f"{', '.join(thin)}: no multi-phase transport (--cbd-diffusivity, --conductivity) "
            "through it can be solved. Analyse a thicker box or choose another --axis."
        )


def _count(labels, source, config: AnalysisConfig, axes: tuple[int, ...], stages: _Stages):
    """The chunked phase counts, on the cluster ``config`` names (if any).

    ``source`` is the file the labels are read from (the workers read it themselves)."""
    options = config.cluster
    if options.distributed and options.workers is not None:
        yield Progress(0, 0, f"Starting {options.workers} dask workers on this machine")
    with open_session(options) as cluster:
        if cluster is not None:
            yield Progress(0, 0, f"Counting phases on {cluster.where}")
            if source is not None:
                cluster.check_readable(source, "the label volume")
        job = count_phases_job(labels, config.phases, roi=config.roi, axes=axes, cluster=cluster)
        counts = yield from stages.run(job, "volume fractions")
    return counts


def _connectivity_job(encoded, config: AnalysisConfig, result: AnalysisResult):
    """Connectivity of every phase and multi-phase network, out of core; returns through
    fractions (``{name: {axis: fraction}}``)."""
    phases = config.phases
    identity = np.arange(len(phases) + 2, dtype=np.uint8)
    identity[-1] = 0  # values the phase set does not know: no phase
    networks = [n for n in config.transport_networks if n.phases != (n.name,)]
    tables = [identity] + [
        phase_mask(identity, phases, n.phases).astype(np.uint8) for n in networks
    ]
    found = yield from chunked_clusters_job(encoded, tables)
    targets = [(name, found[0], index) for index, name in enumerate(phases.names, start=1)]
    targets += [(n.name, clusters, 1) for n, clusters in zip(networks, found[1:], strict=True)]
    through: dict[str, dict[int, float]] = {}
    for name, clusters, value in targets:
        by_axis = {
            AXES[a]: clusters.connectivity(value, a, config.front_face) for a in config.axis_indices
        }
        result.connectivity[name] = by_axis
        through[name] = {a: by_axis[AXES[a]].through for a in config.axis_indices}
    return through


def _keep_masks(encoded: np.ndarray, config: AnalysisConfig, result: AnalysisResult) -> None:
    """The through-connected mask of every transport network (for display), in memory."""
    for network in config.transport_networks:
        clusters = Clusters(phase_mask(encoded, config.phases, network.phases))
        for axis in config.axis_indices:
            kept = clusters.keep(axis, front_face=config.front_face)
            result.masks[(network.name, AXES[axis])] = kept.astype(np.uint8)


def _tortuosity_estimates(shape: tuple[int, ...], config: AnalysisConfig):
    """Estimate every tortuosity solve before any work; refuse with a ``--roi`` that fits."""
    solver = config.solver
    device = resolve_device(solver.device)
    origin = [a for a, _ in config.roi] if _is_box(config.roi) else (0, 0, 0)
    for network in config.transport_networks:
        for axis in config.axis_indices:
            estimate = estimate_tortuosity(shape, axis, device)
            limits = {"max_seconds": solver.max_seconds}
            limits["max_memory_bytes"] = solver.max_memory_bytes
            check_limits(
                estimate,
                **limits,
                force=solver.force,
                what=f"{network.name} along {AXES[axis]}",
                region=fitting_roi(shape, axis, device, origin=origin, **limits),
            )
            text = f"tortuosity of {network.name} along {AXES[axis]}: {estimate.describe()}"
            yield Progress(0, 0, text, {"estimate": text})  # the CLI prints it on its own line


def _tortuosity_stages(
    encoded, config: AnalysisConfig, result: AnalysisResult, through, stages: _Stages
):
    """One TauFactor solve per transport network and axis, into ``result.tortuosity``."""
    unlabelled = int(result.counts.counts[0])
    if unlabelled:
        result.notes.append(
            f"{unlabelled} unlabelled voxels count as non-conducting in the tortuosity solves."
        )
    for network in config.transport_networks:
        mask = phase_mask(encoded, config.phases, network.phases)
        for axis in config.axis_indices:
            job = tortuosity_job(
                mask,
                axis,
                config.voxel_size,
                config.solver,
                name=network.name,
                through_fraction=through[network.name][axis],
            )
            solved = yield from stages.run(job, f"tortuosity {network.name}")
            result.tortuosity.setdefault(network.name, {})[AXES[axis]] = solved


def _check_memory(shape: tuple[int, ...], config: AnalysisConfig) -> None:
    per_voxel = bytes_per_voxel(config) if needs_volume(config) else _IN_MEMORY_BYTES_PER_VOXEL
    needed = int(np.prod(shape)) * per_voxel
    limit = config.max_memory_bytes
    limit = _available_memory() // 2 if limit is None else limit
    if needed > limit and not config.force:
        raise BatterySegError(
            f"Tortuosity, through-connected masks, sizes, representativity, uncertainty and "
            "multi-phase transport need "
            f"the analysed box ({shape[0]} x {shape[1]} x {shape[2]} voxels) in memory: about "
            f"{needed / 1e9:.1f} GB, above the limit of {limit / 1e9:.1f} GB. Analyse a region "
            "(--roi), switch those off for fractions, surfaces, coverage and connectivity only "
            "(they stream), "
            "or pass --force."
        )


def _is_box(roi: Any) -> bool:
    return roi is not None and len(roi) == 3 and all(len(r) == 2 for r in roi)


def _full_shape(labels) -> tuple[int, ...]:
    return tuple(int(s) for s in np.shape(labels))


def analyse(
    labels, config: AnalysisConfig | None = None, *, probabilities=None, on_progress=None
) -> AnalysisResult:
    """Run :func:`analyse_job` to completion (``on_progress`` receives each event).

    Examples
    --------
    >>> labels = np.zeros((6, 4, 4), dtype=np.uint8)
    >>> labels[:] = 2
    >>> labels[:, :, :2] = 1                          # pore channels through z
    >>> config = AnalysisConfig("pore,solid", tortuosity=True, device="cpu", surfaces=False)
    >>> result = analyse(labels, config)
    >>> round(result.tortuosity["pore"]["z"].tortuosity, 4)
    1.0
    """
    return run_job(analyse_job(labels, config, probabilities=probabilities), on_progress)
