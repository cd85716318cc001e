"""The microstructure of a calendered Si–graphite anode as a label volume.

Order of construction: graphite platelets (random sequential placement of oblate ellipsoids whose
short axis points along z, with limited overlap so they form a touching, percolating network),
then silicon particles in the pore space (most of them tangent to graphite surfaces), then the
carbon-binder domain (CBD) as bridges in the necks between particles and as film patches on
particle surfaces; pore is what remains. Each phase takes exactly its target share of voxels.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..errors import BatterySegError
from ..phases import PhaseSet
from ._fields import MARGIN, distance_to, lowest, random_axes, smooth_noise, stamp_ellipsoid
from ._filling import place_cbd, place_silicon

__all__ = ["AnodeParams", "make_anode"]

_PHASES = PhaseSet.parse("si-graphite")
PORE, SILICON, CBD, GRAPHITE = (_PHASES.value_of(n) for n in ("pore", "silicon", "cbd", "graphite"))
_DISTANCE_LIMIT = 8  # voxels: the farthest that particle distances need to be exact


@dataclass(frozen=True)
class AnodeParams:
    """Parameters of the synthetic Si–graphite anode; sizes are in voxels.

    Parameters
    ----------
    pore_fraction, silicon_fraction, cbd_fraction, graphite_fraction : float
        Target volume fractions; they must sum to 1. Each is met to within one voxel.
    graphite_radius : float
        Mean in-plane semi-axis of the graphite platelets.
    graphite_size_spread : float
        Log-normal spread (sigma) of the platelet sizes (polydispersity).
    graphite_aspect : float
        Thickness / in-plane size of a platelet (flattening by calendering), in (0, 1].
    graphite_elongation : float
        Smallest ratio of the two in-plane semi-axes, in (0, 1]; 1 gives round platelets.
    graphite_tilt_deg : float
        Scale of the random tilt of the platelets out of the xy plane, in degrees.
    graphite_roughness : float
        Amplitude (voxels) of the random surface roughness of the platelets.
    silicon_radius : float
        Typical silicon particle radius; radii lie in [``silicon_radius_min``,
        ``silicon_radius_max``].
    silicon_on_graphite : float
        Share of silicon particles sitting on graphite surfaces; the rest lie in the pore space.
    cbd_bridge_share : float
        Share of the CBD that forms bridges in necks between close particles; the rest is film.
    cbd_neck_radius : float
        Gaps up to about twice this wide (voxels) between particles count as necks; bridges
        fill the narrowest of them first.
    cbd_cluster_size : float
        Correlation length (voxels) of the random field that groups the bridges into clusters.
    cbd_film_coverage : float
        Share of the particle surface that carries CBD film patches, in (0, 1].
    cbd_film_lumpiness : float
        How much thicker (voxels per standard deviation of a smooth random field) the film gets
        towards the middle of a patch.

    Examples
    --------
    >>> AnodeParams(pore_fraction=0.30, silicon_fraction=0.12).silicon_fraction
    0.12
    """

    pore_fraction: float = 0.35
    silicon_fraction: float = 0.07
    cbd_fraction: float = 0.08
    graphite_fraction: float = 0.50
    graphite_radius: float = 12.0
    graphite_size_spread: float = 0.3
    graphite_aspect: float = 0.4
    graphite_elongation: float = 0.7
    graphite_tilt_deg: float = 12.0
    graphite_roughness: float = 0.6
    silicon_radius: float = 2.0
    silicon_radius_min: float = 1.5
    silicon_radius_max: float = 3.0
    silicon_on_graphite: float = 0.8
    cbd_bridge_share: float = 0.8
    cbd_neck_radius: float = 2.0
    cbd_film_coverage: float = 0.2
    cbd_film_lumpiness: float = 2.0
    cbd_cluster_size: float = 4.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not np.isfinite(value) or value < 0:
                raise BatterySegError(
                    f"AnodeParams.{f.name} = {value!r} is invalid: it must be a finite number >= 0."
                )
        total = self.pore_fraction + self.silicon_fraction + self.cbd_fraction
        total += self.graphite_fraction
        if abs(total - 1.0) > 1e-6:
            raise BatterySegError(
                f"AnodeParams volume fractions sum to {total:.4f} (pore {self.pore_fraction}, "
                f"silicon {self.silicon_fraction}, cbd {self.cbd_fraction}, graphite "
                f"{self.graphite_fraction}); they must sum to 1. Lower or raise one of them, e.g. "
                "pore_fraction = 1 - the others."
            )
        for name in ("graphite_aspect", "graphite_elongation", "cbd_film_coverage"):
            if not 0 < getattr(self, name) <= 1:
                raise BatterySegError(f"AnodeParams.{name} must lie in (0, 1].")
        for name in ("silicon_on_graphite", "cbd_bridge_share"):
            if getattr(self, name) > 1:
                raise BatterySegError(f"AnodeParams.{name} is a share and must lie in [0, 1].")
        if not 0.5 <= self.silicon_radius_min <= self.silicon_radius <= self.silicon_radius_max:
            raise BatterySegError(
                "AnodeParams silicon radii must satisfy 0.5 <= silicon_radius_min <= "
                f"silicon_radius <= silicon_radius_max, got {self.silicon_radius_min}, "
                f"{self.silicon_radius}, {self.silicon_radius_max}."
            )
        if self.graphite_radius < 1.5:
            raise BatterySegError("AnodeParams.graphite_radius must be at least 1.5 voxels.")


def make_anode(
    shape: tuple[int, int, int] = (128, 128, 128),
    *,
    seed: int = 0,
    params: AnodeParams | None = None,
) -> np.ndarray:
    """Label volume of a synthetic calendered Si–graphite anode.

    Parameters
    ----------
    shape : tuple of 3 int
        Volume shape (z, y, x); z is the through-plane direction (electrode normal).
    seed : int
        Random seed; the same seed and parameters give bit-identical labels.
    params : AnodeParams, optional
        Microstructure parameters; defaults to ``AnodeParams()``.

    Returns
    -------
    numpy.ndarray
        uint8 labels of the ``si-graphite`` phase set: 1 = pore, 2 = silicon, 3 = cbd,
        4 = graphite.

    Examples
    --------
    >>> labels = make_anode((32, 48, 48), seed=1)
    >>> labels.dtype, labels.shape
    (dtype('uint8'), (32, 48, 48))
    >>> round(float((labels == 4).mean()), 2)
    0.5
    """
    params = params if params is not None else AnodeParams()
    shape = check_shape(shape)
    rng_graphite, rng_silicon, rng_cbd = (
        np.random.default_rng(s) for s in np.random.SeedSequence(check_seed(seed)).spawn(3)
    )
    counts = _voxel_counts(int(np.prod(shape)), params)
    graphite = _graphite(shape, counts[GRAPHITE], params, rng_graphite)
    # One distance transform, shared: silicon is placed by it, CBD follows particle gaps.
    to_graphite = distance_to(graphite, _DISTANCE_LIMIT)
    silicon, to_silicon = place_silicon(graphite, to_graphite, counts[SILICON], params, rng_silicon)
    to_particles = np.minimum(to_graphite, to_silicon)
    cbd = place_cbd(graphite | silicon, to_particles, counts[CBD], params, rng_cbd)
    labels = np.full(shape, PORE, dtype=np.uint8)
    labels[graphite] = GRAPHITE
    labels[silicon] = SILICON
    labels[cbd] = CBD
    return labels


def check_shape(shape) -> tuple[int, int, int]:
    """Validate a (z, y, x) volume shape."""
    try:
        shape = tuple(int(s) for s in shape)
    except (TypeError, ValueError):
        raise BatterySegError(
            f"Phantom shape {shape!r} must be three integers (z, y, x)."
        ) from None
    if len(shape) != 3 or min(shape) < 8:
        raise BatterySegError(
            f"Phantom shape {shape} must be three sizes (z, y, x) of at least 8 voxels each, "
            "e.g. (64, 128, 128)."
        )
    return shape


def check_seed(seed) -> int:
    """Validate a random seed (a non-negative integer)."""
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise BatterySegError(f"Random seed {seed!r} must be a non-negative integer, e.g. 0.")
    return int(seed)


def _voxel_counts(total: int, params: AnodeParams) -> dict[int, int]:
    """Exact voxel count per phase (largest-remainder rounding, so they add up to ``total``)."""
    wanted = {
        PORE: params.pore_fraction * total,
        SILICON: params.silicon_fraction * total,
        CBD: params.cbd_fraction * total,
        GRAPHITE: params.graphite_fraction * total,
    }
    counts = {k: int(np.floor(v)) for k, v in wanted.items()}
    by_remainder = sorted(wanted, key=lambda k: counts[k] - wanted[k])
    for k in by_remainder[: total - sum(counts.values())]:
        counts[k] += 1
    return counts


def _graphite(shape, count: int, params: AnodeParams, rng: np.random.Generator) -> np.ndarray:
    """Boolean mask of exactly ``count`` graphite voxels built from overlapping platelets."""
    field = np.full(shape, MARGIN, dtype=np.float32)
    covered, rejected, placed = 0, 0, 0
    upper = np.asarray(shape, dtype=float)
    # A guard for near-100 % graphite: the last voxels are taken by thickening, not by search.
    typical = 4 / 3 * np.pi * params.graphite_radius**3 * params.graphite_aspect
    most = 1000 + int(50 * count / (typical * (1 + params.graphite_elongation) / 2))
    while covered < count and placed < most:
        size = params.graphite_radius * rng.lognormal(
            -(params.graphite_size_spread**2) / 2, params.graphite_size_spread
        )
        size = float(np.clip(size, 0.4 * params.graphite_radius, 2.5 * params.graphite_radius))
        semi = np.array(
            [
                max(1.0, size * params.graphite_aspect * rng.uniform(0.8, 1.2)),
                size,
                size * rng.uniform(params.graphite_elongation, 1.0),
            ]
        )
        axes = random_axes(rng, params.graphite_tilt_deg)
        reach = np.sqrt(((axes * semi) ** 2).sum(axis=1))
        centre = rng.uniform(-reach / 2, upper + reach / 2)
        # Limited overlap: a new platelet may touch or cut into others, but its centre must not
        # lie inside one (after many refusals the space is full and any place is taken).
        inside = np.all((centre >= 0) & (centre < upper))
        if inside and field[tuple(centre.astype(int))] < 0 and rejected < 200:
            rejected += 1
            continue
        rejected, placed = 0, placed + 1
        covered += stamp_ellipsoid(field, centre, axes, semi, MARGIN)
    if params.graphite_roughness > 0:
        field += params.graphite_roughness * smooth_noise(shape, 1.5, rng)
    mask = np.zeros(field.size, dtype=bool)
    mask[lowest(field.ravel(), count)] = True
    return mask.reshape(shape)
