"""Train a model in the Train dock, export it with its "Export for bioimage.io" button, and use
the package in the Segment and Train docks: the sharing loop in a real viewer."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import yaml

SCALE = (0.5, 0.5, 0.5)
TINY = dict(base_channels=4, depth=2, patch_size=32, batch_size=2, steps_per_epoch=3)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.mark.gui
def test_train_export_and_use_the_package(make_napari_viewer, qtbot, tmp_path):
    from battery_seg.model import load_card
    from battery_seg.phantom import make_sample
    from battery_seg.training import simulate_strokes

    sample = make_sample((12, 48, 48), seed=0)
    viewer = make_napari_viewer()
    image = viewer.add_image(sample.image, name="anode", scale=SCALE, units=("micrometer",) * 3)
    painted = simulate_strokes(sample.labels, slices=[3, 8], fraction=0.05, seed=0)
    viewer.add_labels(painted, name="strokes", scale=SCALE)
    _, train = viewer.window.add_plugin_dock_widget("napari-battery-seg", "Train from labels")
    model = tmp_path / "painted.pt"
    train._start.value = "scratch"  # a tiny new network (TINY), quick to train and export
    train._epochs.value = 2
    train._output.value = model
    train.extra_settings = dict(TINY)
    assert not train._export.enabled
    train.controls.run_button.native.click()
    qtbot.waitUntil(lambda: train.controls.worker is None, timeout=300_000)
    assert train.result is not None and train._export.enabled, train.controls.status
    assert load_card(model).provenance["data"][0]["voxel_size"] == list(SCALE)  # from the layer

    train._export.native.click()
    # the dock the button opened (asking napari for it again returns the same one)
    _, export = viewer.window.add_plugin_dock_widget("napari-battery-seg", "Export for bioimage.io")
    assert Path(export._model_file.value) == model and export._sample.value is image
    package = model.with_suffix(".zip")
    assert Path(export._output.value) == package
    export.controls.run_button.native.click()  # no author yet: a message, no file
    qtbot.waitUntil(lambda: export.controls.worker is None, timeout=60_000)
    assert "at least one author" in export.controls.status and not package.exists()
    export._authors.value = "Ada Lovelace; Charles Babbage"
    export.controls.run_button.native.click()
    qtbot.waitUntil(lambda: export.controls.worker is None, timeout=300_000)
    assert export.result is not None, export.controls.status
    assert "bioimageio test" in export.controls.status
    assert load_card(package) == load_card(model)
    with zipfile.ZipFile(package) as archive:
        rdf = yaml.safe_load(archive.read("rdf.yaml"))
    assert [a["name"] for a in rdf["authors"]] == ["Ada Lovelace", "Charles Babbage"]
    test_input = np.load(_member(package, "test_input.npy"))
    assert test_input.shape == (1, 3, 48, 48)  # cut from the training image, not the phantom

    segment = train.open_segment()
    segment.set_model(package)
    assert segment._legend.phases.names == ("pore", "silicon", "cbd", "graphite")
    assert segment.config().model == str(package)
    train._start.value = "model file"
    train._init_file.value = package
    train._context.value = 1
    train._follow_model_context()
    assert train._context.value == 3 and train.config().init == str(package)


def _member(package: Path, name: str):
    import io

    with zipfile.ZipFile(package) as archive:
        return io.BytesIO(archive.read(name))
