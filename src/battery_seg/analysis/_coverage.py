"""Surface coverage: which share of each phase's surface faces each other phase.

From the interfacial areas of every phase pair (:mod:`._surface`: 2x2x2 configurations corrected
by smoothed normals, streamed slab by slab, so volumes larger than memory work): the coverage of
phase ``A`` by phase ``B`` is ``A_AB / sum_C A_AC`` over the other phases ``C``, so each phase's
coverages add up to 1 (its boundary with unlabelled voxels and the faces of the box are not
counted). The active area density is the interfacial area between the active phases and the pore
per total volume (``1/unit``), the electrochemically active area a cell model calls ``a``.
"""

from __future__ import annotations

import math

from ..phases import PhaseSet
from ._roles import active_phases, pore_phases
from ._surface import SurfaceAreas

__all__ = ["active_area_density", "surface_coverage"]


def _pair_area(surfaces: SurfaceAreas, a: str, b: str) -> float:
    return surfaces.interfaces.get((a, b), surfaces.interfaces.get((b, a), 0.0))


def surface_coverage(surfaces: SurfaceAreas, phases: PhaseSet) -> dict[str, dict[str, float]]:
    """``coverage[name][other]``: fraction of ``name``'s surface facing ``other`` (sums to 1).

    Examples
    --------
    >>> areas = SurfaceAreas({"pore": 4.0, "cbd": 2.0, "active": 4.0},
    ...                      {("pore", "cbd"): 1.0, ("pore", "active"): 3.0,
    ...                       ("cbd", "active"): 1.0}, volume=10.0)
    >>> surface_coverage(areas, PhaseSet.parse("pore,cbd,active"))["active"]
    {'pore': 0.75, 'cbd': 0.25}
    """
    coverage = {}
    for name in phases.names:
        others = [o for o in phases.names if o != name]
        areas = {o: _pair_area(surfaces, name, o) for o in others}
        total = sum(areas.values())
        coverage[name] = {o: (a / total if total > 0 else math.nan) for o, a in areas.items()}
    return coverage


def active_area_density(surfaces: SurfaceAreas, phases: PhaseSet) -> float:
    """Active material–pore interfacial area per total volume (``1/unit``); NaN without a pore."""
    pores, active = pore_phases(phases), active_phases(phases)
    if not pores or not active or not surfaces.volume:
        return math.nan
    area = sum(_pair_area(surfaces, a, p) for a in active for p in pores)
    return area / surfaces.volume
