#!/usr/bin/env bash
# Set up napari-battery-seg for development on a fresh Debian/Ubuntu machine:
# system libraries for a real (virtual) X display and OpenGL, a virtual environment in .venv,
# PyTorch (CPU build), and the package with its test extra. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

APT_PACKAGES=(xvfb xauth libgl1 libegl1 libgl1-mesa-dri libxkbcommon-x11-0 libxcb-icccm4 libxcb-image0
  libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 libxcb-xfixes0 libxcb-shape0
  libxcb-cursor0 libdbus-1-3 libfontconfig1)
missing=()
for p in "${APT_PACKAGES[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing system packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON=${PYTHON:-python3}
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
# pip, quiet, without the per-package warnings a machine-wide find-links setting can print
pip_install() { .venv/bin/python -m pip install -q "$@" 2> >(grep -v "^WARNING: Location" >&2); }
pip_install --upgrade pip

# PyTorch first: a bare 'torch' requirement would pull a multi-GB CUDA build. TORCH_SPEC picks the
# CPU build that is available locally; override it for a GPU machine (e.g. TORCH_SPEC=torch).
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
  echo "setup: installing $TORCH_SPEC"
  pip_install "$TORCH_SPEC" || pip_install torch --index-url https://download.pytorch.org/whl/cpu
fi

echo "setup: installing napari-battery-seg[testing]"
pip_install -e ".[testing]"
# bioimageio.core 0.11 pins bioimageio.spec 0.5.12, whose serialisers fail with pydantic 2.14
# (napari's); 0.5.14 fixes them and works with bioimageio.core 0.11 (bioimageio test passes).
pip_install --no-deps "bioimageio.spec>=0.5.14"
.venv/bin/battery-seg --version
