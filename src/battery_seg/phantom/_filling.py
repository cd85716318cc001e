"""Filling the space between graphite platelets: silicon particles, then carbon-binder domain."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import ndimage

from ._fields import MARGIN, lowest, smooth_noise, stamp_spheres

if TYPE_CHECKING:
    from ._structure import AnodeParams

__all__ = ["place_cbd", "place_silicon"]


def place_silicon(
    graphite: np.ndarray,
    to_graphite: np.ndarray,
    count: int,
    params: AnodeParams,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """Exactly ``count`` silicon voxels: small spheres, most sitting on graphite surfaces.

    Radii come in half-voxel steps between ``silicon_radius_min`` and ``silicon_radius_max``,
    weighted log-normally around ``silicon_radius``. A share ``silicon_on_graphite`` of the
    spheres is centred about one radius from graphite (so it sits on the surface), the rest at
    least 1.5 voxels further out. Spheres are added in rounds until their union, restricted to
    non-graphite voxels, can supply ``count`` voxels.

    Returns the silicon mask and the distance (voxels) to it, ``inf`` beyond ``MARGIN``.
    """
    free = ~graphite
    field = np.full(graphite.shape, MARGIN, dtype=np.float32)
    if count == 0:
        return np.zeros(graphite.shape, dtype=bool), np.full(graphite.shape, np.inf, np.float32)
    steps = np.arange(params.silicon_radius_min, params.silicon_radius_max + 0.25, 0.5)
    radii = np.unique(np.minimum(steps, params.silicon_radius_max))
    weights = np.exp(-(np.log(radii / params.silicon_radius) ** 2) / (2 * 0.3**2))
    weights /= weights.sum()
    voxels = np.array([_ball_volume(r) for r in radii])
    wanted = count
    for _ in range(8):
        number = max(1, int(np.ceil(0.9 * wanted / float(weights @ voxels))))
        for radius, n in zip(radii, rng.multinomial(number, weights), strict=True):
            on_graphite = rng.binomial(n, params.silicon_on_graphite)
            shell = (to_graphite >= radius - 0.5) & (to_graphite < radius + 0.5)
            away = to_graphite >= radius + 1.5
            centres = [_pick(shell, on_graphite, rng), _pick(away, n - on_graphite, rng)]
            stamp_spheres(field, np.concatenate(centres), float(radius), MARGIN)
        reachable = np.count_nonzero(field[free] <= 0.5)
        if reachable >= count:
            break
        wanted = count - reachable
    # A tiny random tie-break: many voxels share one lattice distance to their sphere centre.
    values = field[free] + 1e-3 * rng.random(int(free.sum()), dtype=np.float32)
    chosen = lowest(values, count)
    mask = np.zeros(graphite.shape, dtype=bool)
    mask.reshape(-1)[np.flatnonzero(free)[chosen]] = True
    surface = float(values[chosen].max())
    distance = np.where(field < MARGIN - 0.5, np.maximum(field - surface, 0.0), np.inf)
    distance[mask] = 0.0
    return mask, distance.astype(np.float32)


def place_cbd(
    solid: np.ndarray,
    to_solid: np.ndarray,
    count: int,
    params: AnodeParams,
    rng: np.random.Generator,
) -> np.ndarray:
    """Exactly ``count`` CBD voxels: clusters bridging particle necks, then film patches.

    Binder and carbon black gather where drying leaves them, in the narrow gaps and necks
    between particles. Bridges therefore fill pore voxels in order of the local gap half-width
    (the largest distance to a particle within a small window), so that a bridge spans the gap
    from particle to particle; a smooth random field of correlation length
    ``cbd_cluster_size`` groups them into clusters and lets some reach into wider gaps. The film
    grows as lumpy patches on part of the particle surface. ``to_solid`` is the distance of
    every voxel to the particles (``solid``).
    """
    pore = ~solid
    reach = int(np.ceil(2 * params.cbd_neck_radius)) + 1
    jitter = 0.3 * smooth_noise(solid.shape, 1.0, rng)
    mask = np.zeros(solid.shape, dtype=bool)
    bridge_count = round(params.cbd_bridge_share * count)
    pore_index = np.flatnonzero(pore)
    if bridge_count > 0:
        half_width = ndimage.maximum_filter(to_solid, size=2 * reach + 1, mode="mirror")
        clusters = smooth_noise(solid.shape, params.cbd_cluster_size, rng)
        score = half_width + 0.2 * to_solid + jitter - params.cbd_neck_radius * clusters
        mask.reshape(-1)[pore_index[lowest(score[pore], bridge_count)]] = True
    # Film patches: a smooth random field marks which part of the surface is coated and how
    # thickly (thicker towards the middle of a patch).
    patches = smooth_noise(solid.shape, 3.0, rng)
    surface = pore & (to_solid <= 1.5)
    cut = np.quantile(patches[surface], 1.0 - params.cbd_film_coverage) if surface.any() else 0.0
    film_score = to_solid + jitter - params.cbd_film_lumpiness * (patches - cut)
    film_score[patches < cut] += 100.0
    rest = np.flatnonzero(pore & ~mask)
    mask.reshape(-1)[rest[lowest(film_score.reshape(-1)[rest], count - bridge_count)]] = True
    return mask


def _pick(candidates: np.ndarray, number: int, rng: np.random.Generator) -> np.ndarray:
    """``number`` random voxel indices (n, 3) among the True voxels of ``candidates``."""
    index = np.flatnonzero(candidates)
    if number <= 0 or index.size == 0:
        return np.zeros((0, 3), dtype=np.int64)
    chosen = index[rng.integers(0, index.size, number)]
    return np.stack(np.unravel_index(chosen, candidates.shape), axis=1)


def _ball_volume(radius: float) -> int:
    """Number of lattice voxels within ``radius`` of a voxel centre."""
    span = np.arange(-int(radius), int(radius) + 1)
    dz, dy, dx = np.meshgrid(span, span, span, indexing="ij")
    return int(np.count_nonzero(dz**2 + dy**2 + dx**2 <= radius**2))
