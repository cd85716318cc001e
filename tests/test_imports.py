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


def _import_graph() -> dict[str, set[str]]:
    """Module -> our modules it imports (at any depth, TYPE_CHECKING blocks included)."""
    modules = {_module_name(path)[0]: path for path in SOURCES}
    graph: dict[str, set[str]] = {}
    for module, path in modules.items():
        targets = set()
        for _, target, name in own_imports(path):
            submodule = f"{target}.{name}"
            targets.add(submodule if name and submodule in modules else target)
        graph[module] = targets & set(modules) - {module}
    return graph


def _circles(graph: dict[str, set[str]]) -> list[set[str]]:
    """The strongly connected groups of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    circles = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = set()
                while True:
                    member = stack.pop()
                    group.add(member)
                    if member == node:
                        break
                if len(group) > 1:
                    circles.append(group)
    return circles


def test_no_import_circle_between_packages_nor_in_checks_io_and_inference():
    def package(module: str) -> str:
        is_package = (PACKAGE_ROOT / "/".join(module.split(".")[1:]) / "__init__.py").is_file()
        return module if is_package else module.rpartition(".")[0]

    circles = _circles(_import_graph())
    across = [sorted(group) for group in circles if len({package(m) for m in group}) > 1]
    assert not across, across
    rooms = ("battery_seg.checks", "battery_seg.io", "battery_seg.inference")
    inside = [sorted(group) for group in circles if any(m.startswith(rooms) for m in group)]
    assert not inside, inside


def test_the_shared_names_import_nothing_of_ours():
    assert own_imports(PACKAGE_ROOT / "names.py") == []
    assert _circles({"a": {"b"}, "b": {"a"}, "c": {"a"}}) == [{"a", "b"}]
