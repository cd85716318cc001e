"""Single real 2D slices (LRCS nano-XCT of an NMC cathode, ``../shared/data/lrcs_nanoxct``): the
bundled 2D model lets a user train on one painted slice and segment another, from the command line
and in the Segment dock, with no flag saying "2D"."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from battery_seg.cli import main

pytestmark = pytest.mark.usefixtures("one_torch_thread")

PHASES = "active,cbd,pore"  # the LRCS labels 0, 1, 2 (+1 here: 0 = unpainted)
CROP = (slice(0, 192), slice(0, 224))


def _slice(shared_data, number: int) -> tuple[np.ndarray, np.ndarray]:
    folder = shared_data / "lrcs_nanoxct"
    image = tifffile.imread(folder / f"{number}.tif")[CROP]
    truth = tifffile.imread(folder / f"{number}_label.tif")[CROP].astype(np.uint8) + 1
    return np.ascontiguousarray(image), np.ascontiguousarray(truth)


def _mean_iou(truth: np.ndarray, labels: np.ndarray) -> float:
    scores = []
    for value in (1, 2, 3):
        a, b = truth == value, labels == value
        scores.append((a & b).sum() / max((a | b).sum(), 1))
    return float(np.mean(scores))


def test_train_on_one_real_slice_and_segment_another(shared_data, tmp_path, capsys):
    from battery_seg.model import load_card
    from battery_seg.training import simulate_strokes

    image, truth = _slice(shared_data, 100)
    strokes = simulate_strokes(truth, fraction=0.03, margin=1, seed=0)
    tifffile.imwrite(tmp_path / "slice.tif", image)
    tifffile.imwrite(tmp_path / "strokes.tif", strokes)
    other, other_truth = _slice(shared_data, 200)
    tifffile.imwrite(tmp_path / "other.tif", other)
    model = tmp_path / "model.pt"
    args = ["train", str(tmp_path / "slice.tif"), str(tmp_path / "strokes.tif")]
    args += ["--phases", PHASES, "--epochs", "3", "--steps", "8", "--patch", "64", "-o", str(model)]
    assert main(args) == 0
    err = capsys.readouterr().err
    card = load_card(model)
    assert card.context == 1 and card.provenance["init"].startswith("2d")  # auto: a 2D image
    start = card.provenance["start_model"]
    assert set(start["phase_map"]) == {"active", "cbd", "pore"}  # new rows from the 2d model's
    # the anode model does not know this imaging: grey levels are blended in, and it says so
    assert start["trust"] < 0.5 and card.architecture.grey_hidden > 0
    assert "blends in a classifier of the grey levels" in err

    out = tmp_path / "other_phases.tif"
    assert (
        main(["segment", str(tmp_path / "other.tif"), "-o", str(out), "--model", str(model)]) == 0
    )
    labels = tifffile.imread(out)
    assert labels.shape == other.shape
    assert set(np.unique(labels)) <= {1, 2, 3}
    # a few seconds of training from strokes: far from the benchmark's figures, far above chance
    assert _mean_iou(other_truth, labels) > 0.35


@pytest.mark.gui
def test_segment_dock_picks_the_2d_model_for_a_single_slice(make_napari_viewer, qtbot, shared_data):
    image, _ = _slice(shared_data, 100)
    viewer = make_napari_viewer()
    viewer.add_image(image, name="slice 100", scale=(0.5, 0.5))
    _, widget = viewer.window.add_plugin_dock_widget("napari-battery-seg", "Segment volume")
    assert widget._model.value == "2d", widget.controls.status
    assert "one-slice model 2d is chosen" in widget.controls.status
    assert widget._model_info.value == "1 slice (from the model)"
    widget._device.value = "cpu"
    widget.controls.run_button.native.click()
    qtbot.waitUntil(
        lambda: widget.result is not None and not widget.controls.running, timeout=120_000
    )
    layer = viewer.layers[widget.layer_name()]
    assert layer.data.shape == image.shape
    np.testing.assert_array_equal(layer.scale, (0.5, 0.5))
    assert layer.name == "slice 100 phases (2d)"


@pytest.mark.gui
def test_segment_dock_picks_the_2d_model_for_a_stack_of_far_apart_slices(
    make_napari_viewer, shared_data
):
    slices = np.stack([_slice(shared_data, n)[0] for n in (1, 100, 200, 300, 400)])
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-battery-seg", "Segment volume")
    viewer.add_image(slices, name="five slices")
    widget._image.value = viewer.layers["five slices"]
    assert widget._model.value == "2d", widget.controls.status
    assert "five slices looks like unrelated slices" in widget.controls.status
    widget._model.value = "default"
    viewer.add_image(np.cumsum(slices, axis=0), name="a volume")  # neighbours alike
    widget._image.value = viewer.layers["a volume"]
    assert widget._model.value == "default"
