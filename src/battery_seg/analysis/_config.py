"""The one configuration object of a phase analysis, shared by the API, the CLI and the widget."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from ..checks import check_device, check_voxel_size, resolve_device
from ..cluster import ClusterOptions
from ..errors import BatterySegError
from ..names import AXES
from ..phases import PhaseSet
from ._roles import check_cbd_diffusivity, parse_conductivity, pore_phases

__all__ = [
    "AXES",
    "AnalysisConfig",
    "Network",
    "SolverOptions",
    "axis_index",
    "default_networks",
    "parse_roi",
]

CONVENTIONS = ("taufactor", "percolating")


def axis_index(axis: str | int) -> int:
    """Index 0, 1, 2 of an axis given as ``"z"``, ``"y"``, ``"x"`` or an int."""
    if isinstance(axis, int) and not isinstance(axis, bool) and axis in (0, 1, 2):
        return axis
    if isinstance(axis, str) and axis.lower() in AXES:
        return AXES.index(axis.lower())
    raise BatterySegError(f"Unknown axis {axis!r}: use z, y or x (or 0, 1, 2).")


@dataclass(frozen=True)
class SolverOptions:
    """How a TauFactor solve runs and what it may cost, passed whole to the tortuosity jobs.

    :attr:`AnalysisConfig.solver` builds it from a configuration; the fields mean what the
    configuration's fields of the same names mean (``max_seconds`` is its
    ``max_solve_seconds``; ``None`` here: no time limit).

    Examples
    --------
    >>> SolverOptions(device="cpu", conv_crit=1e-3).limits["max_seconds"]
    1800.0
    """

    convention: str = "taufactor"
    front_face: str = "low"
    device: str = "auto"
    conv_crit: float = 1e-2
    iter_limit: int = 20000
    max_seconds: float | None = 1800.0
    max_memory_bytes: int | None = None
    force: bool = False

    def __post_init__(self) -> None:
        if self.convention not in CONVENTIONS:
            raise BatterySegError(
                f"Unknown tortuosity convention {self.convention!r}; use 'taufactor' "
                "(total volume fraction) or 'percolating' (through-connected fraction)."
            )
        if self.front_face not in ("low", "high"):
            raise BatterySegError(f"front_face must be 'low' or 'high', got {self.front_face!r}.")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise BatterySegError(
                f"The time limit of a tortuosity solve must be positive, got "
                f"{self.max_seconds / 60:g} minutes (--max-minutes)."
            )
        if self.conv_crit <= 0 or self.iter_limit < 100:
            raise BatterySegError("conv_crit must be > 0 and iter_limit at least 100.")

    @property
    def limits(self) -> dict[str, Any]:
        """The time and memory limits, as :func:`check_limits` takes them."""
        return {
            "max_seconds": self.max_seconds,
            "max_memory_bytes": self.max_memory_bytes,
            "force": self.force,
        }


@dataclass(frozen=True)
class Network:
    """A transport network: one phase (``pore``) or a union of phases (the solid network).

    Examples
    --------
    >>> Network.parse("solid=silicon+cbd+graphite")
    Network(name='solid', phases=('silicon', 'cbd', 'graphite'))
    >>> Network.parse("pore")
    Network(name='pore', phases=('pore',))
    """

    name: str
    phases: tuple[str, ...]

    @classmethod
    def parse(cls, spec: str) -> Network:
        """``NAME=PHASE+PHASE+...`` or a single phase name."""
        name, _, members = spec.strip().partition("=")
        name = name.strip()
        parts = tuple(p.strip() for p in (members or name).split("+"))
        if not name or not all(parts) or len(set(parts)) != len(parts):
            raise BatterySegError(
                f"Cannot read the transport network {spec!r} (an empty or repeated name); write "
                "a phase name (pore) or NAME=PHASE+PHASE (solid=graphite+silicon+cbd)."
            )
        return cls(name, parts)

    def spec(self) -> str:
        if self.phases == (self.name,):
            return self.name
        return f"{self.name}={'+'.join(self.phases)}"


def default_networks(phases: PhaseSet) -> tuple[Network, ...]:
    """Pore phase (ionic transport) and the union of all other phases (electronic transport)."""
    pore = list(pore_phases(phases))  # ionic transport; every other phase is the solid network
    solid = tuple(n for n in phases.names if n not in pore)
    networks = [Network(pore[0], (pore[0],))] if pore else []
    if solid:
        networks.append(Network(solid[0], solid) if len(solid) == 1 else Network("solid", solid))
    return tuple(networks)


@dataclass(frozen=True)
class AnalysisConfig:
    """What to measure on a label volume, and how.

    Parameters
    ----------
    phases : PhaseSet
        Phase names and their label values (``PhaseSet.parse("pore=0,nmc=85,cbd=170")`` for a
        foreign file). Label 0 means unlabelled unless the phase set maps it to a phase.
    voxel_size : (dz, dy, dx)
        Physical voxel size in ``unit``; ``voxel_size_source`` records where it came from
        (``"metadata"``, ``"user"`` or ``"default"`` = assumed isotropic 1 voxel); a voxel
        size other than 1 given without a source counts as ``"user"``.
    axes : tuple of {"z", "y", "x"}
        Transport / profile axes. ``z`` (axis 0) is the through-thickness direction.
    profiles, surfaces, connectivity, tortuosity : bool
        Which measurements to make. Volume fractions are always computed.
    convention : {"taufactor", "percolating"}
        ``taufactor``: tau = (volume fraction of all voxels of the network) / (relative effective
        diffusivity). ``percolating``: the through-connected fraction is used instead (PoreSpy).
    networks : tuple of Network or None
        Tortuosity targets; ``None`` = the pore phase and the union of all other phases.
    front_face : {"low", "high"}
        The separator side of each axis: index 0 (``low``) or the last index (``high``).
    device : {"auto", "cpu", "cuda"}
        Where TauFactor solves (``auto`` = CUDA when present).
    thresholds : (low, high)
        Probability thresholds for the uncertainty range (phase mask = p >= threshold).
    roi : ((z0, z1), (y0, y1), (x0, x1)) or None
        Box to analyse (half-open index ranges); label 0 voxels are always excluded.
    conv_crit, iter_limit : float, int
        TauFactor's convergence criterion (relative flux spread) and iteration limit.
    max_solve_seconds, max_memory_bytes : float, int or None
        A tortuosity request estimated above these limits is refused unless ``force``.
        ``max_memory_bytes=None`` means half of the available memory.
    size_distribution : bool
        Per phase: the continuous (local-thickness) size distribution and the particles
        separated by a watershed on the distance transform (count, equivalent diameters,
        D10/D50/D90, sphericity); for the pore phase this is the pore size distribution.
    representativity : bool
        A 95 % confidence interval of every volume fraction from the volume itself (two-point
        correlation / integral range, Dahari et al., ImageRep) and the cube edge needed for
        +-1 %.
    cbd_diffusivity : float or None
        Relative diffusivity of the electrolyte in the (nanoporous) CBD, e.g. 0.1: also solve
        the electrolyte tortuosity with a conducting CBD (TauFactor's multiphase solver).
    conductivity : mapping or str or None
        Relative electronic conductivities, e.g. ``"active=1,cbd=0.01"`` (``active`` = every
        active phase): also solve the electronic tortuosity through these phases.
    keep_masks : bool
        Keep the through-connected mask of every transport network and axis in the result
        (the widget shows them as layers).
    electrode : {"negative", "positive"} or None
        Cell-model parameters will be made of the result for this electrode: what they need
        (voxel size, phases, axis z, thickness) is checked before any work, and the volume
        fractions (a pore and an active phase present) right after the counting, before the
        solves.
    cluster : ClusterOptions
        Where the chunked phase counting (volume fractions and profiles) runs
        (:class:`battery_seg.cluster.ClusterOptions`: a ``dask.distributed`` scheduler address
        or scheduler file, or ``workers`` processes started on this machine; default: threads
        here). Surfaces, connectivity, masks and tortuosity run in this process.

    Examples
    --------
    >>> config = AnalysisConfig(PhaseSet.parse("nmc"), voxel_size=(0.39, 0.39, 0.39))
    >>> [n.spec() for n in config.transport_networks]
    ['pore', 'solid=active+cbd']
    """

    phases: PhaseSet = field(default_factory=lambda: PhaseSet.parse(None))
    voxel_size: tuple[float, float, float] = (1.0, 1.0, 1.0)
    voxel_size_source: str = "default"
    unit: str = "µm"
    axes: tuple[str, ...] = ("z",)
    profiles: bool = True
    surfaces: bool = True
    connectivity: bool = True
    tortuosity: bool = False
    convention: str = "taufactor"
    networks: tuple[Network, ...] | None = None
    front_face: str = "low"
    device: str = "auto"
    thresholds: tuple[float, float] = (0.3, 0.7)
    roi: tuple[tuple[int, int], ...] | None = None
    conv_crit: float = 1e-2
    iter_limit: int = 20000
    max_solve_seconds: float = 1800.0
    max_memory_bytes: int | None = None
    force: bool = False
    size_distribution: bool = False
    representativity: bool = False
    cbd_diffusivity: float | None = None
    conductivity: tuple[tuple[str, float], ...] | None = None
    keep_masks: bool = False
    electrode: str | None = None
    cluster: ClusterOptions = field(default_factory=ClusterOptions)

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "cluster", ClusterOptions.of(self.cluster))
        set_(self, "phases", PhaseSet.parse(self.phases))
        set_(self, "voxel_size", check_voxel_size(self.voxel_size))
        if self.voxel_size_source == "default" and self.voxel_size != (1.0, 1.0, 1.0):
            set_(self, "voxel_size_source", "user")  # given by the caller: physical units
        set_(self, "axes", _check_axes(self.axes))
        self.solver  # noqa: B018 (builds the solver options: validates their fields)
        set_(self, "device", check_device(self.device))
        if self.tortuosity and self.device.startswith("cuda"):
            resolve_device(self.device, "the tortuosity solve")  # a GPU must be there
        low, high = (float(t) for t in self.thresholds)
        if not 0.0 < low <= high <= 1.0:
            raise BatterySegError(
                f"Probability thresholds must satisfy 0 < low <= high <= 1, got {low}, {high}."
            )
        set_(self, "thresholds", (low, high))
        if self.networks is not None:
            nets = tuple(n if isinstance(n, Network) else Network.parse(n) for n in self.networks)
            set_(self, "networks", nets)
            names = [n.name for n in nets]
            if len(set(names)) != len(names):
                raise BatterySegError(
                    f"Two transport networks share a name in {', '.join(names)}; give each "
                    "--network its own NAME=."
                )
        for network in self.transport_networks:
            for name in network.phases:
                self.phases.value_of(name)  # raises with the list of phases
        if self.roi is not None:
            set_(self, "roi", _check_roi(self.roi))
        set_(self, "cbd_diffusivity", check_cbd_diffusivity(self.cbd_diffusivity, self.phases))
        set_(self, "conductivity", parse_conductivity(self.conductivity, self.phases))
        if self.electrode not in (None, "negative", "positive"):
            raise BatterySegError(f"Electrode must be negative or positive: {self.electrode!r}.")

    @property
    def solver(self) -> SolverOptions:
        """How the TauFactor solves run (the one place these fields are handed on)."""
        return SolverOptions(
            convention=self.convention,
            front_face=self.front_face,
            device=self.device,
            conv_crit=self.conv_crit,
            iter_limit=self.iter_limit,
            max_seconds=self.max_solve_seconds,
            max_memory_bytes=self.max_memory_bytes,
            force=self.force,
        )

    @property
    def transport_networks(self) -> tuple[Network, ...]:
        return default_networks(self.phases) if self.networks is None else self.networks

    @property
    def axis_indices(self) -> tuple[int, ...]:
        return tuple(axis_index(a) for a in self.axes)

    @property
    def isotropic_default(self) -> bool:
        return self.voxel_size_source == "default"

    def with_changes(self, **changes: Any) -> AnalysisConfig:
        """A copy with some fields replaced (validated again)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able record of the configuration (stored in the result)."""
        return {
            "phases": self.phases.spec(),
            "voxel_size": list(self.voxel_size),
            "voxel_size_source": self.voxel_size_source,
            "unit": self.unit,
            "axes": list(self.axes),
            "profiles": self.profiles,
            "surfaces": self.surfaces,
            "connectivity": self.connectivity,
            "tortuosity": self.tortuosity,
            "convention": self.convention,
            "networks": [n.spec() for n in self.transport_networks],
            "front_face": self.front_face,
            "device": self.device,
            "thresholds": list(self.thresholds),
            "roi": None if self.roi is None else [list(r) for r in self.roi],
            "conv_crit": self.conv_crit,
            "iter_limit": self.iter_limit,
            "size_distribution": self.size_distribution,
            "representativity": self.representativity,
            "cbd_diffusivity": self.cbd_diffusivity,
            "conductivity": None if self.conductivity is None else dict(self.conductivity),
            "electrode": self.electrode,
        }


def _check_axes(axes: Sequence[str] | str) -> tuple[str, ...]:
    if isinstance(axes, str):
        axes = AXES if axes.lower() == "all" else tuple(a for a in axes.replace(",", " ").split())
    names = tuple(AXES[axis_index(a)] for a in axes)
    if not names or len(set(names)) != len(names):
        raise BatterySegError(f"Axes must be distinct names from z, y, x or 'all', got {axes!r}.")
    return names


def _check_roi(roi: Sequence[Sequence[int]]) -> tuple[tuple[int, int], ...]:
    box = tuple((int(a), int(b)) for a, b in roi)
    if len(box) != 3 or any(a < 0 or b <= a for a, b in box):
        raise BatterySegError(
            f"Region of interest must be three (start, stop) index ranges with start < stop, "
            f"got {roi!r}; e.g. --roi 0:128,0:256,0:256."
        )
    return box


def parse_roi(text: str | None) -> tuple[tuple[int, int], ...] | None:
    """``"z0:z1,y0:y1,x0:x1"`` as a box; empty or None gives None.

    Examples
    --------
    >>> parse_roi("0:64, 10:20, 0:32")
    ((0, 64), (10, 20), (0, 32))
    """
    if not text or not text.strip():
        return None
    try:
        parts = [tuple(int(v) for v in item.split(":")) for item in text.split(",")]
        if len(parts) != 3 or any(len(p) != 2 for p in parts):
            raise ValueError
    except ValueError:
        raise BatterySegError(
            f"Cannot read the region of interest {text!r}; write three start:stop ranges, "
            "e.g. 0:128,0:256,0:256."
        ) from None
    return _check_roi(parts)
