"""Bad input to the new metrics (round 2): degenerate microstructures give defined results or one
clear line, --pybamm refuses what a cell model cannot run with and checks what it needs before
any work, every JSON is strict, the text report shows every result asked for, and numeric options
are checked against their physical range."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from bad_input_helpers import digest, labels_volume, run_cli
from battery_seg.io import write_labels

VOXEL = (0.5, 0.5, 0.5)


def strict_json(path) -> dict:
    """The file parsed by a strict reader: NaN, Infinity and -Infinity are refused."""

    def refuse(constant):
        raise AssertionError(f"{path.name} holds the non-JSON constant {constant}")

    return json.loads(path.read_text(encoding="utf-8"), parse_constant=refuse)


def electrode() -> np.ndarray:
    """si-graphite labels with pore sheets through z (an electrolyte path) and every phase."""
    labels = np.full((10, 24, 24), 4, np.uint8)  # graphite
    labels[:, ::6, :] = 1  # pore sheets, through-connected along z
    labels[:, 3::6, ::5] = 3  # cbd
    labels[:, 1:3, 1:3] = 2  # silicon
    return labels


@pytest.fixture
def volumes(tmp_path):
    """Label files (si-graphite, voxel size 0.5 µm unless said) of degenerate microstructures."""
    lab = electrode()
    made = {
        "electrode": lab,
        "allpore": np.ones_like(lab),
        "allgraphite": np.full_like(lab, 4),
        "nopore": np.where(lab == 1, 3, lab),
        "noactive": np.where((lab == 2) | (lab == 4), 3, lab),
        "thin": lab[:1],
    }
    for name, labels in made.items():
        write_labels(tmp_path / f"{name}.tif", labels, phases="si-graphite", voxel_size=VOXEL)
    import tifffile

    tifffile.imwrite(tmp_path / "novoxel.tif", lab)  # no voxel size, no phases
    return tmp_path


@pytest.mark.parametrize("name", ["allpore", "allgraphite"])
def test_one_phase_filling_the_volume_has_no_sizes_with_a_note(volumes, capsys, name):
    before = digest(volumes)
    out = volumes / "out.json"
    printed, _ = run_cli(
        capsys, "stats", volumes / f"{name}.tif", "--size-distribution", "--json", out, code=0
    )
    data = strict_json(out)
    filling = "pore" if name == "allpore" else "graphite"
    assert data["phases"][filling]["size_distribution"] is None
    assert data["phases"][filling]["particles"] is None
    assert data["phases"]["cbd"]["size_distribution"] is None  # absent: no sizes either
    assert f"no size distribution or particles of {filling}: the phase fills" in printed
    assert "absent" in printed
    assert {k: v for k, v in digest(volumes).items() if k != str(out)} == before


def test_pybamm_checks_the_voxel_size_before_any_work(volumes, capsys):
    start = time.perf_counter()
    out = volumes / "cell.json"
    _, err = run_cli(capsys, "stats", volumes / "novoxel.tif", "--pybamm", out)
    assert "voxel size" in err and "--voxel-size" in err
    assert "estimated" not in err  # no tortuosity solve was planned
    assert time.perf_counter() - start < 5
    assert not out.exists()


@pytest.mark.parametrize(
    ("name", "extra", "words"),
    [
        ("electrode", ["--electrode", "positive"], "negative-electrode materials"),
        ("electrode", ["--axis", "y"], "--axis z"),
        ("thin", [], "thick along z"),
        ("nopore", [], "no pore voxels"),
        ("noactive", [], "no active-material voxels"),
        ("allpore", [], "no active-material voxels"),
        ("allgraphite", [], "no pore voxels"),
    ],
)
def test_pybamm_refuses_what_a_cell_model_cannot_run_with(volumes, capsys, name, extra, words):
    before = digest(volumes / f"{name}.tif")
    out = volumes / "cell.json"
    _, err = run_cli(capsys, "stats", volumes / f"{name}.tif", "--pybamm", out, *extra)
    assert words in err
    assert not out.exists()
    assert digest(volumes / f"{name}.tif") == before


def test_pybamm_of_an_electrode_is_strict_json_with_reasons_for_what_is_missing(volumes, capsys):
    out = volumes / "cell.json"
    run_cli(capsys, "stats", volumes / "electrode.tif", "--pybamm", out, code=0)
    data = strict_json(out)
    values = data["pybamm"]
    assert 0 < values["Negative electrode porosity"] < 1
    assert values["Negative electrode thickness [m]"] == pytest.approx(10 * 0.5e-6)
    radius = values["Negative particle radius [m]"]
    assert 0 < 2 * radius < values["Negative electrode thickness [m]"]
    assert "Negative electrode Bruggeman coefficient (electrode)" not in values
    assert any("no electrode Bruggeman coefficient" in note for note in data["notes"])


def test_the_report_shows_every_result_asked_for(volumes, capsys):
    out = volumes / "stats.json"
    printed, _ = run_cli(
        capsys,
        "stats",
        volumes / "electrode.tif",
        "--size-distribution",
        "--representativity",
        "--cbd-diffusivity",
        "0.1",
        "--conductivity",
        "active=1,cbd=0.01",
        "--no-surfaces",
        "--json",
        out,
        code=0,
    )
    data = strict_json(out)
    d50 = data["phases"]["graphite"]["size_distribution"]["d50_um"]
    count = data["phases"]["graphite"]["particles"]["count"]
    low, high = data["phases"]["pore"]["volume_fraction_ci95"]
    tau = data["transport"]["electrolyte_porous_cbd"]["z"]["tortuosity"]
    lines = printed.splitlines()
    graphite = [line for line in lines if line.startswith("graphite")]
    assert any(f"{d50:.3f}" in line and f" {count} " in line for line in graphite), printed
    assert any(f"({low:.4f}–{high:.4f})" in line for line in lines), printed
    assert any(
        line.startswith("electrolyte_porous_cbd z") and f"{tau:.3f}" in line for line in lines
    )
    assert any(line.startswith("electronic z") for line in lines)
    empty_rows = [line for line in lines if line.split()[1:] and set(line.split()[1:]) == {"-"}]
    assert not empty_rows, printed


@pytest.mark.parametrize(
    ("option", "words"),
    [
        (["--cbd-diffusivity", "5"], "(0, 1]"),
        (["--cbd-diffusivity", "0"], "(0, 1]"),
        (["--conductivity", "active=2"], "(0, 1]"),
        (["--conductivity", "cbd=0.1,cbd=0.2"], "cbd twice"),
        (["--conductivity", "active=1,graphite=0.5"], "graphite twice"),
        (["--network", "pore", "--network", "pore", "--tortuosity"], "share a name"),
        (["--network", "solid=silicon++graphite", "--tortuosity"], "empty or repeated"),
        (["--max-minutes", "0", "--tortuosity"], "must be positive"),
        (["--phases", "pore,,cbd,graphite"], "empty entry (number 2"),
    ],
)
def test_numbers_and_names_outside_their_range_are_refused_first(volumes, capsys, option, words):
    _, err = run_cli(capsys, "stats", volumes / "electrode.tif", *option)
    assert words in err


@pytest.mark.parametrize("phase", ["+", "", "pore+", "pore+pore"])
def test_an_empty_or_repeated_mask_phase_is_named(volumes, capsys, phase):
    out = volumes / "mask.tif"
    _, err = run_cli(capsys, "masks", volumes / "electrode.tif", "--phase", phase, "-o", out)
    assert "empty or repeated name" in err and "pore, silicon, cbd, graphite" in err
    assert not out.exists()


def test_transport_through_one_slice_is_refused_before_the_work(volumes, capsys):
    for option in (["--cbd-diffusivity", "0.1"], ["--conductivity", "active=1"]):
        _, err = run_cli(capsys, "stats", volumes / "thin.tif", *option)
        assert "one voxel thick along z" in err


def test_random_labels_with_every_metric_write_strict_json(tmp_path, capsys):
    labels = labels_volume((6, 24, 20), phases=4)
    path = write_labels(tmp_path / "lab.tif", labels, phases="si-graphite", voxel_size=VOXEL)
    out = tmp_path / "stats.json"
    args = ["--size-distribution", "--representativity", "--tortuosity", "--axis", "all"]
    run_cli(capsys, "stats", path, *args, "--json", out, code=0)
    strict_json(out)


def test_a_box_thinner_than_its_particles_gives_no_cell_model(tmp_path, capsys):
    """Two slices of wide discs: equivalent particle radius ~5 voxels, box 2 voxels thick."""
    y, x = np.mgrid[:40, :40]
    labels = np.ones((2, 40, 40), np.uint8)  # pore around the discs, through z everywhere
    for cy, cx in ((10, 10), (10, 30), (30, 10), (30, 30)):
        labels[:, (y - cy) ** 2 + (x - cx) ** 2 <= 64] = 4  # graphite discs of radius 8
    labels[:, 20, 20] = 3
    labels[:, 0, 0] = 2
    path = write_labels(tmp_path / "flat.tif", labels, phases="si-graphite", voxel_size=VOXEL)
    out = tmp_path / "cell.json"
    from battery_seg.cli import main

    assert main(["stats", str(path), "--pybamm", str(out)]) == 2  # known only after the sizes
    last = capsys.readouterr().err.splitlines()[-1]
    assert last.startswith("battery-seg stats: error: No cell-model parameters")
    assert "particle radius" in last and "exceeds the box's thickness" in last
    assert not out.exists()


@pytest.mark.parametrize("value", [np.nan, 1.5, -0.1])
def test_probabilities_outside_zero_to_one_are_refused(volumes, capsys, value):
    import zarr

    store = volumes / "probs.zarr"
    probabilities = zarr.open_array(str(store), mode="w", shape=(4, 10, 24, 24), dtype="f4")
    probabilities[:] = 0.25
    probabilities[2, 3, 4, 5] = value
    before = digest(store)
    _, err = run_cli(capsys, "stats", volumes / "electrode.tif", "--probabilities", store)
    assert "NaN or values outside [0, 1]" in err
    assert digest(store) == before
