"""The microstructure of a calendered cathode (NMC or LFP) as a label volume.

NMC: polycrystalline secondary particles, near-spherical, log-normally sized, flattened and
pressed into each other by calendering, a share of them cracked (cracks are pore, as in real
labelled scans). LFP: small primary particles that gather in agglomerates. The carbon-binder
domain (CBD) forms bridges in particle necks and film patches (:func:`._filling.place_cbd`, as in
the anode); cracks are cut after the CBD is placed, so the binder does not fill them.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from ..errors import BatterySegError
from ..phases import PhaseSet
from ._fields import MARGIN, distance_to, lowest, random_axes, smooth_noise, stamp_ellipsoid
from ._filling import place_cbd
from ._structure import check_seed, check_shape

__all__ = ["CathodeParams", "make_cathode", "random_cathode_params"]

_PHASES = PhaseSet.parse("nmc")
PORE, ACTIVE, CBD = (_PHASES.value_of(n) for n in ("pore", "active", "cbd"))


@dataclass(frozen=True)
class CathodeParams:
    """Parameters of the synthetic cathode; sizes are in voxels.

    Parameters
    ----------
    active_fraction, cbd_fraction : float
        Volume fractions of active material (before cracks are cut) and CBD; pore is the rest.
    particle_radius : float
        Mean radius of the particles (NMC secondary particles, or LFP primaries).
    size_spread : float
        Log-normal spread (sigma) of the radii.
    flattening : float
        Through-plane (z) semi-axis over the in-plane ones, in (0, 1]: calendering.
    overlap : float
        How deep (share of the radius) a particle may press into another, in [0, 1).
    crack_share : float
        Share of particles with cracks, in [0, 1].
    crack_width : float
        Width of a crack in voxels.
    agglomeration : float
        Share of particles placed next to an existing one (LFP agglomerates), in [0, 1).
    cbd_bridge_share, cbd_neck_radius, cbd_cluster_size, cbd_film_coverage, cbd_film_lumpiness
        The CBD's bridges and film, as in :class:`AnodeParams`.
    """

    active_fraction: float = 0.55
    cbd_fraction: float = 0.12
    particle_radius: float = 9.0
    size_spread: float = 0.35
    flattening: float = 0.85
    overlap: float = 0.15
    crack_share: float = 0.3
    crack_width: float = 1.0
    agglomeration: float = 0.0
    cbd_bridge_share: float = 0.6
    cbd_neck_radius: float = 2.0
    cbd_cluster_size: float = 4.0
    cbd_film_coverage: float = 0.5
    cbd_film_lumpiness: float = 1.0

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not np.isfinite(value) or value < 0:
                raise BatterySegError(
                    f"CathodeParams.{f.name} = {value!r} is invalid: it must be a finite "
                    "number >= 0."
                )
        if self.active_fraction + self.cbd_fraction >= 1:
            raise BatterySegError(
                "CathodeParams.active_fraction + cbd_fraction must stay below 1 (pore is the rest)."
            )
        if not (0 < self.flattening <= 1 and self.overlap < 1 and self.agglomeration < 1):
            raise BatterySegError(
                "CathodeParams: flattening must be in (0, 1], overlap and agglomeration below 1."
            )
        if self.particle_radius < 1.5:
            raise BatterySegError("CathodeParams.particle_radius must be at least 1.5 voxels.")


def random_cathode_params(rng: np.random.Generator, kind: str = "nmc") -> CathodeParams:
    """Widely randomised NMC (``kind="nmc"``) or LFP (``"lfp"``) cathodes."""
    if kind == "lfp":
        return CathodeParams(
            active_fraction=rng.uniform(0.40, 0.58),
            cbd_fraction=rng.uniform(0.08, 0.20),
            particle_radius=rng.uniform(1.8, 4.0),
            size_spread=rng.uniform(0.2, 0.4),
            flattening=rng.uniform(0.8, 1.0),
            overlap=rng.uniform(0.1, 0.3),
            crack_share=0.0,
            agglomeration=rng.uniform(0.3, 0.8),
            cbd_neck_radius=rng.uniform(1.0, 2.0),
            cbd_cluster_size=rng.uniform(2.0, 5.0),
        )
    return CathodeParams(
        active_fraction=rng.uniform(0.42, 0.66),
        cbd_fraction=rng.uniform(0.06, 0.20),
        particle_radius=rng.uniform(5.0, 18.0),
        size_spread=rng.uniform(0.15, 0.5),
        flattening=rng.uniform(0.7, 1.0),
        overlap=rng.uniform(0.0, 0.3),
        crack_share=rng.uniform(0.0, 0.7),
        crack_width=rng.uniform(0.7, 2.0),
        agglomeration=rng.uniform(0.0, 0.2),
        cbd_bridge_share=rng.uniform(0.3, 0.8),
        cbd_neck_radius=rng.uniform(1.0, 3.0),
        cbd_cluster_size=rng.uniform(2.0, 6.0),
        cbd_film_coverage=rng.uniform(0.2, 0.8),
        cbd_film_lumpiness=rng.uniform(0.5, 1.5),
    )


def make_cathode(
    shape: tuple[int, int, int] = (128, 128, 128),
    *,
    seed: int = 0,
    params: CathodeParams | None = None,
) -> np.ndarray:
    """Label volume of a synthetic calendered cathode.

    Returns uint8 labels of the ``nmc`` phase set: 1 = pore, 2 = active, 3 = cbd.

    >>> labels = make_cathode((24, 48, 48), seed=1)
    >>> labels.dtype, sorted(np.unique(labels).tolist())
    (dtype('uint8'), [1, 2, 3])
    """
    params = params if params is not None else CathodeParams()
    shape = check_shape(shape)
    rng_particles, rng_cbd, rng_cracks = (
        np.random.default_rng(s) for s in np.random.SeedSequence(check_seed(seed)).spawn(3)
    )
    total = int(np.prod(shape))
    active, particles = _particles(
        shape, round(params.active_fraction * total), params, rng_particles
    )
    cbd = place_cbd(
        active, distance_to(active, 8), round(params.cbd_fraction * total), params, rng_cbd
    )
    labels = np.full(shape, PORE, dtype=np.uint8)
    labels[active] = ACTIVE
    labels[cbd] = CBD
    _cut_cracks(labels, particles, params, rng_cracks)
    return labels


def _particles(shape, count: int, params: CathodeParams, rng: np.random.Generator):
    """Exactly ``count`` active voxels from overlapping (flattened) spheres, and the spheres."""
    field = np.full(shape, MARGIN, dtype=np.float32)
    upper = np.asarray(shape, dtype=float)
    covered, placed, rejected, particles = 0, 0, 0, []
    mean_volume = 4 / 3 * np.pi * params.particle_radius**3 * params.flattening
    most = 500 + int(20 * count / mean_volume)
    while covered < count and placed < most:
        radius = params.particle_radius * rng.lognormal(
            -(params.size_spread**2) / 2, params.size_spread
        )
        radius = float(np.clip(radius, 0.4 * params.particle_radius, 2.5 * params.particle_radius))
        semi = np.array(
            [max(1.0, radius * params.flattening), radius, radius * rng.uniform(0.88, 1.0)]
        )
        axes = random_axes(rng, 6.0)
        if particles and rng.random() < params.agglomeration:
            centre_of, other = particles[rng.integers(len(particles))][:2]
            direction = rng.normal(size=3)
            direction /= np.linalg.norm(direction) or 1.0
            centre = centre_of + direction * (other + radius) * (1 - 0.5 * params.overlap)
        else:
            centre = rng.uniform(-radius / 2, upper + radius / 2)
        inside = np.all((centre >= 0) & (centre < upper))
        if inside and field[tuple(centre.astype(int))] < -params.overlap * radius:
            rejected += 1
            if rejected < 300:
                continue
        rejected, placed = 0, placed + 1
        covered += stamp_ellipsoid(field, centre, axes, semi, MARGIN)
        particles.append((centre, radius))
    field += 0.3 * smooth_noise(shape, 1.5, rng)  # surface roughness
    mask = np.zeros(field.size, dtype=bool)
    mask[lowest(field.ravel(), count)] = True
    return mask.reshape(shape), particles


def _cut_cracks(labels, particles, params: CathodeParams, rng: np.random.Generator) -> None:
    """Planar cracks (pore) through a share of the particles, from near the centre outwards."""
    for centre, radius in particles:
        if rng.random() >= params.crack_share or radius < 3:
            continue
        reach = int(np.ceil(radius))
        lo = np.maximum(np.floor(centre).astype(int) - reach, 0)
        hi = np.minimum(np.floor(centre).astype(int) + reach + 1, labels.shape)
        if np.any(hi <= lo):
            continue
        grid = np.stack(
            np.meshgrid(
                *[np.arange(a, b) - c for a, b, c in zip(lo, hi, centre, strict=True)],
                indexing="ij",
            )
        )
        box = labels[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
        distance = np.sqrt((grid**2).sum(axis=0))
        for _ in range(int(rng.integers(1, 4))):
            normal = rng.normal(size=3)
            normal /= np.linalg.norm(normal) or 1.0
            offset = rng.uniform(-0.3, 0.3) * radius
            along = np.abs(np.tensordot(normal, grid, axes=1) - offset)
            crack = (along < params.crack_width / 2) & (distance < radius * rng.uniform(0.6, 1.0))
            box[crack & (box == ACTIVE)] = PORE
