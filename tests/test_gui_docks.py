"""All three docks on a 1920×1080 screen: they fit beside the canvas, long errors wrap, two
segmentations stay side by side; the README's dock screenshots come from here."""

from __future__ import annotations

import numpy as np
import pytest

from battery_seg.errors import BatterySegError

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("one_torch_thread")]

PLUGIN = "napari-battery-seg"
DOCKS = ("Segment volume", "Train from labels", "Analyse phases")
SCALE = (0.5, 0.5, 0.5)


def _viewer_at_1080p(make_napari_viewer, qtbot, shape=(16, 64, 64)):
    from battery_seg.phantom import make_sample

    sample = make_sample(shape, seed=0)
    viewer = make_napari_viewer(show=True)
    window = viewer.window._qt_window
    window.showNormal()
    window.resize(1920, 1080)
    qtbot.wait(50)
    viewer.add_image(sample.image, name="anode", scale=SCALE)
    viewer.add_labels(sample.labels, name="truth", scale=SCALE)
    docks = {name: viewer.window.add_plugin_dock_widget(PLUGIN, name) for name in DOCKS}
    qtbot.wait(100)
    return viewer, docks, sample


def _fail_with(message: str):
    def job():
        raise BatterySegError(message)
        yield  # a generator, like every job

    return job


def test_three_docks_fit_1080p_and_a_long_error_keeps_the_canvas(
    make_napari_viewer, qtbot, save_screenshot
):
    viewer, docks, _ = _viewer_at_1080p(make_napari_viewer, qtbot)
    window = viewer.window._qt_window
    canvas = viewer.window._qt_viewer.canvas.native
    message = "Cannot read /data/" + "very_long_folder_name/" * 12 + " " + "word " * 20
    assert len(message) >= 300
    for _dock, widget in docks.values():  # a long error in every dock, the real error path
        widget.controls.start(_fail_with(message))
        qtbot.waitUntil(lambda w=widget: not w.controls.running, timeout=10_000)
        assert widget.controls.status == f"Error: {message}"
    qtbot.wait(200)
    assert window.width() <= 1920 and window.height() <= 1080, (window.width(), window.height())
    share = canvas.width() / window.width()
    print(f"canvas {canvas.width()} x {canvas.height()} px = {share:.0%} of the window width")
    assert share >= 0.45
    for name, (dock, widget) in docks.items():
        assert dock.isVisible() and dock.height() >= 150, (name, dock.height())
        status = widget.controls._status.native
        assert status.height() <= 6 * status.fontMetrics().lineSpacing() + 20  # bounded
        assert status.width() <= dock.width()  # wrapped inside the dock
    save_screenshot(viewer, "docks_1080p")


def test_two_segmentations_give_two_layers_and_compare(make_napari_viewer, qtbot, tmp_path):
    viewer, docks, sample = _viewer_at_1080p(make_napari_viewer, qtbot, (8, 64, 64))
    segment = docks["Segment volume"][1]
    segment._device.value = "cpu"
    segment._tile.value = 64
    for model in ("fast", "fast", "default"):
        segment._model.value = model
        segment.controls.run_button.native.click()
        qtbot.waitUntil(lambda: not segment.controls.running, timeout=120_000)
        assert segment.result is not None, segment.controls.status
    names = [layer.name for layer in viewer.layers]
    assert names[2:] == ["anode phases (fast)", "anode phases (fast) [1]", "anode phases (default)"]
    fast = viewer.layers["anode phases (fast)"]
    assert fast.metadata["battery_seg"] == {"role": "segmentation", "model": "fast"}
    segment._replace.value = True  # only when asked: the layer of that name is reused
    segment.controls.run_button.native.click()
    qtbot.waitUntil(lambda: not segment.controls.running, timeout=120_000)
    assert len(viewer.layers) == len(names)

    analyse = docks["Analyse phases"][1]
    analyse._labels_layer.value = viewer.layers["anode phases (default)"]
    compare = analyse.compare
    compare._reference.value = viewer.layers["truth"]
    compare.controls.run_button.native.click()
    qtbot.waitUntil(lambda: not compare.controls.running, timeout=60_000)
    assert compare.result is not None, compare.controls.status
    truth, predicted = sample.labels, np.asarray(viewer.layers["anode phases (default)"].data)
    for name, value in (("pore", 1), ("graphite", 4)):
        both = np.logical_and(truth == value, predicted == value).sum()
        union = np.logical_or(truth == value, predicted == value).sum()
        assert compare.result.iou[name] == pytest.approx(both / union)
    assert compare.table.native.rowCount() == 5  # 4 phases and the mean
    assert "mean IoU" in compare.controls.status
