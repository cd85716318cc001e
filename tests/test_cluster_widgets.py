"""The "scheduler" field of the Segment volume and Analyse phases widgets, in a real viewer."""

from __future__ import annotations

import numpy as np
import pytest

from cluster_helpers import tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.gui
def test_widgets_run_on_the_scheduler_named_in_their_field(make_napari_viewer, qtbot, tmp_path):
    from distributed import LocalCluster

    from battery_seg.analysis import analyse
    from battery_seg.inference import SegmentConfig, segment

    model = tiny_model(tmp_path / "model.pt")
    rng = np.random.default_rng(0)
    image = (rng.random((12, 64, 64)).cumsum(1).cumsum(2) * 40).astype(np.uint16)
    viewer = make_napari_viewer()
    viewer.add_image(image, name="scan")
    _, segment_widget = viewer.window.add_plugin_dock_widget("napari-battery-seg", "Segment volume")
    segment_widget.set_model(model)
    segment_widget._tile.value = 32
    segment_widget._device.value = "cpu"
    assert segment_widget.config().cluster.scheduler is None  # empty field: this machine

    with LocalCluster(
        n_workers=1, processes=False, threads_per_worker=1, dashboard_address=":0"
    ) as cluster:
        segment_widget._scheduler.value = f" {cluster.scheduler_address} "
        assert segment_widget.config().cluster.scheduler == cluster.scheduler_address
        segment_widget.controls.run_button.native.click()
        qtbot.waitUntil(
            lambda: segment_widget.result is not None and not segment_widget.controls.running,
            timeout=120_000,
        )
        result = segment_widget.result
        assert "bytes_received" in result.timing  # it ran on the cluster
        expected = segment(image, SegmentConfig(model=model, tile=32, device="cpu"))
        layer = viewer.layers[segment_widget.layer_name()]  # "scan phases (model)"
        np.testing.assert_array_equal(layer.data, expected.labels)

        _, analyse_widget = viewer.window.add_plugin_dock_widget(
            "napari-battery-seg", "Analyse phases"
        )
        analyse_widget._labels_layer.value = layer
        analyse_widget._surfaces.value = False
        analyse_widget._scheduler.value = cluster.scheduler_address
        analyse_widget.controls.run_button.native.click()
        qtbot.waitUntil(
            lambda: analyse_widget.result is not None and not analyse_widget.controls.running,
            timeout=120_000,
        )
        config = analyse_widget.result.config
        assert config.cluster.scheduler == cluster.scheduler_address
        here = analyse(layer.data, config.with_changes(cluster=None))
        assert analyse_widget.result.volume_fractions == here.volume_fractions
        assert analyse_widget.result.to_dict()["profiles"] == here.to_dict()["profiles"]
