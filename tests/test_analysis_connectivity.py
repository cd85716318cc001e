"""Face connectivity, through/front/isolated fractions and tortuosity-ready masks."""

from __future__ import annotations

import numpy as np
import pytest

from battery_seg.analysis import Clusters, encode_labels, save_mask, through_mask
from battery_seg.errors import BatterySegError


@pytest.fixture
def labels() -> np.ndarray:
    """(z=4, y=3, x=5): 1 = pore, 2 = solid.

    Pore: a straight column at x=0 (through), a dead end from the front at x=2 (z 0-1), one
    touching only the back at x=4 (z 2-3), an isolated voxel at (z=2, y=1, x=2) and a voxel at
    (z=1, y=2, x=1) touching the column only diagonally (edge contact: not face-connected).
    """
    volume = np.full((4, 3, 5), 2, dtype=np.uint8)
    volume[:, 0, 0] = 1
    volume[0:2, 0, 2] = 1
    volume[2:4, 0, 4] = 1
    volume[2, 1, 2] = 1
    volume[1, 1, 1] = 1
    return volume


def test_fractions_by_how_clusters_touch_the_faces(labels):
    clusters = Clusters(labels == 1)
    assert clusters.count == 5
    along_z = clusters.connectivity(0)
    assert along_z.to_dict() == {
        "through": 4 / 10,
        "front": 2 / 10,
        "back": 2 / 10,
        "isolated": 2 / 10,
    }
    swapped = clusters.connectivity(0, front_face="high")
    assert (swapped.front, swapped.back) == (along_z.back, along_z.front)
    along_y = clusters.connectivity(1)  # y faces: y=0 holds the column; nothing reaches y=2
    assert along_y.through == 0.0
    assert along_y.front == pytest.approx(0.8)  # every cluster with a voxel at y=0


def test_through_mask_keeps_exactly_the_spanning_cluster(labels):
    mask = through_mask(labels, "pore", "z", phases="pore,solid")
    expected = np.zeros(labels.shape, dtype=np.uint8)
    expected[:, 0, 0] = 1
    np.testing.assert_array_equal(mask, expected)
    assert mask.dtype == np.uint8 and mask.flags.c_contiguous


def test_front_connected_mask_keeps_dead_ends_from_the_front(labels):
    mask = through_mask(labels, "pore", "z", front_connected=True, phases="pore,solid")
    expected = np.zeros(labels.shape, dtype=np.uint8)
    expected[:, 0, 0] = 1
    expected[0:2, 0, 2] = 1
    np.testing.assert_array_equal(mask, expected)
    back = through_mask(
        labels, "pore", "z", front_connected=True, phases="pore,solid", front_face="high"
    )
    assert back[2:4, 0, 4].tolist() == [1, 1] and back[0:2, 0, 2].tolist() == [0, 0]


def test_transport_axis_comes_first():
    labels = np.full((2, 3, 4), 2, dtype=np.uint8)
    labels[1, :, 1] = 1  # a pore line along y at z=1, x=1
    mask = through_mask(labels, 1, "y")  # the label value works without a phase set
    assert mask.shape == (3, 2, 4)
    expected = np.zeros((3, 2, 4), dtype=np.uint8)
    expected[:, 1, 1] = 1
    np.testing.assert_array_equal(mask, expected)
    assert through_mask(labels, 1, "x").sum() == 0


def test_network_of_several_phases_and_foreign_values():
    labels = np.array([[[0, 85]], [[170, 85]], [[170, 0]]], dtype=np.uint8)  # (3, 1, 2)
    phases = "pore=0,nmc=85,cbd=170"
    assert through_mask(labels, "nmc", "z", phases=phases).sum() == 0
    solid = through_mask(labels, ("nmc", "cbd"), "z", phases=phases)
    np.testing.assert_array_equal(solid[:, 0, :], [[0, 1], [1, 1], [1, 0]])
    np.testing.assert_array_equal(encode_labels(labels, phases)[:, 0, :], [[1, 2], [3, 2], [3, 1]])


def test_errors_name_the_fix(labels):
    with pytest.raises(BatterySegError, match="give the phase set"):
        through_mask(labels, "pore", "z")
    with pytest.raises(BatterySegError, match="No phase 'silicon'"):
        through_mask(labels, "silicon", "z", phases="pore,solid")
    with pytest.raises(BatterySegError, match="Unknown axis"):
        through_mask(labels, "pore", "w", phases="pore,solid")
    with pytest.raises(BatterySegError, match="Label values 2 are not"):
        through_mask(labels, "pore", "z", phases="pore=1,cbd=3")


def test_saved_mask_is_a_01_tiff_with_the_voxel_size(tmp_path, labels):
    import tifffile

    mask = through_mask(labels, "pore", "y", phases="pore,solid")
    path = save_mask(tmp_path / "pore_y.tif", mask, (0.5, 0.25, 0.125))
    with tifffile.TiffFile(path) as tif:
        np.testing.assert_array_equal(tif.asarray(), mask)
        assert tif.imagej_metadata["spacing"] == pytest.approx(0.5)
        x_resolution = tif.pages[0].tags["XResolution"].value
        assert x_resolution[0] / x_resolution[1] == pytest.approx(8.0)
    with pytest.raises(BatterySegError, match="already exists"):
        save_mask(path, mask, (1, 1, 1))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pore_y.tif"]  # no temporary left


@pytest.mark.realdata
def test_published_through_fractions_on_the_polaron_electrode(shared_data):
    import tifffile

    from battery_seg.analysis import AnalysisConfig, analyse

    labels = tifffile.imread(shared_data / "nmc_electrode_polaron_256.tiff")
    config = AnalysisConfig("pore=0,nmc=85,cbd=170", surfaces=False, profiles=False)
    result = analyse(labels, config).to_dict()["phases"]
    published = {"pore": (0.4499, 0.9989), "nmc": (0.4005, 0.9611), "cbd": (0.1496, 0.9740)}
    for name, (fraction, through) in published.items():
        assert round(result[name]["volume_fraction"], 4) == fraction
        assert round(result[name]["through_fraction"]["z"], 4) == through


def _chunked(encoded, chunks, tables, monkeypatch, slab_voxels=None):
    import dask.array as da

    import battery_seg.analysis._slabs as slabs_module
    from battery_seg.analysis._chunked_clusters import chunked_clusters_job
    from battery_seg.jobs import run_job

    if slab_voxels is not None:
        monkeypatch.setattr(slabs_module, "SLAB_VOXELS", slab_voxels)
    return run_job(chunked_clusters_job(da.from_array(encoded, chunks=chunks), tables))


def test_chunked_clusters_equal_in_memory_ones_on_uneven_chunks(monkeypatch):
    rng = np.random.default_rng(4)
    encoded = rng.integers(1, 4, size=(23, 17, 19)).astype(np.uint8)
    encoded[rng.random(encoded.shape) < 0.1] = 0  # unlabelled
    identity = np.array([0, 1, 2, 3, 0], np.uint8)
    network = np.array([0, 0, 1, 1, 0], np.uint8)  # phases 2 and 3 together
    plane = 17 * 19
    phases, solid = _chunked(
        encoded, ((5, 7, 1, 10), 8, 19), [identity, network], monkeypatch, 3 * plane
    )
    for axis in range(3):
        for front_face in ("low", "high"):
            for value in (1, 2, 3):
                chunked = phases.connectivity(value, axis, front_face).to_dict()
                whole = Clusters(encoded == value).connectivity(axis, front_face).to_dict()
                assert chunked == pytest.approx(whole, abs=1e-12)
            chunked = solid.connectivity(1, axis, front_face).to_dict()
            whole = Clusters(encoded >= 2).connectivity(axis, front_face).to_dict()
            assert chunked == pytest.approx(whole, abs=1e-12)


def test_a_phase_that_connects_only_through_block_faces(monkeypatch):
    """A zig-zag pore path whose every step lies in another slab: through only when joined."""
    encoded = np.full((12, 6, 6), 2, dtype=np.uint8)
    y = 0
    for start in range(0, 12, 3):  # slabs of 3 planes; the path moves sideways inside each
        encoded[start : start + 3, y, 1] = 1
        encoded[start + 2, y : y + 2, 1] = 1
        y += 1
    (phases,) = _chunked(encoded, ((3, 3, 3, 3), 6, 6), [np.arange(4, dtype=np.uint8)], monkeypatch)
    assert Clusters(encoded == 1).connectivity(0).through == 1.0
    assert phases.connectivity(1, 0).through == 1.0
    assert len(phases.sizes[phases.values == 1]) == 1  # four slab pieces joined into one
    # and a piece that only touches the next slab along an edge stays apart
    encoded[6:9, :, :] = 2
    encoded[6:9, 3, 2] = 1  # diagonal to the pieces above and below: not face-connected
    (phases,) = _chunked(encoded, ((3, 3, 3, 3), 6, 6), [np.arange(4, dtype=np.uint8)], monkeypatch)
    assert phases.connectivity(1, 0).to_dict() == Clusters(encoded == 1).connectivity(0).to_dict()
    assert phases.connectivity(1, 0).through == 0.0
