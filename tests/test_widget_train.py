"""The "Train from labels" dock widget in a real viewer: paint, train, plot, segment, Cancel."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

SCALE = (0.5, 0.5, 0.5)
FAST = dict(base_channels=8, depth=3, patch_size=48, batch_size=8, steps_per_epoch=20)
# Fine-tuned from the bundled model for 45 steps on strokes covering 4 % of 3 slices, then
# segmented: measured pore 0.971, silicon 0.998, cbd 0.872, graphite 0.998. Without retaining the
# start model's predictions off the strokes, CBD fell by 0.05 (measured with an earlier bundled
# model): strokes kept away from phase boundaries teach little about the thin CBD films.
MIN_TUNED_IOU = (0.95, 0.98, 0.83, 0.98)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _open(make_napari_viewer, shape=(24, 64, 64)):
    """Viewer with the phantom image and a Labels layer painted through the layer's API."""
    from battery_seg.phantom import make_sample
    from battery_seg.training import simulate_strokes

    sample = make_sample(shape, seed=0)
    viewer = make_napari_viewer()
    viewer.add_image(sample.image, name="anode", scale=SCALE)
    strokes = viewer.add_labels(np.zeros(shape, np.uint8), name="strokes", scale=SCALE)
    painted = simulate_strokes(sample.labels, slices=3, fraction=0.04, seed=0)
    for value in range(1, 5):
        strokes.data_setitem(np.nonzero(painted == value), value)
    _, widget = viewer.window.add_plugin_dock_widget("napari-battery-seg", "Train from labels")
    return viewer, widget, sample, strokes


def _iou(truth, predicted, n_phases=4):
    return [
        np.logical_and(truth == v, predicted == v).sum()
        / np.logical_or(truth == v, predicted == v).sum()
        for v in range(1, n_phases + 1)
    ]


@pytest.mark.gui
def test_paint_train_plot_and_segment(make_napari_viewer, qtbot, tmp_path, save_screenshot):
    from battery_seg.model import load_model

    viewer, widget, sample, strokes = _open(make_napari_viewer)
    painted_before = strokes.data.copy()
    row = widget.pair_rows[0]
    assert row.image_box.value.name == "anode" and row.labels_box.value.name == "strokes"
    output = tmp_path / "painted.pt"
    widget._phases.value = "si-graphite"
    widget._context.value = 3
    widget._epochs.value = 8
    widget._output.value = output
    widget.extra_settings = dict(FAST)
    widget.controls.run_button.native.click()
    qtbot.waitUntil(lambda: widget.controls.worker is None, timeout=300_000)
    assert widget.result is not None, widget.controls.status
    np.testing.assert_array_equal(strokes.data, painted_before)  # the painting is untouched
    assert widget.plot.n_points == 8 and len(widget.plot.iou["cbd"]) == 8
    _, card = load_model(output)
    provenance = card.provenance
    assert provenance["data"][0]["name"] == "labels layer 'strokes' (image 'anode')"
    assert provenance["painted_voxels"]["silicon"] == int((painted_before == 2).sum())
    assert provenance["epochs"] == 8 and "Saved painted.pt" in widget.controls.status
    from napari.utils.colormaps import DirectLabelColormap

    from battery_seg.phases import PhaseSet

    strokes.colormap = DirectLabelColormap(color_dict=PhaseSet.parse("si-graphite").colormap())
    viewer.dims.set_current_step(0, 12)  # a painted slice
    viewer.window.resize(1800, 950)
    viewer.reset_view()
    save_screenshot(viewer, "train_widget")

    assert widget._segment.enabled
    segment = widget.open_segment()
    assert segment is not None and Path(segment._model_file.value) == output
    segment._tile.value = 64
    segment._device.value = "cpu"
    segment.controls.run_button.native.click()
    qtbot.waitUntil(lambda: segment.controls.worker is None, timeout=120_000)
    result = next(
        layer
        for layer in viewer.layers
        if type(layer).__name__ == "Labels" and layer is not strokes
    )
    iou = _iou(sample.labels, np.asarray(result.data))
    # Measured: mean IoU 0.66 (pore 0.74, silicon 0.71, cbd 0.32, graphite 0.87) with strokes on
    # 4 % of 3 slices and 160 steps; the margin absorbs run-to-run differences.
    assert np.mean(iou) > 0.5 and iou[3] > 0.7, iou


@pytest.mark.gui
def test_fine_tune_the_default_model_on_painted_strokes(make_napari_viewer, qtbot, tmp_path):
    """Paint, fine-tune the bundled model for a minute, segment: the loop users repeat."""
    viewer, widget, sample, _ = _open(make_napari_viewer, (32, 96, 96))
    widget._start.value = "default model"
    from battery_seg.model import load_model

    assert widget._context.value == load_model("default")[1].context  # follows the model
    widget._epochs.value = 3
    widget._output.value = tmp_path / "tuned.pt"
    widget.extra_settings = dict(patch_size=64, batch_size=8, steps_per_epoch=15)
    widget.controls.run_button.native.click()
    qtbot.waitUntil(lambda: widget.controls.worker is None, timeout=300_000)
    assert widget.result is not None, widget.controls.status
    assert widget.result.card.provenance["init"] == "default"
    segment = widget.open_segment()
    segment._device.value = "cpu"
    segment.controls.run_button.native.click()
    qtbot.waitUntil(lambda: segment.controls.worker is None, timeout=120_000)
    result = viewer.layers["anode phases"]
    iou = _iou(sample.labels, np.asarray(result.data))
    print("fine-tuned from the default model: IoU", np.round(iou, 3))
    assert all(np.asarray(iou) >= MIN_TUNED_IOU), iou


@pytest.mark.gui
def test_cancel_keeps_the_best_model_so_far(make_napari_viewer, qtbot, tmp_path):
    _, widget, _, _ = _open(make_napari_viewer, (12, 48, 48))
    output = tmp_path / "cancelled.pt"
    widget._epochs.value = 0
    widget._minutes.value = 30.0
    widget._output.value = output
    widget.extra_settings = dict(FAST, patch_size=32, steps_per_epoch=3)
    widget.controls.run_button.native.click()
    qtbot.waitUntil(lambda: widget.plot.n_points >= 1, timeout=60_000)
    widget.controls.cancel_button.native.click()
    qtbot.waitUntil(lambda: widget.controls.worker is None, timeout=20_000)
    assert widget.result is None and output.is_file()
    assert "best model so far" in widget.controls.status
    assert widget._segment.enabled and widget.model_path == output


@pytest.mark.gui
def test_errors_and_phases_from_the_labels_layer(make_napari_viewer, qtbot, tmp_path):
    from battery_seg.phases import PhaseSet

    viewer, widget, _, strokes = _open(make_napari_viewer, (8, 32, 32))
    nmc = viewer.add_labels(
        np.zeros((8, 32, 32), np.uint8),
        name="nmc strokes",
        metadata={"phases": PhaseSet.parse("nmc").to_dict()},
    )
    widget._reset_layer_choices()
    widget.pair_rows[0].labels_box.value = nmc
    assert widget._phases.value == "nmc"
    widget._output.value = tmp_path / "never.pt"
    widget.controls.run_button.native.click()
    qtbot.waitUntil(lambda: widget.controls.worker is None, timeout=30_000)
    assert "nothing is painted" in widget.controls.status
    assert not (tmp_path / "never.pt").exists() and not nmc.data.any()

    widget.pair_rows[0].labels_box.value = strokes
    widget._phases.value = "nmc"  # the strokes hold value 4, which nmc does not have
    widget.controls.run_button.native.click()
    qtbot.waitUntil(lambda: widget.controls.worker is None, timeout=30_000)
    assert "outside the phase set" in widget.controls.status

    second = widget.add_pair()
    assert len(widget.pair_rows) == 2
    second.remove_button.native.click()
    assert len(widget.pair_rows) == 1


@pytest.mark.gui
def test_start_from_a_bundled_model(make_napari_viewer, tmp_path):
    from battery_seg.model import load_card

    _, widget, _, _ = _open(make_napari_viewer, (12, 48, 48))
    widget._output.value = tmp_path / "model.pt"
    for choice, name in [("fast model", "fast"), ("default model", "default")]:
        widget._context.value = 1
        widget._start.value = choice
        assert widget._context.value == load_card(name).context  # follows the model
        assert widget.config().init == name
    widget._start.value = "scratch (new model)"
    assert widget.config().init is None
