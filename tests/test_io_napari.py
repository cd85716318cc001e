"""The npe2 reader and writer functions, called directly (no viewer)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tifffile
import zarr

from battery_seg._reader import get_reader, read_volume
from battery_seg._writer import write_labels_layer
from battery_seg.errors import BatterySegError
from battery_seg.io import open_volume, write_labels
from battery_seg.phases import PhaseSet

SHAPE = (10, 16, 12)


@pytest.fixture
def image() -> np.ndarray:
    return np.random.default_rng(0).integers(100, 5000, SHAPE, dtype=np.uint16)


def _write_scan(path, image) -> None:
    """An ImageJ TIFF with voxels of 0.5 x 0.25 x 0.25 µm."""
    tifffile.imwrite(
        path,
        image,
        imagej=True,
        resolution=(4.0, 4.0),
        metadata={"axes": "ZYX", "spacing": 0.5, "unit": "micron"},
    )


def _layers(path):
    reader = get_reader(str(path))
    assert reader is not None
    return reader(str(path))


def test_get_reader_claims_our_formats_only(tmp_path, image):
    tifffile.imwrite(tmp_path / "a.tif", image)
    with h5py.File(tmp_path / "b.h5", "w") as f:
        f["v"] = image
    (tmp_path / "slices").mkdir()
    tifffile.imwrite(tmp_path / "slices" / "s0.tif", image[0])
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "x.txt").write_text("x")
    (tmp_path / "c.png").write_bytes(b"png")
    for claimed in ("a.tif", "b.h5", "b.h5:/v", "slices", "c.zarr"):
        if claimed == "c.zarr":
            zarr.open_group(store=str(tmp_path / claimed), mode="w").create_array(
                "v", shape=SHAPE, dtype="uint8"
            )
        assert get_reader(str(tmp_path / claimed)) is read_volume, claimed
    assert get_reader([str(tmp_path / "a.tif")]) is read_volume
    for refused in ("other", "c.png", "missing.png"):
        assert get_reader(str(tmp_path / refused)) is None, refused
    assert get_reader([str(tmp_path / "a.tif"), str(tmp_path / "b.h5")]) is None


def test_image_layer_at_physical_scale(tmp_path, image):
    from napari.layers import Layer

    path = tmp_path / "scan.tif"
    _write_scan(path, image)
    [(data, kwargs, kind)] = _layers(path)
    assert kind == "image" and kwargs["name"] == "scan" and kwargs["multiscale"] is False
    assert kwargs["scale"] == (0.5, 0.25, 0.25)
    assert kwargs["contrast_limits"] == (image.min(), image.max())
    assert kwargs["metadata"]["voxel_size_source"] == "metadata"
    np.testing.assert_array_equal(data.compute(), image)
    layer = Layer.create(data, kwargs, kind)
    np.testing.assert_allclose(layer.scale, (0.5, 0.25, 0.25))
    assert str(layer.units[0]) == "micrometer"


def test_pyramid_becomes_multiscale(tmp_path, image):
    group = zarr.open_group(store=str(tmp_path / "p.zarr"), mode="w", zarr_format=2)
    datasets = []
    for level in range(2):
        data = image[:, :: 2**level, :: 2**level]
        group.create_array(str(level), shape=data.shape, dtype=data.dtype)[:] = data
        datasets.append(
            {
                "path": str(level),
                "coordinateTransformations": [
                    {"type": "scale", "scale": [1.0, 2.0**level, 2.0**level]}
                ],
            }
        )
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "datasets": datasets,
            "axes": [{"name": a, "type": "space", "unit": "micrometer"} for a in "zyx"],
        }
    ]
    [(data, kwargs, kind)] = _layers(tmp_path / "p.zarr")
    assert kind == "image" and kwargs["multiscale"] is True
    assert [d.shape for d in data] == [SHAPE, (10, 8, 6)]
    assert kwargs["contrast_limits"] == (image.min(), image.max())  # small: exact


def test_label_file_becomes_labels_layer_with_phase_colours(tmp_path):
    from napari.layers import Layer
    from napari.utils.colormaps import DirectLabelColormap

    labels = np.random.default_rng(1).integers(0, 4, SHAPE, dtype=np.uint8)
    path = write_labels(tmp_path / "seg.zarr", labels, phases="nmc", voxel_size=(2, 1, 1))
    [(data, kwargs, kind)] = _layers(path)
    phases = PhaseSet.parse("nmc")
    assert kind == "labels" and kwargs["colormap"] == phases.colormap()
    assert kwargs["metadata"]["phases"] == phases.to_dict()
    assert list(kwargs["features"]["phase"]) == ["unlabelled", "pore", "active", "cbd"]
    layer = Layer.create(data, kwargs, kind)
    np.testing.assert_allclose(layer.scale, (2, 1, 1))
    assert isinstance(layer.colormap, DirectLabelColormap)
    np.testing.assert_allclose(layer.colormap.color_dict[3], [0, 0x9E / 255, 0x73 / 255, 1])
    assert layer.features["phase"].tolist()[1] == "pore"


def test_multichannel_file_opens_one_layer_per_channel(tmp_path):
    data = np.stack([np.full(SHAPE, c, np.uint8) for c in range(3)], axis=1)  # Z C Y X
    path = tmp_path / "channels.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZCYX"})
    layers = _layers(path)
    assert [kw["name"] for _, kw, _ in layers] == [f"channels [channel {c}]" for c in range(3)]
    assert [int(d[0, 0, 0].compute()) for d, _, _ in layers] == [0, 1, 2]


def test_hdf5_with_several_volumes_opens_each(tmp_path, image):
    path = tmp_path / "two.h5"
    with h5py.File(path, "w") as f:
        f["recon/raw"] = image
        f["recon/filtered"] = image // 2
        f["angles"] = np.arange(3.0)
    layers = _layers(path)
    assert sorted(kw["name"] for _, kw, _ in layers) == ["two recon/filtered", "two recon/raw"]
    by_name = {kw["name"]: data for data, kw, _ in layers}
    np.testing.assert_array_equal(by_name["two recon/filtered"].compute(), image // 2)


def test_reader_raises_user_errors(tmp_path):
    (tmp_path / "fake.tif").write_text("no tiff")
    with pytest.raises(BatterySegError, match="could not be read as a TIFF stack"):
        _layers(tmp_path / "fake.tif")


# -- writer --------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["saved.zarr", "saved.tif"])
def test_writer_uses_layer_phases_and_scale(tmp_path, name):
    labels = np.random.default_rng(2).integers(0, 3, SHAPE, dtype=np.int32)
    meta = {
        "scale": (2.0, 0.5, 0.5),
        "metadata": {"phases": PhaseSet.parse("nmc").to_dict(), "unit": "µm"},
    }
    [written] = write_labels_layer(str(tmp_path / name), labels, meta)
    vol = open_volume(written)
    np.testing.assert_array_equal(vol.data.compute(), labels)
    assert vol.phases.names == ("pore", "active", "cbd")
    assert vol.voxel_size == (2.0, 0.5, 0.5) and vol.unit == "µm"


def test_writer_infers_phases_and_units(tmp_path):
    small = np.zeros(SHAPE, np.uint8)
    small[0, 0, :4] = [1, 2, 3, 4]
    [written] = write_labels_layer(str(tmp_path / "a.zarr"), small, {"scale": (1, 1, 1)})
    vol = open_volume(written)
    assert vol.phases.preset == "si-graphite" and vol.unit == "pixel"
    many = small.copy()
    many[0, 0, 5] = 6
    [written] = write_labels_layer(
        str(tmp_path / "b"),
        [many, many[:, ::2, ::2]],
        {"scale": (1, 0.5, 0.5), "units": ("nanometer",) * 3},
    )
    assert written.endswith("b.zarr")
    vol = open_volume(written)
    assert vol.phases.names == tuple(f"phase{i}" for i in range(1, 7)) and vol.unit == "µm"


def test_writer_replaces_only_its_own_files(tmp_path):
    labels = np.ones(SHAPE, np.uint8)
    ours = write_labels(tmp_path / "ours.tif", labels, phases="si-graphite", voxel_size=1)
    write_labels_layer(str(ours), labels * 2, {"scale": (1, 1, 1)})
    assert int(open_volume(ours).data.max().compute()) == 2
    foreign = tmp_path / "foreign.tif"
    tifffile.imwrite(foreign, labels)
    with pytest.raises(BatterySegError, match="already exists"):
        write_labels_layer(str(foreign), labels, {"scale": (1, 1, 1)})
    assert tifffile.imread(foreign).max() == 1


def test_contrast_limits_come_from_a_small_sample(tmp_path, monkeypatch):
    from zarr.storage import LocalStore

    path = tmp_path / "big.zarr"
    group = zarr.open_group(store=str(path), mode="w", zarr_format=2)
    array = group.create_array(
        "0", shape=(512, 1024, 1024), chunks=(64, 256, 256), dtype="uint16", fill_value=0
    )
    array[200:264, :256, :256] = 7  # one stored chunk, in the slab of the middle slice
    group.attrs["multiscales"] = [
        {
            "version": "0.4",
            "datasets": [{"path": "0"}],
            "axes": [{"name": a, "type": "space"} for a in "zyx"],
        }
    ]
    keys: list[str] = []
    original = LocalStore.get

    async def counting_get(self, key, *args, **kwargs):
        keys.append(key)
        return await original(self, key, *args, **kwargs)

    monkeypatch.setattr(LocalStore, "get", counting_get)
    [(_, kwargs, _)] = _layers(path)
    assert kwargs["contrast_limits"] == (0.0, 7.0)
    metadata = {".zgroup", ".zattrs", ".zarray", ".zmetadata", "zarr.json"}
    chunk_reads = [k for k in keys if k.rsplit("/", 1)[-1] not in metadata]
    assert len(chunk_reads) == 3 * 16  # 3 sampled slices x 16 chunks each, of 8 x 16 chunks


@pytest.mark.gui
def test_viewer_opens_volume_and_labels_at_scale(make_napari_viewer, tmp_path, image):
    path = tmp_path / "scan.tif"
    _write_scan(path, image)
    labels = write_labels(
        tmp_path / "seg.zarr",
        (image % 5).astype(np.uint8),
        phases="si-graphite",
        voxel_size=(0.5, 0.25, 0.25),
    )
    viewer = make_napari_viewer()
    [layer] = viewer.open(path, plugin="napari-battery-seg")
    [label_layer] = viewer.open(labels, plugin="napari-battery-seg")
    np.testing.assert_allclose(layer.scale, (0.5, 0.25, 0.25))
    np.testing.assert_allclose(label_layer.scale, (0.5, 0.25, 0.25))
    assert label_layer._type_string == "labels" and layer._type_string == "image"
    z_range = viewer.dims.range[0]  # world coordinates: slices 0..9 at 0.5 µm
    assert (z_range.start, z_range.stop, z_range.step) == pytest.approx((0.0, 4.5, 0.5))
    viewer.dims.set_point(0, 2.0)  # z = 2 µm is slice 4
    assert viewer.dims.current_step[0] == 4


@pytest.mark.gui
def test_our_reader_is_preferred_once_the_plugin_is_used(make_napari_viewer, tmp_path, image):
    """napari 0.9 asks which plugin opens a .tif (its builtins claim it too) unless a reader
    preference names one; using the plugin names ours for the patterns the user left open."""
    from napari.errors import MultipleReaderError
    from napari.settings import get_settings

    from battery_seg._reader import PREFERRED_PATTERNS, on_activate

    path = tmp_path / "scan.tif"
    _write_scan(path, image)
    labels = (image % 4).astype(np.uint8)
    labels = write_labels(tmp_path / "seg.zarr", labels, phases="nmc", voxel_size=(0.5, 0.25, 0.25))
    viewer = make_napari_viewer()  # starts from napari's default settings
    preferences = get_settings().plugins
    qt_viewer = viewer.window._qt_viewer
    with pytest.raises(MultipleReaderError):  # what File > Open and drag & drop do first
        viewer.open(path, plugin=None)
    preferences.extension2reader = {"*.h5": "napari"}  # the user's own choice
    on_activate()  # what npe2 runs when the plugin is first used (a dock, the sample, ...)
    assert preferences.extension2reader["*.h5"] == "napari"  # kept
    ours = {p: "napari-battery-seg" for p in PREFERRED_PATTERNS if p != "*.h5"}
    assert preferences.extension2reader == {"*.h5": "napari", **ours}
    qt_viewer._qt_open([str(path)], stack=False)  # File > Open: no dialog now, our reader
    qt_viewer._qt_open([str(labels)], stack=False)
    layer, label_layer = viewer.layers
    assert layer.source.reader_plugin == "napari-battery-seg"
    assert layer.scale[0] == 0.5 and not isinstance(layer.data, np.ndarray)
    assert label_layer._type_string == "labels"  # not an Image, as napari's builtins make it
    assert layer.axis_labels == label_layer.axis_labels == ("z", "y", "x")
    assert tuple(viewer.dims.axis_labels) == ("z", "y", "x")
