"""The docks with bad input, in a real viewer: a time series uses the time point on screen, the
output guard refuses a foreign folder, and a shown output may be replaced by the next run."""

from __future__ import annotations

import numpy as np
import pytest

from bad_input_helpers import image_volume, labels_volume
from cluster_helpers import tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _click_and_wait(qtbot, widget) -> None:
    widget.controls.run_button.native.click()
    qtbot.waitUntil(lambda: not widget.controls.running, timeout=120_000)


@pytest.mark.gui
def test_segment_dock_uses_the_shown_time_point_and_guards_its_output(
    make_napari_viewer, qtbot, tmp_path
):
    from battery_seg.inference import SegmentConfig, segment

    model = tiny_model(tmp_path / "model.pt", seed=2)
    series = np.stack([image_volume((6, 40, 36), seed=s) for s in range(3)])  # (T, Z, Y, X)
    viewer = make_napari_viewer()
    viewer.add_image(series, name="series", scale=(1.0, 0.5, 0.5, 0.5))
    viewer.dims.set_current_step(0, 2)
    _, widget = viewer.window.add_plugin_dock_widget("napari-battery-seg", "Segment volume")
    widget.set_model(model)
    widget._tile.value = 32
    widget._device.value = "cpu"
    _click_and_wait(qtbot, widget)
    assert widget.result is not None, widget.controls.status
    config = SegmentConfig(model=model, tile=32, device="cpu")
    expected = segment(series[2], config, voxel_size=(0.5, 0.5, 0.5)).labels
    layer = viewer.layers[widget.layer_name()]  # "series phases (model)"
    np.testing.assert_array_equal(layer.data, expected)
    np.testing.assert_array_equal(layer.scale, (0.5, 0.5, 0.5))

    widget._output.value = "OME-Zarr file"
    widget._output_file.value = tmp_path / "out.zarr"
    widget._overwrite.value = True
    for _ in range(2):  # the shown store is ours, not an input: the next run may replace it
        widget.result = None
        _click_and_wait(qtbot, widget)
        assert widget.result is not None, widget.controls.status
    foreign = tmp_path / "foreign.zarr"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    widget._output_file.value = foreign
    widget.result = None
    _click_and_wait(qtbot, widget)
    assert widget.result is None and "did not write" in widget.controls.status
    assert (foreign / "notes.txt").read_text() == "mine"


@pytest.mark.gui
def test_analyse_dock_measures_the_shown_time_point(make_napari_viewer, qtbot):
    series = np.stack([labels_volume((6, 24, 20), seed=s) for s in range(3)])
    viewer = make_napari_viewer()
    viewer.add_labels(series, name="series labels", scale=(1.0, 0.5, 0.5, 0.5))
    viewer.dims.set_current_step(0, 1)
    _, widget = viewer.window.add_plugin_dock_widget("napari-battery-seg", "Analyse phases")
    widget._device.value = "cpu"
    _click_and_wait(qtbot, widget)
    assert widget.result is not None, widget.controls.status
    fractions = np.bincount(series[1].ravel(), minlength=5)[1:] / series[1].size
    assert list(widget.result.volume_fractions.values()) == pytest.approx(fractions)
    assert widget.result.config.voxel_size == (0.5, 0.5, 0.5)
