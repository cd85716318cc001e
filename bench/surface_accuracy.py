"""Known-answer check of the surface areas: balls and tilted planes, cubic and anisotropic voxels.

Prints the relative error of ``battery_seg.analysis.surface_areas`` (local 2x2x2 estimator) and,
for comparison, of the smoothed marching-cubes method ``stats`` used before (scikit-image,
Gaussian sigma 0.5 voxel, level 0.5), on the same label volumes.

    .venv/bin/python bench/surface_accuracy.py
    .venv/bin/python bench/surface_accuracy.py --before 5bc0184   # + agreement on the sample

``--before REV`` also compares every phase and interface area on the tiled sample (128 x 256 x
256, 0.5 µm voxels) with ``_surface.py`` as it was at git revision REV (imported beside ours).
"""

from __future__ import annotations

import argparse
import importlib.util
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

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


def _surface_module_at(revision: str):
    """``battery_seg.analysis._surface`` as it was at ``revision`` (relative imports intact)."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "show", f"{revision}:src/battery_seg/analysis/_surface.py"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    path = Path(tempfile.mkdtemp()) / "_surface_before.py"
    path.write_text(source)
    name = "battery_seg.analysis._surface_before"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def compare_with(revision: str) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from battery_seg.analysis import surface_areas
    from bench_analysis import tiled_sample

    before = _surface_module_at(revision)
    labels = np.asarray(tiled_sample((128, 256, 256)).compute())
    voxel_size = (0.5, 0.5, 0.5)
    start = time.perf_counter()
    ours = surface_areas(labels, "si-graphite", voxel_size)
    ours_s = time.perf_counter() - start
    start = time.perf_counter()
    theirs = before.surface_areas(labels, "si-graphite", voxel_size)
    print(
        f"tiled sample {labels.shape}, 0.5 µm: now {ours_s:.1f} s, at {revision} "
        f"{time.perf_counter() - start:.1f} s; area now / then - 1:"
    )
    for key in [*ours.areas, *ours.interfaces]:
        now = ours.areas[key] if key in ours.areas else ours.interfaces[key]
        then = theirs.areas[key] if key in theirs.areas else theirs.interfaces[key]
        label = key if isinstance(key, str) else " | ".join(key)
        print(f"  {label:20s} {now:10.4g} {then:10.4g} µm² {now / then - 1:+.1%}")


def main() -> None:
    from battery_seg.analysis import surface_areas

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", metavar="REV", help="also compare with _surface.py at REV")
    args = parser.parse_args()

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
    if args.before:
        compare_with(args.before)


if __name__ == "__main__":
    main()
