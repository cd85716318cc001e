"""bioimage.io packages wherever a model file goes: forms, content hashes, and what is refused.

The packages here are written by hand (an rdf.yaml and a state dict), so these tests run in a
second; tests/test_export_bioimageio.py checks packages made by 'battery-seg export'.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import pytest
import torch
import yaml

from battery_seg.errors import BatterySegError
from battery_seg.model import (
    ModelCard,
    UNetConfig,
    load_card,
    load_model,
    model_bytes,
    model_sha256,
    save_model,
)
from battery_seg.model.checkpoint import card_payload
from battery_seg.phases import PhaseSet


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    card = ModelCard(
        PhaseSet.parse("nmc"),
        context=3,
        architecture=UNetConfig(in_channels=3, n_phases=3, base_channels=4, depth=2),
        provenance={"epochs": 2, "data": [{"name": "a", "voxel_size": [0.5, 0.4, 0.4]}]},
    )
    return card.build().eval(), card


def _package(folder: Path, tiny, *, state_dict: object = None, **rdf: object) -> Path:
    """A package folder: rdf.yaml (battery-seg's card in its config) and weights.pt."""
    network, card = tiny
    folder.mkdir(parents=True, exist_ok=True)
    content = {
        "type": "model",
        "format_version": "0.5.14",
        "name": "tiny test model",
        "weights": {"pytorch_state_dict": {"source": "weights.pt"}},
        "config": {"battery_seg": card_payload(card)},
        **rdf,
    }
    (folder / "rdf.yaml").write_text(yaml.safe_dump(content), encoding="utf-8")
    torch.save(network.state_dict() if state_dict is None else state_dict, folder / "weights.pt")
    return folder


def _zip(folder: Path, path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for file in folder.iterdir():
            archive.write(file, file.name)
    return path


def test_a_package_loads_as_its_zip_folder_or_yaml(tiny, tmp_path):
    network, card = tiny
    folder = _package(tmp_path / "package", tiny)
    packed = _zip(folder, tmp_path / "model.zip")
    for source in (packed, folder, folder / "rdf.yaml", str(packed)):
        loaded, loaded_card = load_model(source)
        assert loaded_card == card and load_card(source) == card
        for key, value in network.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), (source, key)
    # a package hashes by its YAML and weights, whatever form it takes
    assert model_sha256(packed) == model_sha256(folder) == model_sha256(folder / "rdf.yaml")


def test_a_package_travels_to_workers_as_a_small_zip_with_the_same_hash(tiny, tmp_path):
    folder = _package(tmp_path / "package", tiny)
    (folder / "weights.onnx").write_bytes(b"\0" * 100_000)  # other tools' files stay home
    packed = _zip(folder, tmp_path / "model.zip")
    payload = model_bytes(packed)
    assert len(payload) < packed.stat().st_size - 90_000
    copy = tmp_path / "worker" / "battery-seg-model-0123.pt"  # the name a worker plugin gives
    copy.parent.mkdir()
    copy.write_bytes(payload)
    assert model_sha256(copy) == model_sha256(packed) == model_sha256(folder)
    assert load_card(copy) == tiny[1]
    plain = save_model(tmp_path / "plain.pt", *tiny)
    assert model_bytes(plain) == plain.read_bytes()  # a .pt file travels as it is


def test_the_card_keeps_the_voxel_size_the_model_learnt(tiny, tmp_path):
    card = load_card(_package(tmp_path / "package", tiny))
    assert card.provenance["data"][0]["voxel_size"] == [0.5, 0.4, 0.4]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (dict(type="dataset"), "not a model"),
        (dict(config={"bioimageio": {}}), "has no 'config: battery_seg:' section"),
        (dict(weights={"onnx": {"source": "weights.onnx"}}), "no PyTorch state-dict weights"),
        (dict(weights={"pytorch_state_dict": {"source": "gone.pt"}}), "gone.pt is missing"),
        (dict(weights={"pytorch_state_dict": {"source": "../x.pt"}}), "outside the package"),
        (
            dict(weights={"pytorch_state_dict": {"source": "https://example.org/w.pt"}}),
            "refers to a file on the web",
        ),
    ],
)
def test_a_package_of_another_kind_says_what_is_missing(tiny, tmp_path, change, message):
    folder = _package(tmp_path / "package", tiny, **change)
    for source in (folder, _zip(folder, tmp_path / "model.zip")):
        with pytest.raises(BatterySegError, match=message):
            load_model(source)


def test_not_a_package_at_all(tiny, tmp_path):
    empty = tmp_path / "folder"
    empty.mkdir()
    with pytest.raises(BatterySegError, match=r"folder without an rdf\.yaml"):
        load_model(empty)
    stray = tmp_path / "stray.zip"
    with zipfile.ZipFile(stray, "w") as archive:
        archive.writestr("notes.txt", "hello")
    with pytest.raises(BatterySegError, match=r"zip file without an rdf\.yaml"):
        load_model(stray)
    bad = _package(tmp_path / "bad", tiny)
    (bad / "rdf.yaml").write_text("type: model\nname: [unclosed\n", encoding="utf-8")
    with pytest.raises(BatterySegError, match="not valid YAML"):
        load_card(bad)


class _Payload:
    """Unpickling this runs a shell command: what a malicious weights file would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch {self.marker}",))


def test_loading_a_package_never_runs_its_code(tiny, tmp_path):
    marker = tmp_path / "pwned"
    folder = _package(tmp_path / "package", tiny)
    with open(folder / "weights.pt", "wb") as f:
        pickle.dump({"state": _Payload(marker)}, f, protocol=2)
    (folder / "unet.py").write_text(f"open({str(marker)!r}, 'w')\n", encoding="utf-8")
    for source in (folder, _zip(folder, tmp_path / "model.zip")):
        with pytest.raises(BatterySegError, match="corrupt or not a PyTorch state dict"):
            load_model(source)
    assert not marker.exists()


def test_a_state_dict_of_another_network_is_inconsistent(tiny, tmp_path):
    wider = UNetConfig(in_channels=3, n_phases=3, base_channels=8, depth=2)
    other = ModelCard(PhaseSet.parse("nmc"), context=3, architecture=wider).build()
    folder = _package(tmp_path / "package", tiny, state_dict=other.state_dict())
    with pytest.raises(BatterySegError, match="inconsistent"):
        load_model(folder)
