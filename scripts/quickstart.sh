#!/usr/bin/env bash
# One command from a fresh clone to the bundled sample: set up the environment, write the
# synthetic Si-graphite anode to ./sample_out/ and describe it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT=sample_out
.venv/bin/battery-seg sample -o "$OUT" --shape 128 128 128 --seed 0 --overwrite
.venv/bin/battery-seg info "$OUT/image.tif"
echo "quickstart: done. Open it in napari with:"
echo "  .venv/bin/napari $OUT/image.tif $OUT/labels.tif"
