"""The package's README: what the model predicts, how it was trained and how it validated.

Everything comes from the model card: the phases, context, normalisation and architecture, and
the provenance ``battery-seg train`` records (data, painted voxels per phase, epochs, validation
IoU on held-back strokes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..model import ModelCard

__all__ = ["readme"]


def readme(
    card: ModelCard, name: str, description: str, voxel_size: Any, halo: int, min_tile: int
) -> str:
    """The README.md text of the package of the model ``card``."""
    sections = [
        f"# {name}\n\n{description}\n",
        _inputs(card, voxel_size, halo, min_tile),
        _training(card.provenance),
        _validation(card.provenance),
        _use(),
    ]
    return "\n".join(sections)


def _inputs(card: ModelCard, voxel_size: Any, halo: int, min_tile: int) -> str:
    norm, arch = card.normalization, card.architecture
    phases = ", ".join(f"{p.name} ({p.value})" for p in card.phases)
    kind = "2D" if card.context == 1 else f"2.5D ({card.context} neighbouring slices)"
    size = " × ".join(f"{v:g}" for v in voxel_size) + " µm (z × y × x)" if voxel_size else "unknown"
    return f"""## Input and output

- **Network**: a {kind} U-Net (base {arch.base_channels} channels, depth {arch.depth}) from
  napari-battery-seg, predicting the phases {phases}.
- **Input** `raw` (batch, channel, y, x): grey values of {card.context} neighbouring slice(s) of
  a tomogram as channels, the slice to segment in the middle.
- **Normalisation**: the grey values at the {norm.low_percentile:g} and
  {norm.high_percentile:g} percentiles map to 0 and 1. bioimage.io tools take the percentiles of
  each input tile; battery-seg takes them from a sample of the whole volume, which keeps tiles of
  a large volume consistent.
- **Output** `probabilities` (batch, channel, y, x): one probability per phase (softmax), the
  channels in phase order; a pixel's phase label is the argmax + 1.
- **Tiling**: tiles of any size that is a multiple of {arch.multiple} and at least {min_tile};
  crop {halo} pixels (the halo) off each side of an output tile.
- **Voxel size** of the training data: {size}. Data of a very different resolution should be
  resampled, or the model fine-tuned on it.
"""


def _training(provenance: dict) -> str:
    if not provenance:
        return "## Training\n\nThe model file records no training details.\n"
    lines = ["## Training", ""]
    lines.append(
        f"Trained by {provenance.get('trained_by', 'napari-battery-seg')} "
        f"(`battery-seg train` or its Train dock) on painted labels, starting from "
        f"{provenance.get('init', 'scratch')}: {provenance.get('epochs', '?')} epochs "
        f"({provenance.get('steps', '?')} optimiser steps, "
        f"{_minutes(provenance.get('training_seconds'))}), best epoch "
        f"{provenance.get('best_epoch', '?')}, stopped by {provenance.get('stopped_by') or '?'}, "
        f"seed {provenance.get('seed', '?')}, {provenance.get('trained_at', '')}."
    )
    if provenance.get("purpose"):
        lines += ["", str(provenance["purpose"])]
    painted = provenance.get("painted_voxels") or {}
    data = provenance.get("data") or []
    if data and painted:
        lines += ["", "| data | shape | " + " | ".join(painted) + " |"]
        lines.append("|---|---|" + "---:|" * len(painted))
        for item in data:
            counts = item.get("painted_voxels", {})
            shape = " × ".join(str(n) for n in item.get("shape", []))
            cells = " | ".join(f"{counts.get(p, 0):,}" for p in painted)
            lines.append(f"| {item.get('name', '?')} | {shape} | {cells} |")
        total = " | ".join(f"**{n:,}**" for n in painted.values())
        lines.append(f"| painted voxels per phase | | {total} |")
    return "\n".join(lines) + "\n"


def _validation(provenance: dict) -> str:
    iou = provenance.get("best_val_iou") or {}
    held = provenance.get("validation_voxels") or {}
    lines = ["## Validation", ""]
    if iou:
        lines.append(
            "Per-phase IoU at the best epoch on held-back strokes (whole connected strokes never "
            "trained on; " + ", ".join(f"{p} {n:,} voxels" for p, n in held.items()) + "):"
        )
        lines += ["", "| " + " | ".join(iou) + " |", "|" + "---:|" * len(iou)]
        lines.append("| " + " | ".join(f"{v:.3f}" for v in iou.values()) + " |")
    else:
        lines.append("No strokes were held back for validation when this model was trained.")
    lines += [
        "",
        "Validate on your own data before relying on the model: label a few slices of a volume "
        "that was not used for training, segment it and compare the per-phase IoU; paint "
        "strokes where it is wrong and fine-tune (`battery-seg train ... --init THIS.zip`).",
    ]
    return "\n".join(lines) + "\n"


def _use() -> str:
    return """## Use

- In napari-battery-seg: `battery-seg segment scan.tif -o phases.zarr --model THIS.zip`
  (or pick the file in the *Segment volume* dock); fine-tune with `--init THIS.zip`.
- In bioimage.io tools (bioimageio.core, ilastik, deepImageJ, ...): weights as a PyTorch state
  dict (architecture `unet.py`, class `UNetProbabilities`), TorchScript and ONNX.
"""


def _minutes(seconds: Any) -> str:
    return f"{float(seconds) / 60:.1f} min" if isinstance(seconds, (int, float)) else "? min"
