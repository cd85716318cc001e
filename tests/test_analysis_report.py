"""The analyse job end to end: config, result dict/JSON/CSV, uncertainty, notes, cancel."""

from __future__ import annotations

import csv
import io
import json
import math
import subprocess
import sys

import numpy as np
import pytest

from battery_seg.analysis import CSV_COLUMNS, AnalysisConfig, Network, analyse, analyse_job
from battery_seg.errors import BatterySegError
from battery_seg.jobs import Progress, run_job


@pytest.fixture
def labels() -> np.ndarray:
    """(z=12, y=8, x=10), si-graphite values: pore channels, graphite slab, silicon, cbd."""
    volume = np.full((12, 8, 10), 4, dtype=np.uint8)  # graphite
    volume[:, :, :4] = 1  # pore: straight through z
    volume[:, 6:, 4:] = 3  # cbd: straight through z
    volume[3:5, 2:4, 6:8] = 2  # silicon: an isolated particle
    return volume


def _config(**changes) -> AnalysisConfig:
    base = dict(
        phases="si-graphite",
        voxel_size=(0.5, 0.25, 0.25),
        voxel_size_source="metadata",
        device="cpu",
        conv_crit=1e-3,
    )
    return AnalysisConfig(**{**base, **changes})


def test_result_dict_has_the_documented_layout(labels):
    result = analyse(labels, _config(axes="all", tortuosity=True))
    data = result.to_dict()
    pore = data["phases"]["pore"]
    assert pore["volume_fraction"] == pytest.approx(0.4)
    assert pore["through_fraction"] == {"z": 1.0, "y": 1.0, "x": 0.0}
    assert pore["tortuosity"]["z"] == pytest.approx(1.0, abs=1e-4)
    assert pore["tortuosity"]["x"] == math.inf
    assert "does not percolate along x" in pore["tortuosity_note"]["x"]
    assert pore["effective_diffusivity"]["z"] == pytest.approx(0.4, rel=1e-4)
    assert pore["macmullin"]["z"] == pytest.approx(2.5, rel=1e-4)
    assert pore["bruggeman_tortuosity"] == pytest.approx(0.4**-0.5)
    assert data["phases"]["silicon"]["isolated_fraction"] == {"z": 1.0, "y": 1.0, "x": 1.0}
    solid = data["networks"]["solid"]
    assert solid["phases"] == ["silicon", "cbd", "graphite"]
    assert solid["volume_fraction"] == pytest.approx(0.6)
    assert solid["tortuosity"]["z"] == pytest.approx(1.0, abs=1e-3)
    # a flat pore | graphite interface from y = 0 to the cbd at y = 5.5 pitches (0.25 um),
    # along 11 z pitches (0.5 um)
    assert data["interfaces"]["pore|graphite"]["area"] == pytest.approx(
        5.5 * 0.25 * 11 * 0.5, rel=0.02
    )
    assert pore["specific_surface_area"] == pytest.approx(
        pore["surface_area"] / (11 * 0.5 * 7 * 0.25 * 9 * 0.25)
    )
    assert data["profiles"]["z"]["position"][:2] == [0.25, 0.75]
    assert data["profiles"]["x"]["pore"] == [1.0] * 4 + [0.0] * 6
    assert data["convention"].startswith("taufactor: tau = eps / (D_eff / D_0)")
    assert data["units"]["specific_surface_area"] == "1/µm"
    assert data["voxel_size"] == [0.5, 0.25, 0.25] and data["voxel_size_note"] == ""
    assert data["config"]["networks"] == ["pore", "solid=silicon+cbd+graphite"]


def test_json_and_csv_exports_are_complete_and_atomic(labels, tmp_path):
    result = analyse(labels, _config(axes=("z", "x"), tortuosity=True, surfaces=False))
    path = tmp_path / "stats.json"
    text = result.to_json(path)
    data = json.loads(path.read_text(encoding="utf-8"))
    assert json.loads(text) == data
    assert data["phases"]["pore"]["tortuosity"] == {"z": pytest.approx(1.0, abs=1e-4), "x": "inf"}
    with pytest.raises(BatterySegError, match="already exists"):
        result.to_json(path)
    result.to_csv(tmp_path / "stats.csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "stats.csv").read_text())))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [(r["name"], r["axis"]) for r in rows] == [
        (n, a) for n in ("pore", "silicon", "cbd", "graphite", "solid") for a in ("z", "x")
    ]
    assert rows[0]["convention"] == "taufactor" and rows[0]["length_unit"] == "µm"
    assert float(rows[0]["tortuosity"]) == pytest.approx(1.0, abs=1e-4)
    assert rows[1]["tortuosity"] == "inf"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["stats.csv", "stats.json"]


def test_missing_voxel_size_is_assumed_isotropic_and_said(labels):
    result = analyse(labels, AnalysisConfig("si-graphite", surfaces=False, connectivity=False))
    data = result.to_dict()
    assert data["voxel_size_note"] == "no voxel size in the metadata: assumed isotropic 1 voxel"
    assert data["units"]["length"] == "voxel"
    assert "assumed isotropic 1 voxel" in result.format_table()


def _probabilities(labels: np.ndarray, k: int, blur: float) -> np.ndarray:
    from scipy import ndimage

    onehot = np.stack([(labels == v).astype(np.float32) for v in range(1, k + 1)])
    smooth = np.stack([ndimage.gaussian_filter(p, blur) for p in onehot])
    return smooth / smooth.sum(axis=0, keepdims=True)


def test_uncertainty_reports_each_number_at_both_thresholds(labels):
    probabilities = _probabilities(labels, 4, 1.0)
    config = _config(tortuosity=True, surfaces=True, thresholds=(0.3, 0.7))
    result = analyse(labels, config, probabilities=probabilities)
    pore = result.uncertainty["phases"]["pore"]
    expected_low = float((probabilities[0] >= 0.3).mean())
    expected_high = float((probabilities[0] >= 0.7).mean())
    assert pore["volume_fraction"]["low_threshold"] == pytest.approx(expected_low)
    assert pore["volume_fraction"]["high_threshold"] == pytest.approx(expected_high)
    assert pore["volume_fraction"]["range"] == pytest.approx([expected_high, expected_low])
    low, high = pore["tortuosity"]["z"]["range"]
    assert low <= result.tortuosity["pore"]["z"].tortuosity <= high + 1e-6
    assert result.uncertainty["thresholds"] == [0.3, 0.7]
    assert set(result.uncertainty["networks"]) == {"solid"}
    row = result.rows()[0]
    assert row["volume_fraction_min"] == pytest.approx(expected_high)
    # uint8 probabilities as the segmentation writes them (255 = 1.0) give the same masks
    as_uint8 = np.round(probabilities * 255).astype(np.uint8)
    again = analyse(labels, config, probabilities=as_uint8).uncertainty["phases"]["pore"]
    assert again["volume_fraction"]["range"] == pytest.approx(
        [float((as_uint8[0] >= 179).mean()), float((as_uint8[0] >= 77).mean())]
    )
    with pytest.raises(BatterySegError, match=r"shape \(phases, Z, Y, X\)"):
        analyse(labels, config, probabilities=probabilities[:3])


def test_progress_spans_the_stages_and_cancel_stops_at_a_yield(labels):
    events = []
    run_job(analyse_job(labels, _config(tortuosity=True)), events.append)
    assert all(isinstance(e, Progress) for e in events)
    assert [e.step for e in events] == sorted(e.step for e in events)
    assert events[-1].step == events[-1].total
    messages = " ".join(e.message for e in events)
    for stage in ("volume fractions", "surface areas", "connectivity", "tortuosity pore"):
        assert stage in messages
    assert any("estimate" in e.data for e in events)
    job = analyse_job(labels, _config(tortuosity=True))
    next(job)
    job.close()
    with pytest.raises(StopIteration):
        next(job)


def test_region_of_interest_and_kept_masks(labels):
    config = _config(roi=((2, 10), (0, 8), (0, 6)), keep_masks=True, surfaces=False)
    result = analyse(labels, config)
    assert result.shape == (8, 8, 6)
    assert result.volume_fractions["pore"] == pytest.approx(4 / 6)
    mask = result.masks[("pore", "z")]
    expected = np.zeros((8, 8, 6), dtype=np.uint8)
    expected[:, :, :4] = 1
    np.testing.assert_array_equal(mask, expected)
    assert result.positions("z")[0] == pytest.approx((2 + 0.5) * 0.5)


def test_config_validates_and_names_the_fix():
    with pytest.raises(BatterySegError, match="Invalid voxel size"):
        AnalysisConfig(voxel_size=(1, 0, 1))
    with pytest.raises(BatterySegError, match="convention"):
        AnalysisConfig(convention="porespy")
    with pytest.raises(BatterySegError, match="No phase 'nmc'"):
        AnalysisConfig("si-graphite", networks=("nmc",))
    with pytest.raises(BatterySegError, match="thresholds"):
        AnalysisConfig(thresholds=(0.8, 0.2))
    with pytest.raises(BatterySegError, match="Unknown axis"):
        AnalysisConfig(axes=("w",))
    assert AnalysisConfig(axes="all").axes == ("z", "y", "x")
    assert AnalysisConfig("nmc").transport_networks == (
        Network("pore", ("pore",)),
        Network("solid", ("active", "cbd")),
    )
    assert AnalysisConfig("si-graphite", networks=("solid=graphite+cbd",)).networks == (
        Network("solid", ("graphite", "cbd")),
    )


def test_huge_in_memory_request_is_refused_before_any_work(labels):
    config = _config(max_memory_bytes=100, surfaces=False, size_distribution=True)
    events = []
    with pytest.raises(BatterySegError, match=r"in memory.*--roi.*--force"):
        run_job(analyse_job(labels, config), events.append)
    assert events == []
    streamed = analyse(labels, _config(max_memory_bytes=100, surfaces=False))  # out of core
    assert streamed.connectivity["pore"]["z"].through == 1.0
    assert streamed.connectivity["silicon"]["z"].isolated == 1.0


def test_tortuosity_is_refused_up_front_with_a_region_that_fits(labels):
    config = _config(tortuosity=True, max_memory_bytes=72 * 12 * 4 * 5)  # 72 bytes per voxel
    events = []
    with pytest.raises(BatterySegError, match=r"GB on cpu.*--roi 0:12,2:6,2:7\)"):
        run_job(analyse_job(labels, config.with_changes(roi=None)), events.append)
    assert events == []
    run_job(analyse_job(labels, config.with_changes(max_memory_bytes=None)), events.append)
    first = [e.data.get("estimate", "") for e in events[:2]]  # pore, solid: before any work
    assert first[0].startswith("tortuosity of pore along z: about")
    assert first[1].startswith("tortuosity of solid along z: about")


def test_importing_the_analysis_loads_no_torch_and_no_qt():
    code = (
        "import sys, json, battery_seg.analysis; print(json.dumps(sorted(m for m in "
        "sys.modules if m.split('.')[0] in ('torch', 'qtpy', 'PyQt5', 'napari', "
        "'magicgui', 'taufactor'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_a_voxel_size_given_in_the_api_is_physical():
    from battery_seg.analysis import AnalysisConfig

    assert AnalysisConfig("nmc", voxel_size=(0.39, 0.39, 0.39)).voxel_size_source == "user"
    assert AnalysisConfig("nmc").isotropic_default
    from_file = AnalysisConfig("nmc", voxel_size=0.5, voxel_size_source="metadata")
    assert from_file.voxel_size_source == "metadata"
