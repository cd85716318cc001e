"""Turn image / painted-labels pairs into training crops, validation crops and phase counts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from ..errors import BatterySegError
from ..jobs import Job, Progress
from ..model import Normalization, estimate_intensity_range
from ..phases import PhaseSet
from ._config import TrainConfig, TrainingPair
from ._painted import NothingPaintedError, as_volume, one_slice_note, read_painted
from ._samples import Crop, build_crops, unlabelled_regions
from ._validation import split_strokes

__all__ = ["PreparedData", "as_pairs", "prepare_data"]

_UNLABELLED_REGIONS = 8  # per volume, random slices of the painted axes
_UNLABELLED_SIZE = 4  # region side in patch sizes
_SURVEY_PLANES = 4  # per painted volume (1 per 2D image): where the phase fractions are matched
_SURVEY_SIZE = 512  # survey region side at most (pixels)


@dataclass
class PreparedData:
    """Everything the training loop needs from the user's data."""

    crops: list[Crop]
    train_counts: np.ndarray
    val_counts: np.ndarray
    sources: list[dict] = field(default_factory=list)
    unlabelled: list[np.ndarray] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    survey: list[np.ndarray] = field(default_factory=list)  # see _balance

    @property
    def painted_counts(self) -> np.ndarray:
        return self.train_counts + self.val_counts


def as_pairs(pairs: Sequence) -> list[TrainingPair]:
    """Accept ``(image, labels)``, ``(image, labels, name)`` or :class:`TrainingPair` items."""
    if isinstance(pairs, TrainingPair) or (
        isinstance(pairs, tuple) and len(pairs) in (2, 3) and hasattr(pairs[0], "shape")
    ):
        pairs = [pairs]
    out = []
    for i, pair in enumerate(pairs):
        if isinstance(pair, TrainingPair):
            out.append(pair._replace(name=pair.name or f"volume {i + 1}"))
            continue
        if not isinstance(pair, (tuple, list)) or len(pair) not in (2, 3):
            raise BatterySegError(
                f"Training pair {i + 1} must be (image, labels) or (image, labels, name)."
            )
        name = str(pair[2]) if len(pair) == 3 and pair[2] else f"volume {i + 1}"
        out.append(TrainingPair(pair[0], pair[1], name))
    if not out:
        raise BatterySegError("No image / labels pair given: select an image and its labels.")
    return out


def prepare_data(
    pairs: list[TrainingPair],
    phases: PhaseSet,
    normalization: Normalization,
    config: TrainConfig,
    context: int,
    rng: np.random.Generator,
) -> Job[PreparedData]:
    """Read, check and split the painted voxels of every pair; build crops (a job).

    A pair without painted voxels (or with ``labels=None``) is an unpainted image: it only feeds
    unpainted patches (``config.unlabelled_patches``); at least one pair must be painted.
    """
    crops, train_counts, val_counts, sources, unlabelled, notes = [], 0, 0, [], [], []
    survey: list[np.ndarray] = []
    unpainted: list[tuple[TrainingPair, object, object]] = []
    nothing: NothingPaintedError | None = None
    n = len(phases)
    for i, pair in enumerate(pairs):
        yield Progress(i, len(pairs), f"Reading painted labels of {pair.name}")
        image = as_volume(pair.image, pair.name, "image")
        intensity = _intensity(image, normalization, config, pair.name)
        if pair.labels is None:
            unpainted.append((pair, image, intensity))
            continue
        labels = as_volume(pair.labels, pair.name, "labels")
        if tuple(image.shape) != tuple(labels.shape):
            raise BatterySegError(
                f"{pair.name}: the labels have shape {tuple(pair.labels.shape)} but the image "
                f"has shape {tuple(pair.image.shape)}; paint into a Labels layer of the image's "
                "shape (napari: select the image, then Layers > New Labels Layer)."
            )
        try:
            painted = read_painted(labels, phases, pair.name)
        except NothingPaintedError as exc:
            nothing = nothing or exc
            unpainted.append((pair, image, intensity))
            continue
        if note := one_slice_note(painted):
            notes.append(note)
        held = split_strokes(
            painted.values, painted.stroke, painted.coords, config.validation_fraction, rng
        )
        new = build_crops(
            image,
            painted,
            held,
            intensity,
            context=context,
            margin=config.patch_size,
            min_size=config.patch_size,
        )
        crops += new
        axes = sorted({c.axis for c in new})
        if config.unlabelled_patches:
            unlabelled += _regions(image, axes, intensity, context, config, rng)
        if config.match_fractions and not config.from_scratch:  # only read when used
            survey += _survey(image, axes, intensity, context, config.seed + i)
        train_counts = train_counts + np.bincount(painted.values[~held], minlength=n + 1)[1:]
        val_counts = val_counts + np.bincount(painted.values[held], minlength=n + 1)[1:]
        sources.append(_source(pair, painted.shape, painted.counts(n), phases, intensity))
    if not crops:
        raise nothing
    for pair, image, intensity in unpainted:
        if config.unlabelled_patches:
            unlabelled += _regions(image, [0], intensity, context, config, rng)
        sources.append(_source(pair, image.shape, np.zeros(n, int), phases, intensity))
    data = PreparedData(
        crops, np.asarray(train_counts), np.asarray(val_counts), sources, unlabelled, notes, survey
    )
    check_phases_painted(data.painted_counts, phases, pairs, config.train_missing_phases)
    return data


def _intensity(image, normalization: Normalization, config: TrainConfig, name: str):
    try:
        return estimate_intensity_range(image, normalization, seed=config.seed)
    except BatterySegError as exc:
        raise BatterySegError(f"{name}: {exc}") from None


def _regions(image, axes, intensity, context: int, config: TrainConfig, rng) -> list[np.ndarray]:
    """Unpainted regions of ``image`` on slices of ``axes`` (see ``unlabelled_regions``)."""
    return unlabelled_regions(
        image,
        tuple(int(s) for s in image.shape),
        axes,
        intensity,
        context=context,
        size=_UNLABELLED_SIZE * config.patch_size,
        count=_UNLABELLED_REGIONS,
        rng=rng,
    )


def _source(pair: TrainingPair, shape, counts, phases: PhaseSet, intensity) -> dict:
    """What the provenance records of one training volume (its voxel size when known)."""
    return {
        "name": pair.name,
        "shape": [int(s) for s in shape],
        "painted_voxels": {p.name: int(c) for p, c in zip(phases, counts, strict=True)},
        "intensity_range": [intensity.low, intensity.high],
        **({"voxel_size": list(pair.voxel_size)} if pair.voxel_size else {}),
    }


def check_phases_painted(
    counts: np.ndarray, phases: PhaseSet, pairs: list[TrainingPair], allow_missing: bool
) -> None:
    """Raise unless every phase is painted (or the user asked to train the others only)."""
    names = ", ".join(p.name for p in pairs)
    missing = [p.name for p, c in zip(phases, counts, strict=True) if c == 0]
    if missing and not allow_missing:
        raise BatterySegError(
            f"Phase(s) {', '.join(missing)} have no painted voxel in {names}. Paint a few "
            f"strokes of {' and '.join(missing)} (label value(s) "
            f"{', '.join(str(phases.value_of(m)) for m in missing)}), or choose to train the "
            "other phases only (--train-missing-phases / 'train painted phases only')."
        )
    if int((counts > 0).sum()) < 2:
        raise BatterySegError(
            f"Only one phase is painted in {names}; a model needs strokes of at least two "
            f"phases ({phases.describe()})."
        )


def _survey(image, axes, intensity, context: int, seed: int) -> list[np.ndarray]:
    """Random planes (along the painted axes) of a painted image, up to ``_SURVEY_SIZE`` wide,
    on which the trained network's phase fractions are compared with the start model's. Its own
    random generator, so that the training draws stay as they were."""
    shape = tuple(int(s) for s in image.shape)
    side = min(_SURVEY_SIZE, *(shape[a] for axis in axes for a in range(3) if a != axis))
    count = 1 if min(shape[axis] for axis in axes) == 1 else _SURVEY_PLANES
    return unlabelled_regions(
        image,
        shape,
        axes,
        intensity,
        context=context,
        size=side,
        count=count,
        rng=np.random.default_rng(seed),
    )
