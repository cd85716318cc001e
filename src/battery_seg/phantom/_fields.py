"""Building blocks of the phantom: particle stamping into distance-like fields and selections.

Particles are not drawn voxel by voxel. Each particle writes an approximate signed distance to
its surface (negative inside) into a shared float field, only inside its own bounding box, and
the field keeps the minimum over particles. A phase is then the ``count`` voxels with the lowest
field value, which hits a target volume fraction exactly while growing or shrinking all particle
surfaces by the same sub-voxel amount.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

MARGIN = 3.0  # how far (voxels) outside a particle its distance field is kept

__all__ = [
    "MARGIN",
    "distance_to",
    "lowest",
    "random_axes",
    "smooth_noise",
    "stamp_ellipsoid",
    "stamp_spheres",
]


def random_axes(rng: np.random.Generator, tilt_deg: float) -> np.ndarray:
    """Body axes of one calendered platelet as the columns of a (3, 3) matrix in (z, y, x).

    Column 0 is the short axis: it starts along z (the electrode normal) and is tilted by an
    angle drawn from a half-normal distribution with scale ``tilt_deg`` about a random in-plane
    axis; columns 1 and 2 are the in-plane long axes with a uniform azimuth.
    """
    azimuth = rng.uniform(0.0, np.pi)
    axes = np.array(
        [
            [1.0, 0.0, 0.0],
            [0.0, np.cos(azimuth), -np.sin(azimuth)],
            [0.0, np.sin(azimuth), np.cos(azimuth)],
        ]
    )
    tilt = np.deg2rad(abs(rng.normal(0.0, tilt_deg)))
    about = rng.uniform(0.0, 2 * np.pi)
    n = np.array([0.0, np.cos(about), np.sin(about)])
    # Rodrigues' rotation of every axis about the in-plane direction n.
    cross = np.array([[0, -n[2], n[1]], [n[2], 0, -n[0]], [-n[1], n[0], 0]])
    rotation = np.eye(3) + np.sin(tilt) * cross + (1 - np.cos(tilt)) * cross @ cross
    return rotation @ axes


def stamp_ellipsoid(
    field: np.ndarray, centre: np.ndarray, axes: np.ndarray, semi: np.ndarray, margin: float
) -> int:
    """Write the approximate signed distance to one ellipsoid into ``field`` (minimum).

    ``axes`` holds the unit body axes as columns, ``semi`` the semi-axis lengths along them (in
    voxels). The distance is the first-order estimate ``(q - 1) / |grad q|`` of the normalised
    radius ``q``, accurate near the surface, which is all the later thresholding needs; values
    are clipped to ``[-min(semi), margin]``. Returns how many voxels became newly inside.
    """
    half = np.sqrt(((axes * semi) ** 2).sum(axis=1)) + margin
    lo = np.maximum(np.floor(centre - half).astype(int), 0)
    hi = np.minimum(np.ceil(centre + half).astype(int) + 1, field.shape)
    if np.any(hi <= lo):
        return 0
    grids = [
        (np.arange(lo[i], hi[i], dtype=np.float32) - np.float32(centre[i])).reshape(
            [-1 if j == i else 1 for j in range(3)]
        )
        for i in range(3)
    ]
    # Python floats keep the arithmetic in float32 (numpy scalars would promote to float64).
    q2 = g2 = np.float32(0)
    for j in range(3):
        a0, a1, a2 = (float(a) for a in axes[:, j])
        local = grids[0] * a0 + grids[1] * a1 + grids[2] * a2
        inverse = 1.0 / float(semi[j])
        q2 = q2 + (local * inverse) ** 2
        g2 = g2 + (local * inverse**2) ** 2
    q = np.sqrt(q2)
    with np.errstate(divide="ignore", invalid="ignore"):
        distance = (q - 1.0) * q / np.sqrt(g2)
    distance[~np.isfinite(distance)] = -float(semi.min())
    np.clip(distance, -float(semi.min()), margin, out=distance)
    box = field[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]]
    inside_before = np.count_nonzero(box <= 0)
    np.minimum(box, distance, out=box)
    return int(np.count_nonzero(box <= 0) - inside_before)


def stamp_spheres(field: np.ndarray, centres: np.ndarray, radius: float, margin: float) -> None:
    """Write the signed distance to spheres of one ``radius`` around ``centres`` (minimum).

    ``centres`` are integer voxel indices, shape (n, 3). Vectorised over the particles: the loop
    runs over the few hundred voxel offsets of one sphere's bounding box, each step updating all
    spheres at once (distinct centres never collide within one step).
    """
    if len(centres) == 0:
        return
    reach = int(np.ceil(radius + margin))
    padded = np.pad(field, reach, mode="constant", constant_values=margin)
    flat = padded.reshape(-1)
    strides = np.array([padded.shape[1] * padded.shape[2], padded.shape[2], 1])
    start = (np.asarray(centres, dtype=np.int64) + reach) @ strides
    span = np.arange(-reach, reach + 1)
    dz, dy, dx = np.meshgrid(span, span, span, indexing="ij")
    distance = np.sqrt(dz**2 + dy**2 + dx**2).ravel() - radius
    keep = distance <= margin
    offsets = np.stack([dz.ravel(), dy.ravel(), dx.ravel()], axis=1)[keep] @ strides
    for offset, value in zip(offsets, distance[keep].astype(np.float32), strict=True):
        index = start + offset
        flat[index] = np.minimum(flat[index], value)
    field[...] = padded[reach:-reach, reach:-reach, reach:-reach]


def lowest(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` smallest entries of a 1-D array (exact count, any tie order)."""
    if count <= 0:
        return np.zeros(0, dtype=np.intp)
    if count >= values.size:
        return np.arange(values.size)
    return np.argpartition(values, count - 1)[:count]


def smooth_noise(shape: tuple[int, ...], sigma: float, rng: np.random.Generator) -> np.ndarray:
    """Gaussian random field with correlation length ``sigma`` voxels, zero mean, unit std.

    Wide fields (``sigma >= 3``) are made on a grid coarser by ``sigma // 1.5`` and linearly
    interpolated up, which is several times cheaper and indistinguishable at that smoothness.
    """
    factor = max(1, int(sigma // 1.5))
    coarse = tuple(-(-n // factor) + 1 for n in shape) if factor > 1 else tuple(shape)
    noise = rng.standard_normal(coarse, dtype=np.float32)
    if sigma > 0:
        noise = ndimage.gaussian_filter(noise, sigma / factor, mode="wrap", truncate=3.0)
    for axis, n in enumerate(shape if factor > 1 else ()):
        position = np.arange(n, dtype=np.float32) / factor
        below = position.astype(np.intp)
        weight = (position - below.astype(np.float32)).reshape(
            [-1 if a == axis else 1 for a in range(len(shape))]
        )
        noise = noise.take(below, axis) * (1 - weight) + noise.take(below + 1, axis) * weight
    noise -= np.float32(noise.mean())
    std = float(noise.std())
    return noise / np.float32(std) if std > 0 else noise


def distance_to(mask: np.ndarray, limit: int) -> np.ndarray:
    """Euclidean distance (voxels) of every voxel to the nearest ``True`` voxel of ``mask``.

    Exact up to ``limit``; farther voxels get ``limit``. The phantom only needs distances of a
    few voxels, and bounding them makes this a handful of vectorised passes (a min-plus
    convolution with ``k**2`` per axis) instead of a full distance transform. The volume is
    mirror-padded by ``limit`` first so that voxels at the border also see particles just
    outside it (the microstructure continues beyond the field of view).
    """
    far = np.float32(3 * (limit + 1) ** 2)
    squared = np.where(np.pad(mask, limit, mode="symmetric"), np.float32(0), far)
    shifted = np.empty_like(squared)
    for axis in range(3):
        result = squared.copy()
        n = squared.shape[axis]
        for k in range(1, min(limit, n - 1) + 1):
            ahead = [slice(None)] * 3
            behind = [slice(None)] * 3
            ahead[axis], behind[axis] = slice(k, None), slice(None, n - k)
            ahead, behind = tuple(ahead), tuple(behind)
            cost = np.float32(k * k)
            np.add(squared[ahead], cost, out=shifted[behind])
            np.minimum(result[behind], shifted[behind], out=result[behind])
            np.add(squared[behind], cost, out=shifted[ahead])
            np.minimum(result[ahead], shifted[ahead], out=result[ahead])
        squared = result
    inner = (slice(limit, -limit),) * 3
    distance = np.sqrt(squared[inner])
    return np.minimum(distance, np.float32(limit), out=distance)
