"""Known-answer check of the surface areas: balls and tilted planes, cubic and anisotropic voxels.

Prints the relative error of ``battery_seg.analysis.surface_areas`` (local 2x2x2 estimator) and,
for comparison, of the smoothed marching-cubes method ``stats`` used before (scikit-image,
Gaussian sigma 0.5 voxel, level 0.5), on the same label volumes.

    .venv/bin/python bench/surface_accuracy.py
"""

from __future__ import annotations

import math

import numpy as np

VOXEL_SIZES = ((1.0, 1.0, 1.0), (2.0, 1.0, 1.0), (1.0, 1.5, 0.7))


def ball(radius: float, voxel_size) -> np.ndarray:
    shape = [int(2 * radius / s) + 8 for s in voxel_size]
    centres = [
        (np.arange(n) - (n - 1) / 2) * s + 0.3 for n, s in zip(shape, voxel_size, strict=True)
    ]
    z, y, x = np.meshgrid(*centres, indexing="ij")
    return np.where(z**2 + y**2 + x**2 <= radius**2, 2, 1).astype(np.uint8)


def tilted_plane(degrees: float, voxel_size) -> tuple[np.ndarray, float]:
    spacing = np.asarray(voxel_size)
    shape = (int(70 / spacing[0]), 40, 60)
    z, _, x = np.meshgrid(
        *[np.arange(n) * d for n, d in zip(shape, spacing, strict=True)], indexing="ij"
    )
    labels = np.where(z < 12.3 + math.tan(math.radians(degrees)) * x, 1, 2).astype(np.uint8)
    area = (shape[1] - 1) * spacing[1] * (shape[2] - 1) * spacing[2]
    return labels, area / math.cos(math.radians(degrees))


def marching_cubes_area(labels: np.ndarray, voxel_size) -> float:
    """The method before: smoothed mask, marching cubes at 0.5, mesh area (one phase)."""
    from scipy import ndimage
    from skimage import measure

    finest = min(voxel_size)
    sigma = [0.5 * math.sqrt(d / finest) for d in voxel_size]
    field = ndimage.gaussian_filter((labels == 2).astype(np.float32), sigma, mode="nearest")
    vertices, faces, _, _ = measure.marching_cubes(field, 0.5, spacing=tuple(voxel_size))
    return float(measure.mesh_surface_area(vertices, faces))


def main() -> None:
    from battery_seg.analysis import surface_areas

    for voxel_size in VOXEL_SIZES:
        print(f"voxel size {voxel_size}: relative error local estimator / marching cubes")
        for radius in (3.0, 5.0, 8.0, 12.0, 20.0):
            labels = ball(radius, voxel_size)
            expected = 4 * math.pi * radius**2
            local = surface_areas(labels, "pore,solid", voxel_size).areas["solid"]
            mesh = marching_cubes_area(labels, voxel_size)
            print(
                f"  ball r={radius:4.0f}: {local / expected - 1:+.2%} / {mesh / expected - 1:+.2%}"
            )
        for degrees in (0, 10, 20, 30, 40, 45):
            labels, expected = tilted_plane(degrees, voxel_size)
            local = surface_areas(labels, "pore,solid", voxel_size).interfaces[("pore", "solid")]
            mesh = marching_cubes_area(labels, voxel_size)
            errors = f"{local / expected - 1:+.2%} / {mesh / expected - 1:+.2%}"
            print(f"  plane {degrees:2d} deg: {errors}")


if __name__ == "__main__":
    main()
