"""Shared fixtures: paths to the real data, and screenshots of what a user sees."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

# pytest-xdist (addopts: "-n 2 --dist loadscope") runs the suite in worker processes that share
# the machine's cores: each keeps to its share of threads (torch and BLAS read these when they
# start; OpenVINO follows torch), or the workers' threads wait for each other at every step.
if os.environ.get("PYTEST_XDIST_WORKER"):
    _WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    _THREADS = str(max(1, (os.cpu_count() or 1) // _WORKERS))
    for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_name, _THREADS)

import numpy as np  # after the thread counts
import pytest

# napari's settings of this test run live in a temporary file, never in the user's settings
# (the plugin's activation writes reader preferences; make_napari_viewer resets settings).
_SETTINGS = tempfile.mkdtemp(prefix="battery-seg-napari-settings-")
atexit.register(shutil.rmtree, _SETTINGS, ignore_errors=True)
os.environ.setdefault("NAPARI_CONFIG", str(Path(_SETTINGS) / "settings.yaml"))

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = (ROOT / ".." / "shared" / "data").resolve()


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data`` (real third-party volumes); skips the test when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} is absent (it ships beside the project in CI)")
    return SHARED_DATA


@pytest.fixture
def save_screenshot(tmp_path):
    """Save ``viewer.screenshot()`` as PNG; returns the path.

    Screenshots go to ``BATTERY_SEG_SCREENSHOT_DIR`` when set (the README's images are made with
    ``BATTERY_SEG_SCREENSHOT_DIR=docs/images``), otherwise to the test's temporary folder.
    """

    def _save(viewer, name: str) -> Path:
        from skimage.io import imsave

        target = Path(os.environ.get("BATTERY_SEG_SCREENSHOT_DIR", tmp_path))
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{name}.png"
        image = viewer.screenshot(canvas_only=False, flash=False)
        assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
        assert np.ptp(image[..., :3]) > 0, "screenshot is blank"
        imsave(path, image, check_contrast=False)
        return path

    return _save


@pytest.fixture
def save_dock(tmp_path):
    """Save the whole content of one of our docks (every section unfolded, no scrolling) as PNG,
    where :func:`save_screenshot` saves; returns the path."""

    def _save(widget, name: str) -> Path:
        from qtpy.QtWidgets import QApplication

        for section in widget.sections():
            section.set_expanded(True)
        QApplication.processEvents()
        body = widget.body.native
        target = Path(os.environ.get("BATTERY_SEG_SCREENSHOT_DIR", tmp_path))
        target.mkdir(parents=True, exist_ok=True)
        path = target / f"{name}.png"
        for _ in range(3):  # a first grab polishes widgets never shown (tables refit their rows)
            height = body.sizeHint().height()
            body.resize(body.width(), height)
            QApplication.processEvents()
            image = body.grab()
            if body.sizeHint().height() == height:
                break
        assert image.save(str(path)), path
        return path

    return _save


@pytest.fixture(scope="module")
def one_torch_thread():
    """One torch thread for a module's tiny networks: thread synchronisation costs more than it
    gains on them, and more so on a busy 2-core machine. Use with
    ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session", autouse=True)
def model_cache(tmp_path_factory):
    """Converted models (OpenVINO) go to a folder of the test session, not ``~/.cache``."""
    folder = tmp_path_factory.mktemp("battery_seg_cache")
    previous = os.environ.get("BATTERY_SEG_CACHE")
    os.environ["BATTERY_SEG_CACHE"] = str(folder)
    yield folder
    if previous is None:
        os.environ.pop("BATTERY_SEG_CACHE", None)
    else:
        os.environ["BATTERY_SEG_CACHE"] = previous


def pytest_collection_modifyitems(config, items):
    """In a pytest-xdist worker: the scopes (modules, or classes) with a ``slow`` test come first.

    ``--dist loadscope`` hands out whole scopes, so module-scoped fixtures (trained models,
    segmented volumes) are built once, and ``--no-loadscope-reorder`` keeps this order: the first
    two scopes go one to each worker, so the longest tests start at once, side by side.
    """
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return
    slow = {_scope(item) for item in items if item.get_closest_marker("slow")}
    items.sort(key=lambda item: _scope(item) not in slow)  # stable: the order within stays


def _scope(item) -> str:
    """The work unit of ``--dist loadscope``: the nodeid up to its last ``::``."""
    return item.nodeid.rsplit("::", 1)[0]
