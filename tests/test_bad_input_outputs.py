"""Bad outputs: a careless or unlucky user never loses a file, never sees a traceback.

Every case runs the real command (in this process, or as a subprocess where the shell is part of
the case) and checks the refusal, that the inputs are byte-identical afterwards, that the answer
came within seconds and that nothing which looks finished was left behind.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tifffile

from bad_input_helpers import digest, finished_outputs, image_volume, run_cli
from battery_seg.checks import check_output, output_lock
from battery_seg.errors import BatterySegError
from battery_seg.io import open_volume, write_labels
from cluster_helpers import tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SEGMENT = ["--tile", "32", "--block", "3", "40", "36", "--device", "cpu"]


@pytest.fixture(scope="module")
def sample(tmp_path_factory):
    """``battery-seg sample`` output: image.tif and labels.tif (16 x 32 x 32)."""
    from battery_seg.cli import main

    folder = tmp_path_factory.mktemp("sample")
    assert main(["sample", "-o", str(folder), "--shape", "16", "32", "32"]) == 0
    return folder


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return tiny_model(tmp_path_factory.mktemp("model") / "model.pt", seed=2)


@pytest.fixture(scope="module")
def scan(tmp_path_factory):
    path = tmp_path_factory.mktemp("scan") / "scan.tif"
    tifffile.imwrite(path, image_volume(), imagej=True, metadata={"axes": "ZYX"})
    return path


def test_the_stop_hook_command_leaves_the_labels_byte_identical(tmp_path):
    script = textwrap.dedent(
        f"""
        set -u
        bs() {{ "{sys.executable}" -c "$ENTRY" "$@"; }}
        bs sample -o s --shape 16 32 32 >/dev/null
        sha256sum s/labels.tif > before
        bs stats s/labels.tif --json s/labels.tif --overwrite
        echo "exit $?"
        sha256sum s/labels.tif > after
        """
    )
    entry = "import sys; from battery_seg.cli import main; sys.exit(main(sys.argv[1:]))"
    run = subprocess.run(
        ["bash", "-c", script],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "ENTRY": entry},
    )
    assert "exit 2" in run.stdout, run.stderr
    assert (tmp_path / "before").read_text() == (tmp_path / "after").read_text()
    assert "never modified" in run.stderr and "Traceback" not in run.stderr


@pytest.mark.parametrize(
    "command",
    [
        ["stats", "{L}", "--json", "{L}", "--overwrite"],
        ["stats", "{L}", "--csv", "{L}", "--overwrite"],
        ["stats", "{L}", "--json", "{I}", "--overwrite"],
        ["masks", "{L}", "--phase", "pore", "-o", "{L}", "--overwrite"],
        ["train", "{I}", "{L}", "-o", "{L}", "--overwrite", "--epochs", "1"],
        ["train", "{I}", "{L}", "-o", "{I}", "--overwrite", "--epochs", "1"],
        ["segment", "{I}", "-o", "{I}", "--overwrite"],
    ],
)
def test_an_input_is_never_an_output(sample, capsys, command):
    image, labels = sample / "image.tif", sample / "labels.tif"
    before = digest(sample)
    args = [a.replace("{L}", str(labels)).replace("{I}", str(image)) for a in command]
    _, err = run_cli(capsys, *args)
    assert "Refusing" in err or "never modified" in err
    assert digest(sample) == before


@pytest.mark.parametrize("link", ["symbolic", "hard"])
def test_a_link_to_an_input_is_an_input(sample, tmp_path, capsys, link):
    labels = sample / "labels.tif"
    alias = tmp_path / "mask.tif"
    (os.symlink if link == "symbolic" else os.link)(labels, alias)
    before = digest(sample)
    _, err = run_cli(capsys, "masks", labels, "--phase", "pore", "-o", alias, "--overwrite")
    assert "never modified" in err
    assert digest(sample) == before and alias.exists()


def test_nothing_is_written_inside_an_input_store_or_folder(tmp_path, capsys, model):
    store = tmp_path / "scan.zarr"
    write_labels(store, np.ones((4, 40, 36), np.uint8), phases="nmc", voxel_size=1)
    slices = tmp_path / "slices"
    slices.mkdir()
    for z, plane in enumerate(image_volume((4, 40, 36))):
        tifffile.imwrite(slices / f"s{z}.tif", plane)
    before = digest(store, slices)
    _, err = run_cli(capsys, "stats", store, "--json", store / "stats.json")
    assert "go inside the input" in err
    _, err = run_cli(capsys, "segment", slices, "-o", slices / "seg.tif", "--model", model)
    assert "go inside the input" in err
    _, err = run_cli(capsys, "masks", store / "0", "--phase", "pore", "-o", store / "m.tif")
    assert "go inside the input" in err
    assert digest(store, slices) == before


def test_overwrite_never_deletes_a_foreign_folder(scan, tmp_path, capsys, model):
    for name in ("out.zarr", "out.zarr.partial"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "thesis.docx").write_text("five years of work")
        args = ["segment", scan, "-o", tmp_path / "out.zarr", "--model", model, "--overwrite"]
        _, err = run_cli(capsys, *args, *SEGMENT)
        assert "did not write" in err and "thesis.docx" in err
        assert (folder / "thesis.docx").read_text() == "five years of work"
        folder.rename(tmp_path / f"kept-{name}")
    empty = tmp_path / "empty.zarr"
    empty.mkdir()  # an empty folder loses nothing
    run_cli(capsys, "segment", scan, "-o", empty, "--model", model, "--overwrite", *SEGMENT, code=0)
    assert open_volume(empty).shape == (6, 40, 36)


@pytest.mark.parametrize(
    ("content", "found"),
    [(b"\x89HDF\r\n\x1a\n" + bytes(64), "an HDF5 file"), (b"II*\x00" + bytes(64), "a TIFF image")],
)
def test_overwrite_replaces_only_a_file_of_the_outputs_kind(
    sample, tmp_path, capsys, content, found
):
    target = tmp_path / "stats.json"
    target.write_bytes(content)
    _, err = run_cli(capsys, "stats", sample / "labels.tif", "--json", target, "--overwrite")
    assert found in err and "replaces only a JSON file" in err
    assert target.read_bytes() == content
    target.write_text('{"old": 1}')
    run_cli(capsys, "stats", sample / "labels.tif", "--json", target, "--overwrite", code=0)
    assert '"volume_fraction"' in target.read_text()


def test_devices_and_pipes_are_not_outputs(sample, capsys):
    for device in ("/dev/full", "/dev/null"):
        _, err = run_cli(capsys, "stats", sample / "labels.tif", "--json", device)
        assert "already exists" in err
        _, err = run_cli(capsys, "stats", sample / "labels.tif", "--json", device, "--overwrite")
        assert "not a regular file" in err


def test_json_and_csv_into_one_file_is_refused(sample, tmp_path, capsys):
    out = tmp_path / "out.txt"
    _, err = run_cli(capsys, "stats", sample / "labels.tif", "--json", out, "--csv", out)
    assert "same file" in err and not out.exists()


def test_a_folder_that_cannot_be_written_is_named(sample, tmp_path, capsys, monkeypatch):
    folder = tmp_path / "readonly"
    folder.mkdir()
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda p, mode: False if str(p) == str(folder) else real_access(p, mode)
    )
    out = folder / "mask.tif"
    _, err = run_cli(capsys, "masks", sample / "labels.tif", "--phase", "pore", "-o", out)
    assert f"the folder {folder} is not writable" in err


def _full_disk(code=errno.ENOSPC):
    def write(target, *args, **kwargs):
        with open(target, "wb") as file:
            file.write(b"half a file")
        raise OSError(code, os.strerror(code), str(target))

    return write


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (errno.ENOSPC, "no space is left on the device"),
        (errno.EROFS, "the file system is read-only"),
        (errno.EACCES, "permission denied"),
    ],
)
def test_a_full_or_read_only_disk_is_one_line_naming_the_file(
    sample, tmp_path, capsys, monkeypatch, code, reason
):
    monkeypatch.setattr(tifffile, "imwrite", _full_disk(code))
    out = tmp_path / "pore.tif"
    _, err = run_cli(capsys, "masks", sample / "labels.tif", "--phase", "pore", "-o", out)
    assert f"{out}: {reason}" in err
    _, err = run_cli(capsys, "sample", "-o", tmp_path / "new", "--shape", "8", "16", "16")
    assert f"{tmp_path / 'new' / 'image.tif'}: {reason}" in err
    assert os.listdir(tmp_path) == ["new"] and os.listdir(tmp_path / "new") == []


def test_a_full_disk_while_training_leaves_no_model(sample, tmp_path, capsys, monkeypatch):
    import torch

    def full(*args, **kwargs):  # a failing write() names no file: the command names it
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full)
    out = tmp_path / "model.pt"
    args = ["train", sample / "image.tif", sample / "labels.tif", "-o", out]
    small = ["--epochs", "1", "--steps", "1", "--patch", "32", "--batch", "1"]
    _, err = run_cli(capsys, *args, *small)
    assert f"{out}: no space is left on the device" in err
    assert os.listdir(tmp_path) == []


def test_a_full_disk_while_segmenting_keeps_a_resumable_partial(scan, tmp_path, capsys, model):
    from battery_seg.io._store import LabelStore

    out = tmp_path / "labels.zarr"
    args = ["segment", scan, "-o", out, "--model", model, *SEGMENT]
    original = LabelStore.mark_done
    calls = []

    def fill_up(self, key):
        calls.append(key)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, "No space left on device", str(self.partial_path))
        original(self, key)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(LabelStore, "mark_done", fill_up)
        _, err = run_cli(capsys, *args)
    assert "labels.zarr.partial: no space is left on the device" in err
    assert finished_outputs(tmp_path) == []
    out_text, _ = run_cli(capsys, *args, code=0)
    assert "resumed" in out_text and open_volume(out).shape == (6, 40, 36)


def test_two_runs_into_one_output_the_second_is_refused(scan, tmp_path, capsys, model):
    from battery_seg.inference import SegmentConfig, segment_job

    out = tmp_path / "labels.zarr"
    config = SegmentConfig(model=model, tile=32, block_shape=(3, 40, 36), output=out)
    job = segment_job(open_volume(scan), config)
    next(job)
    next(job)
    job.close()  # the first run stopped after a block: its partial store is resumable
    partial = tmp_path / "labels.zarr.partial"
    before = digest(partial)
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from battery_seg.checks import output_lock\n"
            f"with output_lock({str(out)!r}):\n    print('locked', flush=True); time.sleep(120)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        _, err = run_cli(
            capsys, "segment", scan, "-o", out, "--model", model, "--overwrite", *SEGMENT
        )
        assert f"being written by another run (process {holder.pid})" in err
        assert digest(partial) == before
    finally:
        holder.kill()
        holder.wait()
    out_text, _ = run_cli(capsys, "segment", scan, "-o", out, "--model", model, *SEGMENT, code=0)
    assert "resumed" in out_text and not (tmp_path / ".labels.zarr.lock").exists()


def test_one_process_cannot_hold_one_output_twice(tmp_path):
    out = tmp_path / "model.pt"
    with output_lock(out):
        with pytest.raises(BatterySegError, match="being written by another run"):
            with output_lock(out):
                pass
    with output_lock(out):  # released
        pass


def test_ctrl_c_says_how_to_continue(scan, tmp_path, capsys, model, monkeypatch):
    from battery_seg.cli import _progress

    seen = []

    def interrupt(self, event):
        if event.step >= 1:  # after the first block is written
            seen.append(event)
            raise KeyboardInterrupt

    out = tmp_path / "labels.zarr"
    with monkeypatch.context() as patch:
        patch.setattr(_progress.ProgressPrinter, "__call__", interrupt)
        _, err = run_cli(capsys, "segment", scan, "-o", out, "--model", model, *SEGMENT, code=130)
        assert "labels.zarr.partial: run the same command again to continue" in err
        seen.clear()
        tiff = tmp_path / "labels.tif"
        _, err = run_cli(capsys, "segment", scan, "-o", tiff, "--model", model, *SEGMENT, code=130)
        assert "interrupted; nothing was written" in err and not tiff.exists()
    out_text, _ = run_cli(capsys, "segment", scan, "-o", out, "--model", model, *SEGMENT, code=0)
    assert "resumed" in out_text


def test_a_changed_voxel_size_does_not_resume(scan, tmp_path, capsys, model):
    from battery_seg.inference import SegmentConfig, segment_job

    out = tmp_path / "labels.zarr"
    config = SegmentConfig(model=model, tile=32, block_shape=(3, 40, 36), output=out)
    job = segment_job(open_volume(scan, voxel_size=0.5), config)
    next(job)
    next(job)
    job.close()
    partial = tmp_path / "labels.zarr.partial"
    before = digest(partial)
    args = ["segment", scan, "-o", out, "--model", model, *SEGMENT]
    _, err = run_cli(capsys, *args, "--voxel-size", "0.7", "0.5", "0.5")
    assert "voxel size [0.5, 0.5, 0.5] instead of [0.7, 0.5, 0.5]" in err
    assert digest(partial) == before
    out_text, _ = run_cli(capsys, *args, "--voxel-size", "0.5", "0.5", "0.5", code=0)
    assert "resumed" in out_text


def test_the_api_guards_inputs_too(tmp_path, scan):
    from battery_seg.inference import SegmentConfig, segment

    volume = open_volume(scan)
    before = digest(scan)
    with pytest.raises(BatterySegError, match="never modified"):
        write_labels(scan, np.ones((2, 2, 2), np.uint8), phases="nmc", voxel_size=1, overwrite=True)
    with pytest.raises(BatterySegError, match="never modified"):
        segment(volume, SegmentConfig(tile=32, output=scan, overwrite=True))
    other = tmp_path / "copy.tif"
    other.write_bytes(scan.read_bytes())
    with pytest.raises(BatterySegError, match="never modified"):
        check_output(other, overwrite=True, inputs=[other])
    assert digest(scan) == before
