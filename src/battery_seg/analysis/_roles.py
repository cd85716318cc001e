"""Phase roles (electrolyte, carbon-binder, active material) by name, and role-based options."""

from __future__ import annotations

import math
from typing import Any

from ..checks import printable
from ..errors import BatterySegError
from ..phases import PhaseSet

__all__ = [
    "active_phases",
    "cbd_phases",
    "check_cbd_diffusivity",
    "parse_conductivity",
    "pore_phases",
]

# Names of the ionically conducting phase.
_PORE_NAMES = ("pore", "pores", "electrolyte", "void")
# Names of the carbon-binder domain; the phases that are neither pore nor CBD are active material.
_CBD_NAMES = ("cbd", "binder", "carbon-binder", "carbon_binder", "cb")


def pore_phases(phases: PhaseSet) -> tuple[str, ...]:
    """The electrolyte-filled phases (named pore, pores, electrolyte or void)."""
    return tuple(n for n in phases.names if n.lower() in _PORE_NAMES)


def cbd_phases(phases: PhaseSet) -> tuple[str, ...]:
    """The carbon-binder phases (named cbd, binder, carbon-binder or cb)."""
    return tuple(n for n in phases.names if n.lower() in _CBD_NAMES)


def active_phases(phases: PhaseSet) -> tuple[str, ...]:
    """The active material: every phase that is neither pore nor CBD.

    Examples
    --------
    >>> active_phases(PhaseSet.parse("si-graphite"))
    ('silicon', 'graphite')
    """
    other = set(pore_phases(phases)) | set(cbd_phases(phases))
    return tuple(n for n in phases.names if n not in other)


def check_cbd_diffusivity(value: float | None, phases: PhaseSet) -> float | None:
    """The relative CBD diffusivity, checked: positive, with a pore and a CBD phase to use it."""
    if value is None:
        return None
    if not (isinstance(value, (int, float)) and math.isfinite(value) and 0 < value <= 1):
        raise BatterySegError(
            f"CBD diffusivity is relative to the free electrolyte, so it lies in (0, 1] "
            f"(e.g. --cbd-diffusivity 0.1), got {value!r}."
        )
    if not cbd_phases(phases) or not pore_phases(phases):
        raise BatterySegError(
            f"A porous-CBD tortuosity needs a pore and a CBD phase, but the phase set is "
            f"{', '.join(phases.names)}; name them pore and cbd (e.g. --phases pore,active,cbd)."
        )
    return float(value)


def parse_conductivity(spec: Any, phases: PhaseSet) -> tuple[tuple[str, float], ...] | None:
    """Relative conductivities per phase from ``"active=1,cbd=0.01"``, a dict or pairs.

    ``active`` stands for every active phase (neither pore nor CBD).

    Examples
    --------
    >>> parse_conductivity("active=1,cbd=0.01", PhaseSet.parse("si-graphite"))
    (('silicon', 1.0), ('cbd', 0.01), ('graphite', 1.0))
    """
    if spec is None or (isinstance(spec, str) and not spec.strip()):
        return None
    if isinstance(spec, str):
        try:
            pairs = [(k.strip(), float(v)) for k, v in (p.split("=") for p in spec.split(","))]
        except ValueError:
            raise BatterySegError(
                f"Cannot read the conductivities {spec!r}; write NAME=VALUE pairs, e.g. "
                "--conductivity active=1,cbd=0.01."
            ) from None
    else:
        pairs = list(spec.items() if isinstance(spec, dict) else spec)
    values: dict[str, float] = {}
    for name, value in pairs:
        targets = active_phases(phases) if name == "active" else (name,)
        for target in targets:
            target = phases.names[phases.value_of(target) - 1]  # raises with the phase list
            if not (math.isfinite(float(value)) and 0 < float(value) <= 1):
                raise BatterySegError(
                    f"Conductivity of {target} is relative to the best conductor, so it lies in "
                    f"(0, 1], got {value!r}; leave non-conducting phases out."
                )
            if target in values:
                raise BatterySegError(
                    f"The conductivities {printable(str(spec), 80)} give {target} twice "
                    "('active' stands for every active phase); give each phase once."
                )
            values[target] = float(value)
    if not values:
        raise BatterySegError("No conducting phase given; e.g. --conductivity active=1,cbd=0.01.")
    return tuple((n, values[n]) for n in phases.names if n in values)
