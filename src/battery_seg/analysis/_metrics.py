"""Metrics for cell models: sizes, particles, representativity, multi-phase transport.

:func:`metrics_job` runs what an :class:`AnalysisConfig` asks for on the in-memory phase-index
volume and fills :class:`Metrics`; :func:`phase_entry`, :func:`extra_dict` and :func:`csv_extra`
put the numbers into the result's JSON and CSV under the names the README documents
(``phases.NAME.size_distribution.d50_um``, ``phases.NAME.particles.count``,
``phases.NAME.volume_fraction_ci95``, ``surface_coverage.NAME.OTHER``, ``transport``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..jobs import Progress
from ._config import AXES, AnalysisConfig
from ._coverage import active_area_density, surface_coverage
from ._particles import ParticleStats, particles_job
from ._representativity import Representativity, representativity
from ._roles import cbd_phases, pore_phases
from ._sizes import SizeDistribution, distribution_of, local_thickness_job
from ._transport import MultiphaseResult, multiphase_tortuosity_job

__all__ = [
    "CSV_EXTRA",
    "Metrics",
    "bytes_per_voxel",
    "metrics_job",
    "metrics_stage_count",
    "needs_volume",
]

ELECTROLYTE = "electrolyte_porous_cbd"
ELECTRONIC = "electronic"
BYTES_PER_VOXEL = 40  # local thickness, watershed labels and smoothed distance transform
_SOLVER_BYTES_PER_VOXEL = 120  # TauFactor's multiphase solver: six neighbour weights and more
CSV_EXTRA = (
    "size_distribution.d10_um",
    "size_distribution.d50_um",
    "size_distribution.d90_um",
    "particles.count",
    "particles.d50_um",
    "particles.sphericity_mean",
    "volume_fraction_ci95_low",
    "volume_fraction_ci95_high",
    "edge_for_one_percent_um",
)


@dataclass
class Metrics:
    """Per-phase size distributions, particles and representativity; multi-phase transport."""

    sizes: dict[str, SizeDistribution] = field(default_factory=dict)
    particles: dict[str, ParticleStats] = field(default_factory=dict)
    representativity: dict[str, Representativity] = field(default_factory=dict)
    transport: dict[str, dict[str, MultiphaseResult]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    unmeasured: dict[str, str] = field(default_factory=dict)  # phase -> why it has no sizes


def needs_volume(config: AnalysisConfig) -> bool:
    """Whether the configuration asks for a metric that needs the labels in memory."""
    return bool(
        config.size_distribution
        or config.representativity
        or config.cbd_diffusivity is not None
        or config.conductivity is not None
    )


def bytes_per_voxel(config: AnalysisConfig) -> int:
    """Memory the in-memory metrics of ``config`` need per analysed voxel (an upper bound)."""
    return _SOLVER_BYTES_PER_VOXEL if _transport_targets(config) else BYTES_PER_VOXEL


def _transport_targets(config: AnalysisConfig) -> dict[str, dict[str, float]]:
    targets = {}
    if config.cbd_diffusivity is not None:
        values = dict.fromkeys(pore_phases(config.phases), 1.0)
        values.update(dict.fromkeys(cbd_phases(config.phases), config.cbd_diffusivity))
        targets[ELECTROLYTE] = values
    if config.conductivity is not None:
        targets[ELECTRONIC] = dict(config.conductivity)
    return targets


def metrics_stage_count(config: AnalysisConfig) -> int:
    count = len(config.phases) * (2 * int(config.size_distribution))
    count += int(config.representativity)
    return count + len(_transport_targets(config)) * len(config.axes)


def metrics_job(encoded: np.ndarray, config: AnalysisConfig, stages):
    """Run the configured metrics on ``encoded`` (phase indices 1..K); returns :class:`Metrics`.

    ``stages`` maps each sub-job's progress onto the analysis' bar (``stages.run``).
    """
    metrics = Metrics()
    names = config.phases.names
    voxel_size, volume = config.voxel_size, float(np.prod(config.voxel_size))
    if config.size_distribution:
        for index, name in enumerate(names, start=1):
            mask = encoded == index
            why = _unmeasurable(mask)
            if why:
                metrics.unmeasured[name] = why
                metrics.notes.append(f"no size distribution or particles of {name}: {why}")
                yield from stages.run(_skipped(), f"size distribution of {name}")
                yield from stages.run(_skipped(), f"particles of {name}")
                continue
            job = local_thickness_job(mask, voxel_size, name=name)
            thickness = yield from stages.run(job, f"size distribution of {name}")
            metrics.sizes[name] = distribution_of(thickness, mask, volume)
            del thickness
            job = particles_job(mask, voxel_size, name=name)
            metrics.particles[name] = yield from stages.run(job, f"particles of {name}")
    if config.representativity:
        job = _representativity_job(encoded, names, voxel_size)
        metrics.representativity = yield from stages.run(job, "representativity")
        short = [n for n, r in metrics.representativity.items() if not r.levelled_off]
        if short:
            metrics.notes.append(
                f"representativity: the two-point correlation of {', '.join(short)} does not "
                "level off inside the volume (features as large as the volume); its 95 % "
                "interval is a lower bound of the uncertainty: image a larger volume."
            )
    for key, values in _transport_targets(config).items():
        conductivities = {names.index(n) + 1: v for n, v in values.items()}
        for axis in config.axis_indices:
            job = multiphase_tortuosity_job(
                encoded,
                conductivities,
                axis,
                voxel_size,
                config.solver,
                names={names.index(n) + 1: n for n in values},
                name=key,
            )
            solved = yield from stages.run(job, key.replace("_", " "))
            metrics.transport.setdefault(key, {})[AXES[axis]] = solved
    return metrics


def _unmeasurable(mask: np.ndarray) -> str:
    """Why a phase has no sizes (absent, or filling the box so no boundary bounds them)."""
    if not mask.any():
        return "the phase is absent from the analysed box"
    if mask.all():
        return "the phase fills the whole analysed box, so its sizes exceed the box"
    return ""


def _skipped():
    yield Progress(1, 1, "skipped")
    return None


def _representativity_job(encoded: np.ndarray, names, voxel_size):
    found = {}
    for index, name in enumerate(names, start=1):
        found[name] = representativity(encoded == index, voxel_size)
        length = found[name].integral_range
        yield Progress(index, len(names), f"{name}: integral range {length:.3g} voxels")
    return found


def phase_entry(metrics: Metrics | None, name: str) -> dict[str, Any]:
    """The JSON entries of phase ``name``: size distribution, particles, 95 % interval."""
    if metrics is None:
        return {}
    entry: dict[str, Any] = {}
    if name in metrics.unmeasured:
        entry.update(size_distribution=None, particles=None)
    if name in metrics.sizes:
        entry["size_distribution"] = metrics.sizes[name].to_dict()
    if name in metrics.particles:
        entry["particles"] = metrics.particles[name].to_dict()
    if name in metrics.representativity:
        found = metrics.representativity[name].to_dict()
        entry["volume_fraction_ci95"] = found.pop("volume_fraction_ci95")
        found.pop("volume_fraction")
        entry["representativity"] = found
    return entry


def extra_dict(metrics: Metrics | None, surfaces, phases) -> dict[str, Any]:
    """Top-level JSON entries: ``surface_coverage``, ``active_area_density``, ``transport``."""
    extra: dict[str, Any] = {}
    if surfaces is not None:
        extra["surface_coverage"] = surface_coverage(surfaces, phases)
        extra["active_area_density"] = active_area_density(surfaces, phases)
    if metrics is not None and metrics.transport:
        extra["transport"] = {
            key: {axis: r.to_dict() for axis, r in by_axis.items()}
            for key, by_axis in metrics.transport.items()
        }
    return extra


def csv_extra(entry: dict[str, Any], coverage: dict[str, float] | None) -> dict[str, Any]:
    """The extra CSV cells of one phase row (see :data:`CSV_EXTRA`)."""
    cells: dict[str, Any] = {}
    for group in ("size_distribution", "particles"):
        for key, value in (entry.get(group) or {}).items():
            if f"{group}.{key}" in CSV_EXTRA:
                cells[f"{group}.{key}"] = value
    if "volume_fraction_ci95" in entry:
        low, high = entry["volume_fraction_ci95"]
        cells.update(volume_fraction_ci95_low=low, volume_fraction_ci95_high=high)
        cells["edge_for_one_percent_um"] = entry["representativity"]["edge_for_one_percent_um"]
    for other, value in (coverage or {}).items():
        cells[f"surface_coverage.{other}"] = value
    return cells


def transport_rows(metrics: Metrics | None) -> list[tuple[str, str, dict[str, Any]]]:
    """(name, axis, cells) of each multi-phase solve, for the CSV and the table."""
    rows = []
    for key, by_axis in (metrics.transport if metrics else {}).items():
        for axis, solved in by_axis.items():
            cells = {
                "tortuosity": solved.tortuosity,
                "effective_diffusivity": solved.effective_diffusivity,
                "macmullin": 1.0 / solved.effective_diffusivity
                if solved.effective_diffusivity > 0
                else math.inf,
                "tortuosity_converged": solved.converged,
                "tortuosity_note": solved.note,
                "members": "+".join(f"{n}:{v:g}" for n, v in solved.conductivities.items()),
            }
            rows.append((key, axis, cells))
    return rows
