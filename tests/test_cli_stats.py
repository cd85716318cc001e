"""``battery-seg stats`` and ``battery-seg masks`` on small label files."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tifffile

from battery_seg.cli import main


@pytest.fixture
def labels() -> np.ndarray:
    """(z=10, y=6, x=8), si-graphite values: pore channels, a dead-end pore, graphite."""
    volume = np.full((10, 6, 8), 4, dtype=np.uint8)
    volume[:, :, :3] = 1
    volume[:4, :, 5] = 1  # a pore dead end from the z=0 face
    volume[:, 4:, 6:] = 3
    volume[5, 1, 6] = 2
    return volume


@pytest.fixture
def label_file(tmp_path, labels):
    from battery_seg.io import write_labels

    return write_labels(
        tmp_path / "labels.tif", labels, phases="si-graphite", voxel_size=(0.5, 0.25, 0.25)
    )


def test_stats_prints_a_table_and_writes_json_and_csv(label_file, tmp_path, capsys):
    out_json, out_csv = tmp_path / "stats.json", tmp_path / "stats.csv"
    code = main(
        [
            "stats",
            str(label_file),
            "--axis",
            "all",
            "--tortuosity",
            "--device",
            "cpu",
            "--json",
            str(out_json),
            "--csv",
            str(out_csv),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "estimated tortuosity of pore along z: about" in captured.err
    assert "fraction" in captured.out and "graphite" in captured.out
    assert "convention taufactor: tau = eps / (D_eff / D_0)" in captured.out
    data = json.loads(out_json.read_text(encoding="utf-8"))
    pore = data["phases"]["pore"]
    assert pore["volume_fraction"] == pytest.approx((3 * 60 + 4 * 6) / 480)
    assert pore["through_fraction"]["z"] == pytest.approx(180 / 204)
    assert pore["front_fraction"]["z"] == pytest.approx(24 / 204)
    assert pore["tortuosity"]["x"] == "inf"
    assert pore["tortuosity"]["z"] == pytest.approx(pore["volume_fraction"] / (180 / 480), rel=0.01)
    assert data["voxel_size"] == [0.5, 0.25, 0.25] and data["voxel_size_source"] == "metadata"
    assert data["units"]["length"] == "µm"
    assert set(data["networks"]) == {"solid"}
    lines = out_csv.read_text(encoding="utf-8").splitlines()
    assert lines[0].startswith("name,kind,members,axis,volume_fraction,through_fraction")
    assert len(lines) == 1 + 5 * 3  # 4 phases + the solid network, 3 axes


def test_foreign_tiff_without_voxel_size_needs_name_value_phases(tmp_path, labels, capsys):
    path = tmp_path / "foreign.tif"
    tifffile.imwrite(path, np.choose(labels - 1, [0, 40, 170, 85]).astype(np.uint8))
    assert main(["stats", str(path), "--no-surfaces"]) == 2
    assert "Label values 40, 85, 170 are not in the phase set" in capsys.readouterr().err
    out = tmp_path / "stats.json"
    code = main(
        [
            "stats",
            str(path),
            "--phases",
            "pore=0,silicon=40,cbd=170,graphite=85",
            "--no-surfaces",
            "--json",
            str(out),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "no voxel size in the metadata: assumed isotropic 1 voxel" in captured.out
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["voxel_size_note"] == "no voxel size in the metadata: assumed isotropic 1 voxel"
    assert data["phases"]["cbd"]["volume_fraction"] == pytest.approx(np.mean(labels == 3))
    assert (
        main(
            [
                "stats",
                str(path),
                "--phases",
                "pore=0,silicon=40,cbd=170,graphite=85",
                "--voxel-size",
                "1",
                "2",
                "2",
                "--no-surfaces",
                "--json",
                str(out),
                "--overwrite",
            ]
        )
        == 0
    )
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["voxel_size"] == [1.0, 2.0, 2.0] and data["voxel_size_source"] == "user"


def test_outputs_are_never_overwritten_without_the_flag(label_file, tmp_path, capsys):
    out = tmp_path / "stats.json"
    out.write_text("keep me")
    assert main(["stats", str(label_file), "--json", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert out.read_text() == "keep me"


def test_bad_options_are_explained(label_file, capsys):
    assert main(["stats", str(label_file), "--roi", "0:5,0:6"]) == 2
    assert "three start:stop ranges" in capsys.readouterr().err
    assert main(["stats", str(label_file), "--network", "ionic=electrolyte"]) == 2
    assert "No phase 'electrolyte'" in capsys.readouterr().err
    assert main(["stats", str(label_file) + ".missing"]) == 2


def test_region_of_interest_and_zarr_input(tmp_path, labels, capsys):
    from battery_seg.io import write_labels

    store = write_labels(
        tmp_path / "labels.zarr", labels, phases="si-graphite", voxel_size=(0.5, 0.25, 0.25)
    )
    out = tmp_path / "roi.json"
    assert (
        main(["stats", str(store), "--roi", "0:10,0:6,0:4", "--no-surfaces", "--json", str(out)])
        == 0
    ), capsys.readouterr().err
    data = json.loads(out.read_text(encoding="utf-8"))
    assert data["shape"] == [10, 6, 4]
    assert data["phases"]["pore"]["volume_fraction"] == pytest.approx(3 / 4)


def test_masks_writes_the_through_connected_phase_transport_axis_first(
    label_file, tmp_path, labels, capsys
):
    out = tmp_path / "pore_z.tif"
    assert main(["masks", str(label_file), "--phase", "pore", "--axis", "z", "-o", str(out)]) == 0
    assert "through-connected pore along z" in capsys.readouterr().out
    mask = tifffile.imread(out)
    expected = np.zeros(labels.shape, dtype=np.uint8)
    expected[:, :, :3] = 1
    assert mask.dtype == np.uint8
    np.testing.assert_array_equal(mask, expected)
    with tifffile.TiffFile(out) as tif:
        assert tif.imagej_metadata["spacing"] == pytest.approx(0.5)
    assert main(["masks", str(label_file), "--phase", "pore", "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    front = tmp_path / "pore_x_front.tif"
    assert (
        main(
            [
                "masks",
                str(label_file),
                "--phase",
                "pore",
                "--axis",
                "x",
                "--front-connected",
                "-o",
                str(front),
            ]
        )
        == 0
    )
    front_mask = tifffile.imread(front)
    assert front_mask.shape == (8, 10, 6)  # x first, then z and y
    channels = (labels == 1) & (np.arange(8) < 3)  # the dead end at x=5 touches no x face
    np.testing.assert_array_equal(front_mask, np.moveaxis(channels, 2, 0).astype(np.uint8))
    solid = tmp_path / "solid.tif"
    assert (
        main(
            [
                "masks",
                str(label_file),
                "--phase",
                "graphite+cbd+silicon",
                "--axis",
                "y",
                "-o",
                str(solid),
            ]
        )
        == 0
    )
    assert tifffile.imread(solid).sum() == np.isin(labels, (2, 3, 4)).sum()
    assert main(["masks", str(label_file), "--phase", "nmc", "-o", str(tmp_path / "x.tif")]) == 2
    assert "No phase 'nmc'" in capsys.readouterr().err


def test_probabilities_from_a_zarr_array_give_uncertainty_ranges(label_file, tmp_path, labels):
    import zarr

    onehot = np.stack([(labels == v) for v in range(1, 5)]).astype(np.uint8) * 255
    onehot[0, :, :, 3] = 128  # a pore-or-not column: in the mask at 0.3, out of it at 0.7
    store = zarr.create_array(
        tmp_path / "probabilities.zarr", shape=onehot.shape, dtype="uint8", chunks=(1, 10, 6, 8)
    )
    store[:] = onehot
    out = tmp_path / "stats.json"
    assert (
        main(
            [
                "stats",
                str(label_file),
                "--probabilities",
                str(tmp_path / "probabilities.zarr"),
                "--no-surfaces",
                "--json",
                str(out),
            ]
        )
        == 0
    )
    pore = json.loads(out.read_text(encoding="utf-8"))["uncertainty"]["phases"]["pore"]
    assert pore["volume_fraction"]["low_threshold"] == pytest.approx((204 + 60) / 480)
    assert pore["volume_fraction"]["high_threshold"] == pytest.approx(204 / 480)
    assert main(["stats", str(label_file), "--probabilities", str(tmp_path / "none.zarr")]) == 2


def test_stats_writes_the_cell_model_metrics_under_the_documented_names(label_file, tmp_path):
    out_json, out_csv = tmp_path / "stats.json", tmp_path / "stats.csv"
    args = ["stats", str(label_file), "--size-distribution", "--representativity"]
    args += ["--cbd-diffusivity", "0.1", "--conductivity", "active=1,cbd=0.01", "--device", "cpu"]
    assert main([*args, "--json", str(out_json), "--csv", str(out_csv)]) == 0
    data = json.loads(out_json.read_text(encoding="utf-8"))
    graphite = data["phases"]["graphite"]
    assert set(graphite["size_distribution"]) >= {"d10_um", "d50_um", "d90_um"}
    assert set(graphite["particles"]) >= {"count", "d50_um", "sphericity_mean"}
    low, high = graphite["volume_fraction_ci95"]
    assert low <= graphite["volume_fraction"] <= high
    assert sum(data["surface_coverage"]["graphite"].values()) == pytest.approx(1.0)
    assert set(data["surface_coverage"]["graphite"]) == {"pore", "silicon", "cbd"}
    assert data["transport"]["electrolyte_porous_cbd"]["z"]["conductivities"] == {
        "pore": 1.0,
        "cbd": 0.1,
    }
    assert data["transport"]["electronic"]["z"]["conductivities"] == {
        "silicon": 1.0,
        "cbd": 0.01,
        "graphite": 1.0,
    }
    assert data["config"]["cbd_diffusivity"] == 0.1
    header = out_csv.read_text().splitlines()[0].split(",")
    assert {"size_distribution.d50_um", "particles.count", "volume_fraction_ci95_low"} <= set(
        header
    )
    assert "surface_coverage.graphite" in header


def test_stats_refuses_a_cell_model_export_without_the_thickness_axis(label_file, tmp_path, capsys):
    args = ["stats", str(label_file), "--axis", "x", "--pybamm", str(tmp_path / "p.json")]
    assert main(args) != 0
    assert "need the through-thickness axis z" in capsys.readouterr().err
    assert not (tmp_path / "p.json").exists()
