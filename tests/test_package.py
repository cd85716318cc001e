"""Packaging: light imports, a valid npe2 manifest after a regular install, the CLI entry point."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_LIGHT_IMPORT = """
import json, sys
import battery_seg, battery_seg.phases, battery_seg.jobs, battery_seg.cli
import battery_seg.io, battery_seg.phantom, battery_seg._reader, battery_seg._writer
import battery_seg._sample_data
heavy = ("torch", "qtpy", "PyQt5", "PySide6", "magicgui", "napari", "vispy")
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in heavy)))
"""


def test_core_imports_pull_in_no_torch_and_no_qt():
    out = subprocess.run(
        [sys.executable, "-c", _LIGHT_IMPORT], capture_output=True, text=True, check=True
    )
    assert json.loads(out.stdout) == []


def test_manifest_at_top_level_is_the_packaged_one():
    top = ROOT / "napari.yaml"
    assert top.is_symlink()
    assert top.resolve() == (ROOT / "src" / "battery_seg" / "napari.yaml").resolve()


@pytest.fixture(scope="module")
def installed_wheel(tmp_path_factory) -> Path:
    """The package built as a wheel and installed (non-editable) into a private folder."""
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp / "dist"),
            str(ROOT),
        ],
        check=True,
        capture_output=True,
    )
    wheel = next((tmp / "dist").glob("napari_battery_seg-*.whl"))
    with zipfile.ZipFile(wheel) as zf:
        assert "battery_seg/napari.yaml" in zf.namelist()
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(tmp / "site"),
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    return tmp / "site"


_CHECK_MANIFEST = """
import importlib, importlib.metadata as md, json, sys
import battery_seg
from npe2 import PluginManifest
dist = next(d for d in md.distributions(path=[sys.argv[1]]) if d.name == "napari-battery-seg")
ep = next(e for e in dist.entry_points if e.group == "napari.manifest")
module, _, resource = ep.value.partition(":")
import importlib.resources as ir
manifest = PluginManifest.from_file(str(ir.files(module) / resource))
heavy_before = "torch" in sys.modules
imported = []
for command in manifest.contributions.commands:
    mod, _, attr = command.python_name.partition(":")
    getattr(importlib.import_module(mod), attr)
    imported.append(command.id)
print(json.dumps({"file": battery_seg.__file__, "commands": imported, "torch_on_load": heavy_before,
                  "name": manifest.name}))
"""


def test_manifest_validates_after_a_regular_install(installed_wheel):
    env = {"PYTHONPATH": str(installed_wheel), "PATH": "/usr/bin:/bin"}
    out = subprocess.run(
        [sys.executable, "-c", _CHECK_MANIFEST, str(installed_wheel)],
        capture_output=True,
        text=True,
        env=env,
    )
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["file"].startswith(str(installed_wheel)), (
        "imported the source tree, not the wheel"
    )
    assert result["name"] == "napari-battery-seg"
    assert not result["torch_on_load"]
    assert "napari-battery-seg.get_reader" in result["commands"]
    assert "napari-battery-seg.sample_anode" in result["commands"]


def test_cli_entry_point_and_help():
    out = subprocess.run(
        [str(Path(sys.executable).parent / "battery-seg"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "usage: battery-seg" in out.stdout
    for command in ("sample", "info"):
        assert command in out.stdout


@pytest.mark.parametrize("command", [["format", "--check"], ["check"]])
def test_ruff_keeps_one_style(command):
    """The style is enforced by the test run itself (ruff is in the testing extra)."""
    run = subprocess.run(
        [sys.executable, "-m", "ruff", *command, "--no-cache", "src", "tests", "bench", "scripts"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stdout + run.stderr
