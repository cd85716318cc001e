"""CLI progress: one line redrawn in place at any terminal width; plain lines in logs; the same
``--device`` choices in every subcommand that has the option."""

from __future__ import annotations

import io
import re

import pytest

from battery_seg.cli import build_parser, main
from battery_seg.cli._progress import ProgressPrinter
from battery_seg.jobs import Progress


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return 2  # its size comes from the patched os.get_terminal_size


@pytest.mark.parametrize("columns", [40, 80, 200])
def test_the_bar_is_redrawn_in_place_within_the_terminal_width(monkeypatch, columns):
    import os

    size = os.terminal_size((columns + 1, 24))  # tqdm keeps one column free
    monkeypatch.setattr(os, "get_terminal_size", lambda *_: size)
    terminal = _Terminal()
    with ProgressPrinter("segment", stream=terminal) as progress:
        progress.status("loading the model")
        for step in range(1, 11):
            progress._last = -1e9  # every event drawn, as if 0.1 s had passed
            progress(Progress(step, 10, f"Block {step}/10 " + "with a long message " * 5))
    text = terminal.getvalue()
    lines = [re.sub(r"\x1b\[[0-9;]*[A-Za-z]", "", part) for part in re.split(r"[\r\n]", text)]
    drawn = [line for line in lines if line.strip()]
    assert len(drawn) >= 10 and "\r" in text
    assert text.count("\n") <= 1  # one line, redrawn: no scrolling
    assert max(len(line) for line in drawn) <= columns
    assert "100%" in drawn[-1]
    if columns >= 80:  # narrower terminals cut the message, never wrap the line
        assert "loading the model" in text and "Block 10/10" in drawn[-1]


def test_logs_get_a_plain_line_now_and_then():
    log = io.StringIO()
    progress = ProgressPrinter("stats", stream=log, log_every=3600)
    progress.status("opening labels.zarr")
    for step in range(1, 6):
        progress(Progress(step, 5, f"slab {step} of 5"))
    progress.close()
    lines = log.getvalue().splitlines()
    assert (
        lines
        == [
            lines[0],
            lines[1],
        ]
        and lines[0].startswith("stats   0.0%")
        and "slab 5 of 5" in lines[1]
    )
    assert "\r" not in log.getvalue()


@pytest.mark.parametrize("command", ["segment", "train", "stats"])
def test_device_has_the_same_choices_everywhere(command, capsys):
    parser = build_parser()
    subparser = parser._subparsers._group_actions[0].choices[command]
    action = next(a for a in subparser._actions if "--device" in a.option_strings)
    assert action.metavar == "{auto,cpu,cuda,cuda:N}" and action.default == "auto"
    assert action.type("cuda:1") == "cuda:1"
    with pytest.raises(SystemExit):
        main([command, "x", "y", "-o", "m.pt", "--device", "gpu"])
    assert "invalid choice: 'gpu'" in capsys.readouterr().err
