"""The package's shape: no function longer than 80 lines except those that only declare widgets
or command-line arguments (a short list, each with its reason)."""

from __future__ import annotations

import ast
from pathlib import Path

import battery_seg

SOURCE = Path(battery_seg.__file__).parent
MAX_LINES = 80

# Functions that only declare children or arguments, one after another: splitting them would
# scatter one form over several functions without making any logic shorter.
DECLARATIONS = {
    "_widgets/analyse.py:AnalyseWidget.__init__": "declares the Analyse dock's fields",
    "_widgets/segment.py:SegmentWidget.__init__": "declares the Segment dock's fields",
    "_widgets/train.py:TrainWidget.__init__": "declares the Train dock's fields",
    "cli/_segment.py:add_parser": "declares the segment command's arguments",
    "cli/_stats.py:add_parser": "declares the stats command's arguments",
    "cli/_train.py:add_parser": "declares the train command's arguments",
}


def _functions(tree: ast.AST, prefix: str = ""):
    """``(qualified name, node)`` of every function, methods and nested functions included."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield prefix + node.name, node
            yield from _functions(node, f"{prefix}{node.name}.")
        elif isinstance(node, ast.ClassDef):
            yield from _functions(node, f"{prefix}{node.name}.")


def _lengths() -> dict[str, int]:
    lengths = {}
    for path in sorted(SOURCE.rglob("*.py")):
        module = path.relative_to(SOURCE).as_posix()
        for name, node in _functions(ast.parse(path.read_text(encoding="utf-8"))):
            lengths[f"{module}:{name}"] = node.end_lineno - node.lineno + 1
    return lengths


def test_no_function_is_longer_than_80_lines_but_declarations():
    lengths = _lengths()
    long = {name: n for name, n in lengths.items() if n > MAX_LINES and name not in DECLARATIONS}
    assert not long, f"functions over {MAX_LINES} lines (split them into named steps): {long}"


def test_the_declarations_allowed_to_be_long_still_need_it():
    lengths = _lengths()
    stale = sorted(name for name in DECLARATIONS if lengths.get(name, 0) <= MAX_LINES)
    assert not stale, f"allowlisted functions now short or gone (drop them from the list): {stale}"
