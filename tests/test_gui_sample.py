"""The plugin in a real napari viewer: sample data and the lazy reader (run under xvfb-run)."""

import numpy as np
import pytest

from battery_seg.io import write_image

pytestmark = pytest.mark.gui


def test_sample_opens_at_physical_scale(make_napari_viewer, save_screenshot):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-battery-seg", "si_graphite_anode")
    image, labels = viewer.layers
    assert image.data.shape == labels.data.shape == (128, 128, 128)
    assert tuple(image.scale) == tuple(labels.scale) == (0.5, 0.5, 0.5)
    assert labels.metadata["phases"]["phases"][2]["name"] == "cbd"
    assert labels.colormap.map(np.array([4]))[0][:3].tolist() != [0, 0, 0]
    viewer.dims.ndisplay = 2
    viewer.dims.set_point(0, 32.0)
    path = save_screenshot(viewer, "sample_in_napari")
    assert path.stat().st_size > 10_000


def test_reader_opens_a_tiff_lazily_with_its_voxel_size(make_napari_viewer, tmp_path):
    data = (np.arange(20 * 30 * 40, dtype=np.uint16) % 1000).reshape(20, 30, 40)
    path = write_image(tmp_path / "stack.tif", data, voxel_size=(2.0, 0.5, 0.5))
    viewer = make_napari_viewer()
    (layer,) = viewer.open(path, plugin="napari-battery-seg")
    assert tuple(layer.scale) == (2.0, 0.5, 0.5)
    assert not isinstance(layer.data, np.ndarray), "the reader must hand napari a lazy array"
    np.testing.assert_array_equal(np.asarray(layer.data[7]), data[7])
