"""Every relative import in the package resolves, also those inside functions, which only run
when their code path does (an import left pointing at a module a name moved out of made
``battery-seg export --voxel-size`` an internal error)."""

from __future__ import annotations

import json
import subprocess
import sys

_RESOLVE = """
import ast, importlib, importlib.util, json, pathlib
import battery_seg
root = pathlib.Path(battery_seg.__file__).parent
broken = []
for path in sorted(root.rglob("*.py")):
    parts = path.relative_to(root.parent).with_suffix("").parts
    module = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.ImportFrom) and node.level):
            continue
        base = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
        for alias in node.names:
            try:
                if not hasattr(importlib.import_module(base), alias.name):
                    importlib.import_module(f"{base}.{alias.name}")
            except ImportError:
                broken.append(f"{path.relative_to(root)}:{node.lineno} {base}.{alias.name}")
print(json.dumps(broken))
"""


def test_every_relative_import_resolves_even_inside_functions():
    out = subprocess.run(
        [sys.executable, "-c", _RESOLVE], capture_output=True, text=True, check=True, timeout=300
    )
    assert json.loads(out.stdout.splitlines()[-1]) == []
