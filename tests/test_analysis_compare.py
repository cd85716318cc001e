"""Comparing a segmentation with a reference: scores against hand counts, chunked == whole,
phases matched by name, the JSON layout, and ``battery-seg compare``."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest

from battery_seg.analysis import compare
from battery_seg.cli import main
from battery_seg.errors import BatterySegError
from battery_seg.phantom import make_anode


@pytest.fixture(scope="module")
def truth() -> np.ndarray:
    return make_anode((12, 40, 36), seed=3)


def _scores(truth: np.ndarray, predicted: np.ndarray, value: int) -> tuple[float, float]:
    scored = truth > 0
    t, p = (truth == value) & scored, (predicted == value) & scored
    both = np.logical_and(t, p).sum()
    return both / np.logical_or(t, p).sum(), 2 * both / (t.sum() + p.sum())


def test_identical_volumes_score_one_for_every_phase(truth):
    result = compare(truth, truth, "si-graphite")
    assert result.iou == dict.fromkeys(("pore", "silicon", "cbd", "graphite"), 1.0)
    assert result.dice == result.iou and result.mean_iou == 1.0
    assert result.remarks() == []


def test_scores_match_hand_counts_and_chunks_do_not_matter(truth):
    rng = np.random.default_rng(0)
    predicted = truth.copy()
    predicted[rng.random(truth.shape) < 0.2] = 1  # a fifth of the voxels become pore
    predicted[0, 0, -5:] = 0  # unlabelled in the segmentation: counted as wrong
    reference = truth.copy()
    reference[:, :, :4] = 0  # not scored
    whole = compare(predicted, reference, "si-graphite")
    chunked = compare(
        da.from_array(predicted, chunks=(5, 17, 11)),
        da.from_array(reference, chunks=(3, 40, 7)),
        "si-graphite",
    )
    for value, name in enumerate(("pore", "silicon", "cbd", "graphite"), start=1):
        iou, dice = _scores(reference, predicted, value)
        assert whole.iou[name] == pytest.approx(iou) == chunked.iou[name]
        assert whole.dice[name] == pytest.approx(dice) == chunked.dice[name]
    np.testing.assert_array_equal(whole.confusion, chunked.confusion)
    assert whole.confusion.sum() == (reference > 0).sum()
    assert whole.confusion[:, -1].sum() == 5
    assert any("unlabelled in the segmentation" in r for r in whole.remarks())
    segmented, referenced = whole.fractions()
    scored = reference > 0  # one base for both: the voxels the reference labels
    assert segmented["pore"] == pytest.approx(((predicted == 1) & scored).sum() / scored.sum())
    assert referenced["pore"] == pytest.approx((reference == 1).sum() / (reference > 0).sum())


def test_reference_phases_are_matched_by_name_and_connectivity_remarked():
    segmentation = np.full((6, 4, 4), 2, np.uint8)  # solid everywhere
    segmentation[:, :2] = 1  # pore through z
    reference = np.where(segmentation == 1, 170, 85).astype(np.uint8)  # solid=85, pore=170
    reference[3] = 85  # the reference's pore is cut: not through-connected along z
    result = compare(
        segmentation, reference, "pore,solid", reference_phases="solid=85,pore=170", axes=("z",)
    )
    assert result.iou["solid"] == pytest.approx(48 / 56)  # the cut adds 8 solid voxels
    assert result.through["z"]["pore"] == (1.0, 0.0)
    assert "pore: through-connected fraction along z differs: 1.00" in " ".join(result.remarks())
    with pytest.raises(BatterySegError, match="not the segmentation's"):
        compare(segmentation, reference, "pore,solid", reference_phases="a=85,b=170")
    with pytest.raises(BatterySegError, match="same region"):
        compare(segmentation, reference[:3], "pore,solid", reference_phases="solid=85,pore=170")


def test_cli_compare_prints_one_table_and_writes_the_json(truth, tmp_path, capsys):
    from battery_seg.io import write_labels

    predicted = truth.copy()
    predicted[truth == 3] = 1  # CBD taken for pore
    predicted[6][predicted[6] == 1] = 4  # and one slice of pore for graphite: pore is cut
    kwargs = dict(phases="si-graphite", voxel_size=(0.5, 0.5, 0.5))
    seg = write_labels(tmp_path / "seg.zarr", predicted, **kwargs)
    ref = write_labels(tmp_path / "truth.tif", truth, **kwargs)
    out = tmp_path / "scores.json"
    args = ["compare", str(seg), str(ref), "--connectivity", "z", "--json", str(out)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "IoU" in printed and "through z" in printed and "mean IoU" in printed
    assert "pore: through-connected fraction along z differs: 0.00 in the segmentation" in printed
    data = json.loads(out.read_text(encoding="utf-8"))
    assert set(data) == {
        "phases",
        "mean_iou",
        "confusion",
        "fraction_base",
        "scored_voxels",
        "volume_fractions",
    }
    assert set(data["phases"]["pore"]) == {"iou", "dice"}
    assert data["phases"]["silicon"] == {"iou": 1.0, "dice": 1.0}
    assert data["phases"]["cbd"]["iou"] == 0.0
    assert data["confusion"]["cbd"]["pore"] == int(((truth == 3) & (predicted == 1)).sum())
    assert main(args) == 2  # an existing JSON is kept
    assert "already exists" in capsys.readouterr().err
    assert main(["compare", str(ref), str(ref), "--json", str(out), "--overwrite"]) == 0
    data = json.loads(out.read_text(encoding="utf-8"))
    assert all(scores["iou"] == 1.0 for scores in data["phases"].values())
