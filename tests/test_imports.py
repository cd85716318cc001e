"""Every import of our own code in ``src/battery_seg`` resolves, also those inside functions.

An import inside a function runs only when that path is taken, so a name moved to another
module breaks it silently until a user hits it (``battery-seg export --voxel-size`` once crashed
on ``from battery_seg.io._common import check_voxel_size``). This test reads each source file's
syntax tree, and for every ``from battery_seg... import NAME``, relative ``from .x import NAME``
and ``import battery_seg.x`` imports the target module and looks the name up, as Python would.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

import battery_seg

PACKAGE_ROOT = Path(battery_seg.__file__).parent
SOURCES = sorted(PACKAGE_ROOT.rglob("*.py"))


def _module_name(path: Path) -> tuple[str, bool]:
    """Dotted module name of a source file, and whether it is a package ``__init__``."""
    parts = ["battery_seg", *path.relative_to(PACKAGE_ROOT).with_suffix("").parts]
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def _target(node: ast.ImportFrom, module: str, is_package: bool) -> str | None:
    """The absolute module a ``from ... import`` reads from, or None for third-party code."""
    if node.level == 0:
        own = node.module is not None and node.module.split(".")[0] == "battery_seg"
        return node.module if own else None
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def own_imports(path: Path) -> list[tuple[int, str, str | None]]:
    """(line, module, name or None) for every import of our code in a file, at any depth."""
    module, is_package = _module_name(path)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found += [
                (node.lineno, alias.name, None)
                for alias in node.names
                if alias.name.split(".")[0] == "battery_seg"
            ]
        elif isinstance(node, ast.ImportFrom):
            target = _target(node, module, is_package)
            if target is not None:
                found += [(node.lineno, target, alias.name) for alias in node.names]
    return found


def unresolved(line: int, module: str, name: str | None) -> str | None:
    """Why ``from module import name`` (or ``import module``) fails, or None when it works."""
    try:
        imported = importlib.import_module(module)
    except ImportError as error:
        return f"line {line}: cannot import {module}: {error}"
    if name is None or name == "*" or hasattr(imported, name):
        return None
    try:
        importlib.import_module(f"{module}.{name}")
    except ModuleNotFoundError:
        return f"line {line}: cannot import name {name!r} from {module}"
    return None


def test_the_walk_sees_imports_inside_functions_and_relative_ones():
    source = PACKAGE_ROOT / "cli" / "_volume.py"
    tree = ast.parse(source.read_text(encoding="utf-8"))
    nested = [
        node
        for function in ast.walk(tree)
        if isinstance(function, ast.FunctionDef)
        for node in ast.walk(function)
        if isinstance(node, ast.ImportFrom)
    ]
    assert len(own_imports(source)) >= len(nested) > 0
    assert unresolved(7, "battery_seg.io", "open_volume") is None
    assert "'no_such_name'" in unresolved(7, "battery_seg.io", "no_such_name")
    assert "cannot import battery_seg.nowhere" in unresolved(7, "battery_seg.nowhere", None)


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE_ROOT)))
def test_every_import_of_our_code_resolves(path):
    problems = [why for why in (unresolved(*found) for found in own_imports(path)) if why]
    assert not problems, f"{path.relative_to(PACKAGE_ROOT)}:\n" + "\n".join(problems)
