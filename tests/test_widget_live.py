"""The Train dock's Live mode in a real viewer: strokes painted through the layer's API refit the
live classifier in a worker, the displayed slice's prediction appears, the event loop runs on."""

from __future__ import annotations

import time

import numpy as np
import pytest

pytestmark = [pytest.mark.gui, pytest.mark.usefixtures("one_torch_thread")]

SCALE = (0.5, 0.5, 0.5)


class _Ticks:
    """The longest gap between 10 ms timer ticks: how long the Qt event loop was blocked."""

    def __init__(self) -> None:
        from qtpy.QtCore import QTimer

        self.last, self.longest, self.count = time.perf_counter(), 0.0, 0
        self.timer = QTimer()
        self.timer.timeout.connect(self._tick)
        self.timer.start(10)

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest, self.last = max(self.longest, now - self.last), now
        self.count += 1


def test_live_mode_repaints_the_slice_after_strokes(
    make_napari_viewer, qtbot, tmp_path, save_screenshot, monkeypatch
):
    import threading

    import battery_seg.training._live as live_module
    from battery_seg.phantom import make_sample
    from battery_seg.training import simulate_strokes

    fitted_in = []  # the threads the head was fitted in

    def fit_head(*args, **kwargs):
        fitted_in.append(threading.current_thread())
        return (yield from original(*args, **kwargs))

    original = live_module.fit_head
    monkeypatch.setattr(live_module, "fit_head", fit_head)

    sample = make_sample((16, 96, 96), seed=0)
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.showNormal()
    viewer.window._qt_window.resize(1920, 1080)
    viewer.add_image(sample.image, name="anode", scale=SCALE)
    _, widget = viewer.window.add_plugin_dock_widget("napari-battery-seg", "Train from labels")
    widget._output.value = tmp_path / "live.pt"
    strokes = widget.new_strokes_layer()
    viewer.dims.set_point(0, 8 * SCALE[0])
    widget.live_section.set_expanded(True)
    widget.live.live_box.value = True  # nothing painted yet: it waits for a stroke
    assert widget.live.worker is None
    painted = simulate_strokes(sample.labels, slices=[8], fraction=0.02, seed=0)
    ticks = _Ticks()
    for value in range(1, 5):  # four strokes in a row: each supersedes the update before
        strokes.data_setitem(np.nonzero(painted == value), value)
        qtbot.wait(5)
    qtbot.waitUntil(lambda: widget.live.live is not None, timeout=120_000)
    qtbot.waitUntil(lambda: widget.live.worker is None, timeout=120_000)
    ticks.timer.stop()
    layer = viewer.layers["anode live"]
    assert layer.metadata["battery_seg"]["slice"] == 8 and layer.data.shape == (1, 96, 96)
    truth = sample.labels[8]
    accuracy = (layer.data[0] == truth).mean()
    print(
        f"live accuracy on the slice {accuracy:.3f}; longest event-loop gap {ticks.longest:.3f} s"
    )
    assert accuracy > 0.85
    assert widget.live.live.painted_voxels == int((painted > 0).sum())  # every stroke was fitted
    assert "reads the start model's features" in widget.live.status.value  # it knows this anode
    assert "anode uncertainty" in viewer.layers and viewer.layers["anode uncertainty"].visible
    widget.live.overlay.value = False  # the switch hides the overlay at once, not next stroke
    assert not viewer.layers["anode uncertainty"].visible
    widget.live.overlay.value = True
    assert viewer.layers.selection.active.name == "anode strokes"  # painting goes on there
    assert len(widget.live.paint_next.choices) == 5
    # The fit and the features run in the worker, never in the Qt thread: the event loop keeps
    # ticking meanwhile (single ticks wait for napari's redraws, most for the first update, which
    # adds two layers: bench/bench_live_gui.py measures them against napari alone).
    assert fitted_in and threading.main_thread() not in fitted_in
    assert ticks.count >= 10, (ticks.count, ticks.longest)

    image = viewer.layers["anode"]
    assert all(value[0] is image for value in widget.live.paint_next.choices)
    widget.live.paint_next.value = (image, 3)  # "paint next" -> Go: the viewer moves there
    widget.live.go_to_suggestion()
    qtbot.waitUntil(lambda: layer.metadata["battery_seg"]["slice"] == 3, timeout=60_000)
    qtbot.waitUntil(lambda: widget.live.worker is None, timeout=60_000)
    viewer.dims.set_point(0, 8 * SCALE[0])
    qtbot.waitUntil(lambda: layer.metadata["battery_seg"]["slice"] == 8, timeout=60_000)
    qtbot.waitUntil(lambda: widget.live.worker is None, timeout=60_000)
    # the layer's own array was rewritten in place for slice 3 and back: slice 8's prediction
    assert viewer.layers["anode live"] is layer and layer.data.shape == (1, 96, 96)
    assert (layer.data[0] == truth).mean() > 0.85
    assert layer.translate[0] == 8 * SCALE[0]
    qtbot.wait(100)
    save_screenshot(viewer, "dock_train_live")

    widget.live.apply_button.native.click()  # Apply to volume: the live model file, Segment
    assert (tmp_path / "live.pt").is_file() and widget.model_path == tmp_path / "live.pt"


def test_live_mode_fits_every_pair_of_the_dock(
    make_napari_viewer, qtbot, tmp_path, save_screenshot
):
    """Two images, each with its strokes layer: one classifier learns from both, each image shows
    its displayed slice's prediction, "paint next" ranks the slices of both and Go selects the
    strokes layer of the chosen image."""
    from battery_seg.phantom import make_sample
    from battery_seg.training import simulate_strokes

    first, second = make_sample((16, 64, 64), seed=0), make_sample((12, 64, 64), seed=5)
    viewer = make_napari_viewer(show=True)
    viewer.window._qt_window.showNormal()
    viewer.window._qt_window.resize(1920, 1080)
    viewer.add_image(first.image, name="anode", scale=SCALE)
    viewer.add_image(second.image, name="other", scale=SCALE)
    _, widget = viewer.window.add_plugin_dock_widget("napari-battery-seg", "Train from labels")
    widget._output.value = tmp_path / "live.pt"
    widget.pair_rows[0].image_box.value = viewer.layers["anode"]
    strokes = widget.new_strokes_layer()
    painted = simulate_strokes(first.labels, slices=[6], fraction=0.02, seed=0)
    strokes.data_setitem(np.nonzero(painted), painted[np.nonzero(painted)])
    row = widget.add_pair()
    row.image_box.value = viewer.layers["other"]
    more = viewer.add_labels(np.zeros(second.labels.shape, np.uint8), name="other strokes")
    more.scale = SCALE
    row.labels_box.value = more
    other_painted = simulate_strokes(second.labels, slices=[6], fraction=0.02, seed=1)
    more.data_setitem(np.nonzero(other_painted), other_painted[np.nonzero(other_painted)])
    viewer.dims.set_point(0, 6 * SCALE[0])
    widget.live.live_box.value = True  # strokes on both: the first update starts at once
    qtbot.waitUntil(lambda: widget.live.live is not None, timeout=120_000)
    qtbot.waitUntil(lambda: widget.live.worker is None, timeout=120_000)
    live = widget.live.live
    assert live.painted_voxels == int((painted > 0).sum() + (other_painted > 0).sum())
    for name, truth in (("anode", first.labels[6]), ("other", second.labels[6])):
        shown = viewer.layers[f"{name} live"]
        assert shown.metadata["battery_seg"]["slice"] == 6
        assert (shown.data[0] == truth).mean() > 0.8, name
    choices = widget.live.paint_next.choices  # the values: (image layer, slice)
    assert len(choices) == 5 and {value[0].name for value in choices} <= {"anode", "other"}
    combo = widget.live.paint_next.native
    labels = [combo.itemText(i) for i in range(combo.count())]
    assert all(label.startswith(("anode, slice", "other, slice")) for label in labels), labels
    chosen = next(value for value in choices if value[0].name == "other")  # both ranked
    viewer.layers.selection.active = strokes
    widget.live.paint_next.value = chosen
    widget.live.go_to_suggestion()
    assert viewer.layers.selection.active is more  # ready to paint on that image
    assert viewer.dims.point[0] == pytest.approx(chosen[1] * SCALE[0])
    # a stroke on the second image refits too
    before = live.painted_voxels
    more.data_setitem((np.array([2]), np.array([5]), np.array([5])), 1)
    qtbot.waitUntil(lambda: widget.live.live.painted_voxels == before + 1, timeout=120_000)
    qtbot.waitUntil(lambda: widget.live.worker is None, timeout=120_000)
    widget.live_section.set_expanded(True)
    qtbot.wait(100)
    save_screenshot(viewer, "dock_train_live_two_images")
    # another strokes layer chosen for the second image while Live is on: the next update
    # listens to it (and no longer to the one it replaced)
    extra = viewer.add_labels(np.zeros(second.labels.shape, np.uint8), name="extra strokes")
    extra.scale = SCALE
    row.labels_box.value = extra
    viewer.dims.set_point(0, 5 * SCALE[0])
    qtbot.waitUntil(lambda: widget.live.worker is None, timeout=120_000)
    extra.data_setitem((np.array([5]), np.array([9]), np.array([9])), 2)
    expected = int((painted > 0).sum()) + 1
    qtbot.waitUntil(lambda: widget.live.live.painted_voxels == expected, timeout=120_000)
    qtbot.waitUntil(lambda: widget.live.worker is None, timeout=120_000)
