"""Shared pieces of the bad-input tests: run a command, fingerprint files, check what is left."""

from __future__ import annotations

import hashlib
import re
import time
from pathlib import Path

import numpy as np

#: A refusal must come at once: seconds, not minutes (generous for a busy 2-core machine).
ANSWER_SECONDS = 30.0


def digest(*paths: Path) -> dict[str, str]:
    """SHA-256 of every file under ``paths`` (files or folders), by path."""
    found = {}
    for root in paths:
        root = Path(root)
        files = [root] if root.is_file() else sorted(p for p in root.rglob("*") if p.is_file())
        for file in files:
            found[str(file)] = hashlib.sha256(file.read_bytes()).hexdigest()
    return found


def run_cli(capsys, *args: object, code: int = 2) -> tuple[str, str]:
    """Run ``battery-seg ARGS`` in this process; check the exit status, that the answer came
    within :data:`ANSWER_SECONDS` and that an error is one line without a traceback."""
    from battery_seg.cli import main

    start = time.perf_counter()
    status = main([str(a) for a in args])
    seconds = time.perf_counter() - start
    out, err = capsys.readouterr()
    assert status == code, f"exit {status}, expected {code}: {err}"
    assert seconds < ANSWER_SECONDS, f"took {seconds:.0f} s"
    assert "Traceback" not in err and "internal error" not in err
    if code == 2:
        # plain progress lines in a log, and the estimates printed before a solve starts
        progress = re.compile(rf"{args[0]}(\s+\d+(\.\d+)?% |: estimated )")
        lines = [line for line in err.splitlines() if not progress.match(line)]
        assert len(lines) == 1 and lines[0].startswith(f"battery-seg {args[0]}: error: "), err
    return out, err


def finished_outputs(folder: Path) -> list[str]:
    """Names in ``folder`` that look like finished outputs (not hidden, not ``.partial``)."""
    return sorted(
        p.name
        for p in Path(folder).iterdir()
        if not p.name.startswith(".") and "partial" not in p.name
    )


def labels_volume(shape=(6, 24, 20), phases: int = 4, seed: int = 0) -> np.ndarray:
    """Blocky labels 1..phases (every phase present)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(1, phases + 1, (shape[0], shape[1] // 4 + 1, shape[2] // 4 + 1))
    return np.repeat(np.repeat(coarse, 4, 1), 4, 2)[:, : shape[1], : shape[2]].astype(np.uint8)


def image_volume(shape=(6, 40, 36), seed: int = 0) -> np.ndarray:
    """Smooth grey levels (uint16) that the tiny test model splits into several phases."""
    rng = np.random.default_rng(seed)
    return (rng.random(shape).cumsum(1).cumsum(2) * 40).astype(np.uint16)
