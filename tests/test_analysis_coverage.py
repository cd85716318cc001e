"""Surface coverage on a sphere with a half-cap of CBD, in µm with anisotropic voxels."""

from __future__ import annotations

import math

import numpy as np
import pytest

from battery_seg.analysis import AnalysisConfig, analyse

RADIUS, SHELL = 6.0, 1.0  # µm


def capped_sphere(voxel_size):
    """Active sphere in pore; a CBD shell over its upper half (z above the centre)."""
    edge = 2 * (RADIUS + SHELL) + 4.0
    shape = tuple(round(edge / v) for v in voxel_size)
    z, y, x = np.meshgrid(
        *[(np.arange(s) + 0.5) * v - edge / 2 for s, v in zip(shape, voxel_size, strict=True)],
        indexing="ij",
    )
    distance = np.sqrt(z**2 + y**2 + x**2)
    labels = np.ones(shape, dtype=np.uint8)  # pore
    labels[(distance <= RADIUS + SHELL) & (z > 0)] = 3  # cbd cap
    labels[distance <= RADIUS] = 2  # active
    return labels, float(np.prod([(s - 1) * v for s, v in zip(shape, voxel_size, strict=True)]))


@pytest.mark.parametrize("voxel_size", [(0.25, 0.25, 0.25), (0.4, 0.2, 0.2)])
def test_half_capped_sphere_is_half_covered(voxel_size):
    labels, volume = capped_sphere(voxel_size)
    config = AnalysisConfig("pore,active,cbd", voxel_size=voxel_size, connectivity=False)
    data = analyse(labels, config).to_dict()
    coverage = data["surface_coverage"]
    assert coverage["active"]["cbd"] == pytest.approx(0.5, abs=0.06)
    assert coverage["active"]["pore"] == pytest.approx(0.5, abs=0.06)
    for name in ("pore", "active", "cbd"):
        assert sum(coverage[name].values()) == pytest.approx(1.0)
        assert name not in coverage[name]
    half_sphere = 2 * math.pi * RADIUS**2  # the active surface that faces the pore
    assert data["active_area_density"] == pytest.approx(half_sphere / volume, rel=0.1)
    assert data["units"]["specific_surface_area"] == "1/µm"


def test_coverage_columns_in_the_csv():
    labels, _ = capped_sphere((0.5, 0.5, 0.5))
    config = AnalysisConfig("pore,active,cbd", voxel_size=(0.5, 0.5, 0.5), connectivity=False)
    result = analyse(labels, config)
    header = result.to_csv().splitlines()[0].split(",")
    assert header[-3:] == [
        "surface_coverage.pore",
        "surface_coverage.active",
        "surface_coverage.cbd",
    ]
    active = next(r for r in result.rows() if r["name"] == "active")
    assert active["surface_coverage.active"] == ""
    assert active["surface_coverage.cbd"] + active["surface_coverage.pore"] == pytest.approx(1.0)
