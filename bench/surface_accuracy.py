"""Known-answer check of the surface areas: balls and tilted planes, cubic and anisotropic voxels.

Prints the relative error of ``battery_seg.analysis.surface_areas`` (2x2x2 weights corrected by
smoothed normals) and, for comparison, of the smoothed marching-cubes method ``stats`` used first
(scikit-image, Gaussian sigma 0.5 voxel, level 0.5), on the same label volumes.

    .venv/bin/python bench/surface_accuracy.py
    .venv/bin/python bench/surface_accuracy.py --before 8c16b6c   # + the 2x2x2 estimator

``--before REV`` imports ``_surface.py`` (and ``_configurations.py``) as they were at git
revision REV beside ours: a third column on the shapes, and every phase and interface area on
the tiled sample (128 x 256 x 256, 0.5 µm voxels) with both, timed in the same process.
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
    shape = (int(90 / spacing[0]), 40, 60)
    z, _, x = np.meshgrid(
        *[np.arange(n) * d for n, d in zip(shape, spacing, strict=True)], indexing="ij"
    )
    slope = math.tan(math.radians(degrees))
    # the plane must leave the box through its x faces, not its top, for the area below
    assert 12.3 + slope * (shape[2] - 1) * spacing[2] < (shape[0] - 1) * spacing[0]
    labels = np.where(z < 12.3 + slope * x, 1, 2).astype(np.uint8)
    area = (shape[1] - 1) * spacing[1] * (shape[2] - 1) * spacing[2]
    return labels, area / math.cos(math.radians(degrees))


def packed_balls(radius: float, gap: int) -> tuple[np.ndarray, float]:
    """27 balls of ``radius`` voxels on a grid, ``gap`` voxels apart (cubic voxels)."""
    pitch = int(2 * radius) + gap
    shape = (3 * pitch + 6,) * 3
    z, y, x = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    labels = np.ones(shape, dtype=np.uint8)
    for centre in np.ndindex(3, 3, 3):
        cz, cy, cx = 3 + radius + np.array(centre) * pitch + (0.3, 0.2, 0.1)
        labels[(z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= radius**2] = 2
    return labels, 27 * 4 * math.pi * radius**2


def marching_cubes_area(labels: np.ndarray, voxel_size) -> float:
    """The method before: smoothed mask, marching cubes at 0.5, mesh area (one phase)."""
    from scipy import ndimage
    from skimage import measure

    finest = min(voxel_size)
    sigma = [0.5 * math.sqrt(d / finest) for d in voxel_size]
    field = ndimage.gaussian_filter((labels == 2).astype(np.float32), sigma, mode="nearest")
    vertices, faces, _, _ = measure.marching_cubes(field, 0.5, spacing=tuple(voxel_size))
    return float(measure.mesh_surface_area(vertices, faces))


def _module_at(revision: str, name: str):
    """``battery_seg.analysis.<name>`` as it was at ``revision``, as ``<name>_before``."""
    root = Path(__file__).resolve().parents[1]
    source = subprocess.run(
        ["git", "show", f"{revision}:src/battery_seg/analysis/{name}.py"],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    source = source.replace("from ._configurations import", "from ._configurations_before import")
    path = Path(tempfile.mkdtemp()) / f"{name}_before.py"
    path.write_text(source)
    full = f"battery_seg.analysis.{name}_before"
    spec = importlib.util.spec_from_file_location(full, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[full] = module
    spec.loader.exec_module(module)
    return module


def _surface_module_at(revision: str):
    """``_surface.py`` at ``revision``, with the ``_configurations.py`` it imported then."""
    listed = subprocess.run(
        ["git", "ls-tree", "--name-only", revision, "src/battery_seg/analysis/"],
        cwd=Path(__file__).resolve().parents[1],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    if "_configurations.py" in listed:
        _module_at(revision, "_configurations")
    return _module_at(revision, "_surface")


def compare_with(before, revision: str) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from battery_seg.analysis import surface_areas
    from bench_analysis import tiled_sample

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
    before = _surface_module_at(args.before) if args.before else None

    def errors(labels, voxel_size, expected, key) -> str:
        estimates = [surface_areas(labels, "pore,solid", voxel_size)]
        if before is not None:
            estimates.append(before.surface_areas(labels, "pore,solid", voxel_size))
        found = [e.areas[key] if isinstance(key, str) else e.interfaces[key] for e in estimates]
        found.insert(1, marching_cubes_area(labels, voxel_size))
        return " / ".join(f"{area / expected - 1:+.1%}" for area in found)

    columns = "ours / marching cubes" + (
        f" / 2x2x2 weights alone at {args.before}" if before else ""
    )
    for voxel_size in VOXEL_SIZES:
        print(f"voxel size {voxel_size}: relative error {columns}")
        for radius in (3.0, 5.0, 8.0, 12.0, 20.0):
            expected = 4 * math.pi * radius**2
            found = errors(ball(radius, voxel_size), voxel_size, expected, "solid")
            print(f"  ball r={radius:4.0f}: {found}")
        for degrees in (0, 10, 15, 20, 25, 30, 35, 40, 45):
            labels, expected = tilted_plane(degrees, voxel_size)
            found = errors(labels, voxel_size, expected, ("pore", "solid"))
            print(f"  plane {degrees:2d} deg: {found}")
    print(f"packed balls, cubic voxels: relative error {columns}")
    for radius, gap in ((3.0, 1), (4.0, 1), (4.0, 2), (6.0, 1)):
        labels, expected = packed_balls(radius, gap)
        found = errors(labels, (1.0, 1.0, 1.0), expected, "solid")
        print(f"  27 balls r={radius:.0f}, {gap} voxel apart: {found}")
    if before is not None:
        compare_with(before, args.before)


if __name__ == "__main__":
    main()
