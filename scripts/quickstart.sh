#!/usr/bin/env bash
# One command from a fresh clone to the main job on the bundled sample: set up the environment,
# write the synthetic Si-graphite anode to ./sample_out/, segment it with the bundled U-Net,
# measure the result (volume fractions, surface areas, connectivity, tortuosity) and compare it
# with the ground truth in one table (IoU, fractions and connectivity side by side).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
OUT=sample_out
BS=.venv/bin/battery-seg
$BS sample -o "$OUT" --shape 128 128 128 --seed 0 --overwrite
$BS info "$OUT/image.tif"
$BS segment "$OUT/image.tif" -o "$OUT/phases.zarr" --overwrite
echo
echo "== the segmentation, measured"
$BS stats "$OUT/phases.zarr" --tortuosity --json "$OUT/phases_stats.json" --overwrite
echo
echo "== the segmentation against the ground truth"
$BS compare "$OUT/phases.zarr" "$OUT/labels.tif" --connectivity z \
    --json "$OUT/comparison.json" --overwrite
echo
echo "quickstart: done. Look at it in napari with:"
echo "  .venv/bin/napari $OUT/image.tif $OUT/phases.zarr"
