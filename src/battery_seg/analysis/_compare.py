"""Compare a segmentation with a reference: per-phase IoU and Dice, confusion, fractions.

Both label volumes are mapped to phase indices block by block (:func:`encoded_view`) and their
joint histogram is counted one slab of blocks at a time, so volumes larger than memory work and
only ``(K+1)²`` counts travel. Voxels the reference leaves unlabelled (0, e.g. between painted
strokes) are not scored; a scored voxel the segmentation leaves unlabelled counts against the
reference's phase. Optionally the through-connected fraction of every phase is compared too
(this needs both volumes in memory).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import BatterySegError
from ..io._atomic import json_text
from ..jobs import Job, Progress, run_job
from ..phases import PhaseSet
from ._config import AXES
from ._connectivity import Clusters
from ._export import atomic_write
from ._fractions import encoded_view, unknown_values_message
from ._tables import ResultTable, format_column, text_table

__all__ = ["Comparison", "compare", "compare_job"]

UNLABELLED = "unlabelled"
DIMENSIONLESS_NOTE = "dimensionless (0 to 1)"
_REMARK_DIFFERENCE = 0.05  # through-connected fractions further apart than this are remarked


@dataclass
class Comparison:
    """A segmentation against a reference.

    ``joint[t, p]`` counts voxels of reference phase index ``t`` (0 = unlabelled) segmented as
    phase index ``p`` (0 = unlabelled); ``through[axis][name] = (segmentation, reference)``
    through-connected fractions when connectivity was compared.
    """

    phases: PhaseSet
    joint: np.ndarray
    through: dict[str, dict[str, tuple[float, float]]] = field(default_factory=dict)
    seconds: float = 0.0

    # -- scores -------------------------------------------------------------------------------
    @property
    def confusion(self) -> np.ndarray:
        """``(K, K+1)`` counts: reference phase (rows) by segmented phase, then unlabelled."""
        scored = self.joint[1:]
        return np.concatenate([scored[:, 1:], scored[:, :1]], axis=1)

    def _overlaps(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scored = self.joint[1:]
        both = np.diag(scored[:, 1:]).astype(float)
        return both, scored.sum(axis=1).astype(float), scored[:, 1:].sum(axis=0).astype(float)

    @property
    def iou(self) -> dict[str, float]:
        """Per-phase intersection over union on the reference's labelled voxels."""
        both, truth, predicted = self._overlaps()
        union = truth + predicted - both
        return {n: _ratio(b, u) for n, b, u in zip(self.phases.names, both, union, strict=True)}

    @property
    def dice(self) -> dict[str, float]:
        """Per-phase Dice coefficient (2 |A ∩ B| / (|A| + |B|))."""
        both, truth, predicted = self._overlaps()
        return {
            n: _ratio(2 * b, t + p)
            for n, b, t, p in zip(self.phases.names, both, truth, predicted, strict=True)
        }

    @property
    def mean_iou(self) -> float:
        """Mean IoU over the phases present in either volume."""
        scores = [v for v in self.iou.values() if not math.isnan(v)]
        return float(np.mean(scores)) if scores else math.nan

    def fractions(self) -> tuple[dict[str, float], dict[str, float]]:
        """Volume fractions of the segmentation and of the reference on one base: the voxels
        the reference labels (:attr:`scored`), so both are fractions of the same region (a
        scored voxel the segmentation leaves unlabelled counts for neither of its phases)."""
        scored = self.joint[1:]
        base = max(self.scored, 1)
        names = self.phases.names
        return (
            dict(zip(names, scored[:, 1:].sum(axis=0) / base, strict=True)),
            dict(zip(names, scored.sum(axis=1) / base, strict=True)),
        )

    @property
    def scored(self) -> int:
        """Voxels the reference labels: the base of every score and fraction."""
        return int(self.joint[1:].sum())

    # -- outputs ------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """``{"phases": {name: {"iou", "dice"}}, "mean_iou", "confusion"}``; the confusion is
        ``{reference phase: {segmented phase or "unlabelled": voxels}}`` (NaN becomes None)."""
        iou, dice = self.iou, self.dice
        columns = [*self.phases.names, UNLABELLED]
        return {
            "phases": {n: {"iou": _json(iou[n]), "dice": _json(dice[n])} for n in iou},
            "mean_iou": _json(self.mean_iou),
            "fraction_base": "voxels the reference labels",
            "scored_voxels": self.scored,
            "volume_fractions": dict(
                zip(("segmentation", "reference"), self.fractions(), strict=True)
            ),
            "confusion": {
                name: {c: int(v) for c, v in zip(columns, row, strict=True)}
                for name, row in zip(self.phases.names, self.confusion, strict=True)
            },
        }

    def to_json(self, path: str | Path, *, overwrite: bool = False) -> Path:
        """Write :meth:`to_dict` as JSON, atomically."""
        text = json_text(self.to_dict())
        write = lambda p: Path(p).write_text(text, encoding="utf-8")  # noqa: E731
        return atomic_write(path, write, overwrite=overwrite)

    def table(self) -> ResultTable:
        """Per phase: IoU, Dice, and segmentation / reference / difference of the volume
        fraction (and of the through-connected fraction along each compared axis)."""
        names = list(self.phases.names)
        segmented, reference = self.fractions()
        columns = {
            "IoU": [*[self.iou[n] for n in names], self.mean_iou],
            "Dice": [*[self.dice[n] for n in names], None],
        }
        pairs = {"fraction": {n: (segmented[n], reference[n]) for n in names}}
        pairs.update({f"through {axis}": by_name for axis, by_name in self.through.items()})
        for what, by_name in pairs.items():
            seg = [by_name[n][0] for n in names]
            ref = [by_name[n][1] for n in names]
            columns[f"{what}\nseg."] = [*seg, None]
            columns[f"{what}\nref."] = [*ref, None]
            columns[f"{what}\ndiff."] = [*np.subtract(seg, ref), None]
        cells = [format_column(values, decimals=4) for values in columns.values()]
        rows = [list(row) for row in zip(*cells, strict=True)]
        title = (
            f"Segmentation (seg.) vs reference (ref.), all values {DIMENSIONLESS_NOTE}; "
            f"fractions of the {self.scored:,} voxels the reference labels"
        )
        return ResultTable(title, list(columns), [*names, "mean"], rows)

    def confusion_table(self) -> ResultTable:
        """Where each reference phase went: % of its voxels per segmented phase."""
        matrix = self.confusion.astype(float)
        share = 100 * matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
        columns = [*self.phases.names, UNLABELLED]
        cells = [format_column(share[:, j], decimals=1) for j in range(share.shape[1])]
        return ResultTable(
            "Where each reference phase went (rows; % of its voxels) in the segmentation",
            columns,
            list(self.phases.names),
            [list(row) for row in zip(*cells, strict=True)],
        )

    def remarks(self) -> list[str]:
        """Plain sentences about what differs beyond the scores (connectivity, gaps)."""
        notes = []
        for axis, by_name in self.through.items():
            for name, (seg, ref) in by_name.items():
                if abs(seg - ref) > _REMARK_DIFFERENCE or (min(seg, ref) == 0 < max(seg, ref)):
                    notes.append(
                        f"{name}: through-connected fraction along {axis} differs: "
                        f"{seg:.2f} in the segmentation, {ref:.2f} in the reference."
                    )
        unlabelled = int(self.confusion[:, -1].sum())
        if unlabelled:
            notes.append(
                f"{unlabelled} voxels labelled in the reference are unlabelled in the "
                "segmentation (counted as wrong)."
            )
        return notes

    def format_text(self) -> str:
        """The comparison table, the confusion table and the remarks as text."""
        parts = [text_table(self.table()), "", text_table(self.confusion_table())]
        scored = f"{self.scored:,} voxels the reference labels"
        parts.append(f"mean IoU {self.mean_iou:.4f} over the {scored}")
        parts += [f"note: {remark}" for remark in self.remarks()]
        return "\n".join(parts)


def _ratio(numerator: float, denominator: float) -> float:
    return float(numerator / denominator) if denominator else math.nan


def _json(value: float) -> float | None:
    return None if math.isnan(value) else float(value)


def compare_job(
    segmentation,
    reference,
    phases: PhaseSet | str | None = None,
    *,
    reference_phases: PhaseSet | str | None = None,
    axes: Sequence[str] = (),
    front_face: str = "low",
    names: tuple[str, str] = ("the segmentation", "the reference"),
) -> Job[Comparison]:
    """Compare ``segmentation`` with ``reference`` (label volumes of one shape), chunk-wise.

    Parameters
    ----------
    segmentation, reference : numpy, dask or zarr arrays (Z, Y, X)
        Phase labels; 0 = unlabelled. Reference voxels with 0 are not scored.
    phases : PhaseSet or str
        The segmentation's phase set (default ``si-graphite``).
    reference_phases : PhaseSet or str, optional
        The reference's, when it differs in values or order (``pore=0,nmc=85,cbd=170``); its
        phases are matched to ``phases`` by name.
    axes : sequence of "z", "y", "x"
        Also compare the through-connected fraction of every phase along these axes (both
        volumes are then loaded into memory).
    names : (str, str)
        How messages name the two volumes (e.g. ``"segmentation seg.tif"``).

    Examples
    --------
    >>> labels = np.array([[[1, 1, 2, 2]]], dtype=np.uint8)
    >>> result = run_job(compare_job(labels, labels, "pore,solid"))
    >>> result.to_dict()["phases"]["pore"], result.mean_iou
    ({'iou': 1.0, 'dice': 1.0}, 1.0)
    """
    started = time.perf_counter()
    phases = PhaseSet.parse(phases)
    theirs = PhaseSet.parse(reference_phases) if reference_phases is not None else phases
    if sorted(n.lower() for n in theirs.names) != sorted(n.lower() for n in phases.names):
        raise BatterySegError(
            f"The reference's phases ({theirs.describe()}) are not the segmentation's "
            f"({phases.describe()}); give the reference's phase set with the same names "
            "(--reference-phases NAME=VALUE,...)."
        )
    if tuple(np.shape(segmentation)) != tuple(np.shape(reference)):
        raise BatterySegError(
            f"The segmentation has shape {tuple(np.shape(segmentation))} but the reference "
            f"{tuple(np.shape(reference))}; compare label volumes of the same region."
        )
    yield Progress(0, 1, "Comparing with the reference")
    ours = _encoded(segmentation, phases, names[0])
    order = [0, *[phases.value_of(n) for n in theirs.names], len(phases) + 1]
    reference_encoded = _encoded(reference, theirs, names[1]).rechunk(ours.chunks)
    reference_encoded = reference_encoded.map_blocks(
        lambda block: np.asarray(order, np.uint8)[block], dtype=np.uint8
    )
    joint = yield from _count_joint(ours, reference_encoded, len(phases))
    if joint[-1].any():
        raise BatterySegError(f"{_cap(names[1])}: {unknown_values_message(reference, theirs)}")
    if joint[:, -1].any():
        raise BatterySegError(f"{_cap(names[0])}: {unknown_values_message(segmentation, phases)}")
    _check_overlap(joint[:-1, :-1], names)
    result = Comparison(phases, joint[:-1, :-1])
    if axes:
        seg, ref = np.asarray(ours.compute()), np.asarray(reference_encoded.compute())
        for n, axis in enumerate(axes):
            result.through[axis] = _through(seg, ref, phases, AXES.index(axis), front_face)
            yield Progress(n + 1, len(axes), f"connectivity along {axis} compared")
    result.seconds = time.perf_counter() - started
    return result


def _cap(name: str) -> str:
    return name[:1].upper() + name[1:]


def _encoded(labels, phases: PhaseSet, name: str):
    """:func:`encoded_view`, its refusals (a float or 2D volume) naming the volume."""
    try:
        return encoded_view(labels, phases)
    except BatterySegError as exc:
        raise BatterySegError(f"{_cap(name)}: {exc}") from None


def _check_overlap(joint: np.ndarray, names: tuple[str, str]) -> None:
    """A reference that labels nothing, or nothing the segmentation labels, scores nothing."""
    if not joint[1:].any():
        raise BatterySegError(
            f"{_cap(names[1])} labels no voxel (every value is 0 = unlabelled), so there is "
            "nothing to score; give the reference labels (painted or segmented by hand)."
        )
    if not joint[1:, 1:].any():
        raise BatterySegError(
            f"{_cap(names[0])} labels none of the {int(joint[1:].sum()):,} voxels "
            f"{names[1]} labels: they do not overlap. Check that both show the same region."
        )


def _count_joint(ours, theirs, n_phases: int) -> Job[np.ndarray]:
    """Joint histogram of two encoded views (0..K+1 each), one slab of blocks at a time."""
    import dask

    bins = n_phases + 2
    pairs = (theirs.astype(np.uint16) * bins + ours).to_delayed()
    joint = np.zeros(bins * bins, np.int64)
    count = dask.delayed(lambda block: np.bincount(np.ravel(block), minlength=bins * bins))
    for row in range(pairs.shape[0]):
        for counts in dask.compute(*[count(block) for block in pairs[row].ravel()]):
            joint += counts
        yield Progress(row + 1, pairs.shape[0], f"slab {row + 1} of {pairs.shape[0]} compared")
    return joint.reshape(bins, bins)


def _through(seg, ref, phases: PhaseSet, axis: int, front_face: str) -> dict[str, tuple]:
    return {
        phase.name: tuple(
            Clusters(encoded == phase.value).connectivity(axis, front_face).through
            for encoded in (seg, ref)
        )
        for phase in phases
    }


def compare(segmentation, reference, phases=None, **options) -> Comparison:
    """Run :func:`compare_job` to completion (see there)."""
    return run_job(compare_job(segmentation, reference, phases, **options))
