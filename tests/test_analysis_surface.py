"""Surface and interfacial areas in physical units, against shapes of known area."""

from __future__ import annotations

import math

import dask.array as da
import numpy as np
import pytest

import battery_seg.analysis._surface as surface_module
from battery_seg.analysis import surface_areas
from battery_seg.jobs import run_job


def _ball(radius: float, voxel_size: tuple[float, float, float]) -> np.ndarray:
    """Labels 2 inside a ball of ``radius`` (physical units), 1 outside."""
    shape = [int(2 * radius / s) + 8 for s in voxel_size]
    centres = [
        (np.arange(n) - (n - 1) / 2) * s + 0.3 for n, s in zip(shape, voxel_size, strict=True)
    ]
    z, y, x = np.meshgrid(*centres, indexing="ij")
    return np.where(z**2 + y**2 + x**2 <= radius**2, 2, 1).astype(np.uint8)


@pytest.mark.parametrize("voxel_size", [(1.0, 1.0, 1.0), (2.0, 1.0, 1.0), (1.0, 1.5, 0.7)])
@pytest.mark.parametrize("radius", [5.0, 12.0])
def test_sphere_area_within_3_percent_also_with_anisotropic_voxels(voxel_size, radius):
    tolerance = 0.03
    result = surface_areas(_ball(radius, voxel_size), "pore,solid", voxel_size)
    expected = 4 * math.pi * radius**2
    assert result.areas["solid"] == pytest.approx(expected, rel=tolerance)
    assert result.interfaces[("pore", "solid")] == pytest.approx(expected, rel=tolerance)
    assert result.areas["pore"] == pytest.approx(result.areas["solid"], rel=1e-6)


def test_flat_interface_is_exact_and_specific_area_uses_the_sampled_volume():
    labels = np.ones((10, 12, 14), dtype=np.uint8)
    labels[4:] = 2
    voxel_size = (0.5, 2.0, 3.0)
    result = surface_areas(labels, "pore,solid", voxel_size)
    area = (12 - 1) * 2.0 * (14 - 1) * 3.0  # the mesh spans the voxel centres
    assert result.interfaces[("pore", "solid")] == pytest.approx(area, rel=1e-6)
    volume = (10 - 1) * 0.5 * area
    assert result.volume == pytest.approx(volume)
    assert result.specific("pore") == pytest.approx(area / volume, rel=1e-6)


def test_three_phase_interfaces_add_up_to_each_phase_area():
    labels = np.ones((30, 30, 30), dtype=np.uint8)
    labels[:, :, 15:] = 2
    z, y, x = np.mgrid[:30, :30, :30] - 14.6
    labels[z**2 + y**2 + x**2 <= 36] = 3  # a ball of radius 6 straddling the interface
    result = surface_areas(labels, "pore,solid,cbd")
    for name in ("pore", "solid", "cbd"):
        pairs = sum(a for pair, a in result.interfaces.items() if name in pair)
        assert pairs == pytest.approx(result.areas[name], rel=0.01)
    assert result.areas["cbd"] == pytest.approx(4 * math.pi * 36, rel=0.04)
    # the ball sits symmetrically on the plane: half its surface touches each side
    assert result.interfaces[("pore", "cbd")] == pytest.approx(
        result.interfaces[("solid", "cbd")], rel=0.05
    )
    plane = 29 * 29 - math.pi * (36 - 0.4**2)  # the plane minus the ball's cross-section
    # -2.1 %: the cells along the triple line count for no pair fully
    assert result.interfaces[("pore", "solid")] == pytest.approx(plane, rel=0.03)


def test_uneven_chunks_and_slabs_give_the_in_memory_areas(monkeypatch):
    labels = _ball(9.0, (1.0, 1.0, 1.0))
    labels[::7, ::5, :] = 3
    labels[2:5, 3:9, 4:11] = 0  # unlabelled voxels: no phase
    whole = surface_areas(labels, "pore,solid,cbd", (0.5, 1.0, 1.5))
    chunks = (5, 1, 9, 2, labels.shape[0] - 17)  # deliberately uneven, one single plane
    chunked = da.from_array(labels, chunks=(chunks, 7, 10))
    monkeypatch.setattr(surface_module, "_SLAB_VOXELS", 3 * labels.shape[1] * labels.shape[2])
    monkeypatch.setattr(surface_module, "_MIN_SLAB_PLANES", 1)
    events = []
    sliced = run_job(
        surface_module.surface_areas_job(chunked, "pore,solid,cbd", (0.5, 1.0, 1.5)),
        events.append,
    )
    assert len(events) > 5
    assert not any(e.message.startswith("surface areas") for e in events)  # no doubled prefix
    for name in whole.areas:
        assert sliced.areas[name] == pytest.approx(whole.areas[name], rel=1e-12)
    for pair in whole.interfaces:
        assert sliced.interfaces[pair] == pytest.approx(whole.interfaces[pair], rel=1e-12)


@pytest.mark.parametrize("voxel_size", [(1.0, 1.0, 1.0), (2.0, 1.0, 1.0), (1.0, 1.5, 0.7)])
def test_tilted_planes_within_3_percent(voxel_size):
    """A plane ``z = tan(angle) * x + c`` across the box: area = width_y * length_x / cos."""
    spacing = np.asarray(voxel_size)
    shape = (int(90 / spacing[0]), 40, 60)  # tall enough to leave through the x faces at 45°
    z, _, x = np.meshgrid(
        *[np.arange(n) * d for n, d in zip(shape, spacing, strict=True)], indexing="ij"
    )
    errors = []
    for degrees in (0, 10, 15, 20, 25, 30, 35, 40, 45):
        slope = math.tan(math.radians(degrees))
        assert 12.3 + slope * (shape[2] - 1) * spacing[2] < (shape[0] - 1) * spacing[0]
        labels = np.where(z < 12.3 + slope * x, 1, 2).astype(np.uint8)
        result = surface_areas(labels, "pore,solid", voxel_size)
        expected = (
            (shape[1] - 1)
            * spacing[1]
            * (shape[2] - 1)
            * spacing[2]
            / math.cos(math.radians(degrees))
        )
        errors.append(result.interfaces[("pore", "solid")] / expected - 1)
    # 2x2x2 weights alone: -8 % at 45° (cubic), +10 % at 30° (2:1:1 voxels)
    assert max(map(abs, errors)) < 0.03, errors


@pytest.mark.parametrize("gap", [1, 2])
def test_balls_one_or_two_voxels_apart_within_3_percent(gap):
    """27 balls of radius 4 voxels on a grid: normals smoothed across the gaps must not matter."""
    radius, pitch = 4.0, 8 + gap
    shape = (3 * pitch + 6,) * 3
    z, y, x = np.meshgrid(*[np.arange(n, dtype=float) for n in shape], indexing="ij")
    labels = np.ones(shape, dtype=np.uint8)
    for centre in np.ndindex(3, 3, 3):
        cz, cy, cx = 3 + radius + np.array(centre) * pitch + (0.3, 0.2, 0.1)
        labels[(z - cz) ** 2 + (y - cy) ** 2 + (x - cx) ** 2 <= radius**2] = 2
    result = surface_areas(labels, "pore,solid")
    assert result.areas["solid"] == pytest.approx(27 * 4 * math.pi * radius**2, rel=0.03)


def test_absent_phase_and_flat_volume_have_zero_area():
    labels = np.ones((5, 6, 7), dtype=np.uint8)
    result = surface_areas(labels, "pore,solid")
    assert result.areas == {"pore": 0.0, "solid": 0.0}
    single = surface_areas(np.ones((1, 6, 7), dtype=np.uint8), "pore,solid")
    assert single.areas["pore"] == 0.0
