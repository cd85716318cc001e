"""The held-out imaging models of ``bench/`` stay held out, and make the contrast they state."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
HELD_OUT = {"unseen_imaging", "unseen_fibsem"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[-1] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module.split(".")[-1])
    return names


def test_no_package_or_training_script_imports_the_held_out_imaging():
    sources = [*(ROOT / "src").rglob("*.py"), *(ROOT / "scripts").glob("*.py")]
    assert len(sources) > 50
    leaks = {str(p.relative_to(ROOT)) for p in sources if _imports(p) & HELD_OUT}
    assert not leaks, f"held-out imaging imported by {sorted(leaks)}"


@pytest.fixture(scope="module")
def labels():
    from battery_seg.phantom import make_cathode

    return make_cathode((16, 64, 64), seed=3)


@pytest.mark.parametrize("infiltrated", [True, False])
def test_held_out_fibsem_puts_cbd_about_one_noise_sigma_above_pore(labels, infiltrated):
    sys.path.insert(0, str(ROOT / "bench"))
    try:
        from unseen_fibsem import unseen_fibsem
    finally:
        sys.path.remove(str(ROOT / "bench"))
    values = {"pore": 1, "active": 2, "cbd": 3}
    stack = unseen_fibsem(labels, values, seed=0, infiltrated=infiltrated)
    assert stack.dtype == np.uint8 and stack.shape == labels.shape
    grey = stack.astype(np.float32)
    pore, active, cbd = (grey[labels == v] for v in (1, 2, 3))
    gap = (cbd.mean() - pore.mean()) / pore.std()
    if infiltrated:  # dark epoxy-filled pores, mottled CBD just above them
        assert 0.3 < gap < 2.0, gap
    else:  # the solid behind the face shines through open pores: CBD and pore overlap
        assert abs(gap) < 0.6, gap
    assert active.mean() > cbd.mean() + 1.5 * cbd.std()
    again = unseen_fibsem(labels, values, seed=0, infiltrated=infiltrated)
    assert np.array_equal(stack, again)  # seeded: the bench's case is reproducible
