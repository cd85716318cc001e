"""The "Segment volume" dock widget in a real viewer: run, live blocks, Cancel, responsiveness."""

from __future__ import annotations

import time

import numpy as np
import pytest

SCALE = (0.5, 0.5, 0.5)


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def phantom_model(tmp_path_factory):
    """A tiny 2.5D U-Net taught on another phantom for a few seconds (enough to look right)."""
    import torch

    from battery_seg.model import (
        ModelCard,
        UNetConfig,
        estimate_intensity_range,
        normalize,
        save_model,
    )
    from battery_seg.phantom import make_sample

    train = make_sample((24, 64, 64), seed=1)
    x = normalize(train.image, estimate_intensity_range(train.image))
    torch.manual_seed(0)
    card = ModelCard(
        train.phases,
        context=3,
        architecture=UNetConfig(in_channels=3, n_phases=4, base_channels=8, depth=2, dropout=0.0),
    )
    network = card.build()
    optimizer = torch.optim.Adam(network.parameters(), lr=0.01)
    rng = np.random.default_rng(0)
    for _ in range(40):
        zs = rng.integers(1, 23, 8)
        batch = torch.from_numpy(np.stack([x[z - 1 : z + 2] for z in zs]))
        target = torch.from_numpy(train.labels[zs].astype(np.int64) - 1)
        loss = torch.nn.functional.cross_entropy(network(batch), target)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return save_model(tmp_path_factory.mktemp("model") / "phantom.pt", network.eval(), card)


def _open(make_napari_viewer, shape, model):
    from battery_seg.phantom import make_sample

    sample = make_sample(shape, seed=0)
    viewer = make_napari_viewer()
    viewer.add_image(sample.image, name="anode", scale=SCALE)
    _, widget = viewer.window.add_plugin_dock_widget("napari-battery-seg", "Segment volume")
    widget.set_model(model)
    widget._tile.value = 64
    widget._device.value = "cpu"
    return viewer, widget, sample


@pytest.mark.gui
def test_run_paints_blocks_into_a_labels_layer(
    make_napari_viewer, qtbot, phantom_model, tmp_path, save_screenshot, save_dock
):
    from battery_seg.inference import segment
    from battery_seg.io import open_volume

    viewer, widget, sample = _open(make_napari_viewer, (32, 64, 64), phantom_model)
    assert widget._model_info.value.startswith("3 slices (from the model)")
    labels = widget.native.findChildren(type(widget._model_info.native))
    assert any("train or fine-tune" in label.text() for label in labels)
    assert widget._legend.text == "■ 1 pore   ■ 2 silicon   ■ 3 cbd   ■ 4 graphite"
    at_insertion = []
    viewer.layers.events.inserted.connect(
        lambda event: at_insertion.append(
            (event.value.name, int(np.asarray(event.value.data).max()))
        )
    )
    widget.controls.run_button.native.click()
    layer = viewer.layers["anode phases (phantom)"]  # made at start, empty, image's scale
    assert at_insertion[0] == ("anode phases (phantom)", 0)
    np.testing.assert_array_equal(layer.scale, SCALE)
    qtbot.waitUntil(
        lambda: widget.result is not None and not widget.controls.running, timeout=120_000
    )

    expected = segment(sample.image, widget.config(), voxel_size=SCALE)
    np.testing.assert_array_equal(layer.data, expected.labels)
    assert widget.blocks_painted == 2 and layer.metadata["phases"]["phases"][0]["name"] == "pore"
    assert layer.axis_labels == ("z", "y", "x")
    truth = sample.labels
    iou = [
        ((layer.data == v) & (truth == v)).sum() / ((layer.data == v) | (truth == v)).sum()
        for v in (1, 2, 4)
    ]
    assert min(iou) > 0.4, iou  # seconds of training already separate pore, silicon, graphite

    layer.opacity = 0.6
    viewer.layers["anode"].contrast_limits = np.percentile(sample.image, [1, 99])
    viewer.window.resize(1500, 820)
    qtbot.wait(100)
    viewer.reset_view()
    save_screenshot(viewer, "segment_widget")
    save_dock(widget, "dock_segment")

    widget._output.value = "OME-Zarr file"  # the same run into a store, replacing the layer
    widget._output_file.value = tmp_path / "anode.zarr"
    widget._probabilities.value = True
    widget._uncertainty.value = "entropy"
    widget._replace.value = True
    widget.controls.run_button.native.click()
    qtbot.waitUntil(lambda: not widget.controls.running, timeout=120_000)
    names = [ly.name for ly in viewer.layers]
    assert names.count("anode phases (phantom)") == 1, names
    np.testing.assert_array_equal(
        np.asarray(viewer.layers["anode phases (phantom)"].data), expected.labels
    )
    np.testing.assert_array_equal(open_volume(tmp_path / "anode.zarr").data, expected.labels)
    probabilities = viewer.layers["anode probabilities (phantom)"]  # (phases, Z, Y, X)
    assert probabilities.data.shape == (4, 32, 64, 64)
    np.testing.assert_array_equal(probabilities.scale, (1.0, *SCALE))
    assert viewer.layers["anode uncertainty (phantom)"].data.dtype == np.uint8


@pytest.mark.gui
def test_an_imagej_stack_saved_as_channels_segments_as_one_volume(
    make_napari_viewer, qtbot, phantom_model, tmp_path
):
    import tifffile

    from battery_seg.inference import segment
    from battery_seg.phantom import make_sample

    sample = make_sample((8, 64, 64), seed=0)
    path = tmp_path / "scan.tif"
    tifffile.imwrite(path, sample.image, imagej=True)  # ImageJ reads its 8 planes as channels
    viewer = make_napari_viewer()
    [image] = viewer.open(path, plugin="napari-battery-seg")  # one volume, not 8 layers
    _, widget = viewer.window.add_plugin_dock_widget("napari-battery-seg", "Segment volume")
    widget.set_model(phantom_model)
    widget._tile.value = 64
    widget._device.value = "cpu"
    assert widget._image.value is image and image.data.shape == (8, 64, 64)
    widget.controls.run_button.native.click()
    qtbot.waitUntil(
        lambda: widget.result is not None and not widget.controls.running, timeout=120_000
    )
    expected = segment(sample.image, widget.config()).labels
    np.testing.assert_array_equal(viewer.layers["scan phases (phantom)"].data, expected)


@pytest.mark.gui
def test_cancel_removes_the_half_painted_layer(make_napari_viewer, qtbot, phantom_model):
    viewer, widget, _ = _open(make_napari_viewer, (96, 64, 64), phantom_model)  # 6 blocks
    widget.controls.run_button.native.click()
    blocks = []

    def on_event(event):
        if "region" in event.data:
            blocks.append(event)
            if len(blocks) == 1:
                widget.controls.cancel_button.native.click()

    widget.controls.worker.yielded.connect(on_event)
    qtbot.waitUntil(lambda: not widget.controls.running, timeout=120_000)
    assert not [layer for layer in viewer.layers if layer.name.startswith("anode phases")]
    assert widget.result is None and widget.controls.status.startswith("Cancelled")
    assert len(blocks) < 6


@pytest.mark.gui
def test_viewer_stays_responsive_during_a_run(make_napari_viewer, qtbot, phantom_model):
    from qtpy.QtCore import QTimer

    _, widget, _ = _open(make_napari_viewer, (64, 128, 128), phantom_model)
    widget._tile.value = 32  # many small tiles: the most Python work per second
    ticks = []
    timer = QTimer()
    timer.setInterval(20)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start()
    widget.controls.run_button.native.click()
    qtbot.waitUntil(lambda: not widget.controls.running, timeout=180_000)
    timer.stop()
    assert widget.result is not None and widget.blocks_painted == 4
    longest = float(np.diff(ticks).max())
    print(
        f"longest Qt event-loop gap during Segment volume: {longest * 1000:.0f} ms "
        f"({len(ticks)} ticks of 20 ms)"
    )
    assert longest < 0.2


@pytest.mark.gui
def test_bad_settings_are_notifications_not_tracebacks(make_napari_viewer, tmp_path):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-battery-seg", "Segment volume")
    widget.run()
    assert widget.controls.status.startswith("Error: Add or open an image layer")
    viewer.add_image(np.zeros((4, 16, 16), np.uint16), name="scan")
    widget._model.value = "from file"
    widget._model_file.value = tmp_path / "missing.pt"
    widget.run()
    assert "Choose a model file" in widget.controls.status
    assert not widget.controls.running and [ly.name for ly in viewer.layers] == ["scan"]
