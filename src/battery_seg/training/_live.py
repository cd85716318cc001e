"""Live segmentation: a small head on a trained U-Net's features, fitted in seconds to strokes.

:func:`live_job` reads the features of the painted slices from a
:class:`~battery_seg.training._features.FeatureBank` (computed once, cached), fits a per-pixel
MLP (:class:`~battery_seg.model.MultiScaleHead`) to the painted voxels and folds it, with the
feature standardisation, into a copy of the base U-Net: the result is a model like any other
(``segment``, the docks, ``train --init`` and ``export`` take its file). Refitting after a new
stroke starts from the previous head (``previous``), so it takes a fifth of the steps.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import BatterySegError
from ..jobs import Job, Progress, run_job
from ..model import ModelCard, UNet, save_model
from ..phases import PhaseSet
from ._config import LiveConfig
from ._features import FeatureBank
from ._live_head import FittedHead, feature_scale, fit_head, fold_head

__all__ = ["LiveConfig", "LiveModel", "live_fit", "live_job", "uncertainty"]

BACKGROUND_PIXELS = 4096  # random pixels per painted slice that set the feature scale
# "auto": the head reads the network's features when the network alone labels at least this
# share of each phase's strokes (mean over phases), else classic filter features. Measured with
# bench/bench_live.py --accuracy (1 %): LRCS A 0.500 on network features, 0.557 on filters
# (three scales; 0.561 with the 8-pixel scale); LRCS B 0.496 and 0.551 (0.568) (bundled 2d model,
# anode phases: agreement 0); the phantom 0.817 on the network's features (its start model labels
# the strokes well; 0.879 with the fractions matched).
NETWORK_TRUST = 0.7
# Rows of a slice's probabilities computed at a time: keeps the head's hidden maps ~8 MB. Maps of
# a whole 1024^2 slice (128 MB each) are fresh pages from the system every time, and zeroing them
# took 60 % of an update (the head on a 1024^2 slice: 1.44 s whole, 0.55 s in strips).
STRIP_BYTES = 8 << 20


@dataclass
class LiveModel:
    """A fitted live model: ``network`` (the base U-Net with the head folded in), its ``card``
    and the ``bank`` of features it predicts cached slices from."""

    network: UNet
    card: ModelCard
    bank: FeatureBank
    painted_voxels: int = 0
    head: FittedHead | None = None  # as fitted (on the standardised feature columns it reads)

    @property
    def features(self) -> str:
        """What the head reads: ``"filters"`` or the base ``"network"``'s features."""
        return "filters" if self.card.architecture.live_filters else "network"

    def probabilities(self, image: Any, index: int) -> np.ndarray:
        """``(K, H, W)`` phase probabilities of slice ``index`` (from cached features: the same
        numbers as the saved model's forward pass on that slice)."""
        features = self.bank.slice(image, index, filters=self.network.filters is not None)
        height, width = features.shape
        padded = features.logits.shape[-1]
        step = max(1, STRIP_BYTES // (4 * self.network.config.live_hidden * padded))
        probability = np.empty((self.card.architecture.n_phases, height, width), np.float32)
        bounds = [(top, min(top + step, height)) for top in range(0, height, step)]
        with torch.inference_mode():
            scales = features.scales
            if self.network.filters is not None:
                scales = [*scales, features.filters]
            strips = self.network.live.strips(scales, features.logits, bounds)
            for (top, bottom), logits in zip(bounds, strips, strict=True):
                probability[:, top:bottom] = torch.softmax(logits, 1)[0, :, :, :width].cpu()
        return probability

    def predict_slice(self, image: Any, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Phase labels (1..K, uint8) and :func:`uncertainty` (0..1) of slice ``index``."""
        probability = self.probabilities(image, index)
        return probability.argmax(axis=0).astype(np.uint8) + 1, uncertainty(probability)

    def save(self, path: str | os.PathLike) -> Path:
        return save_model(path, self.network, self.card)


def uncertainty(probability: np.ndarray) -> np.ndarray:
    """Normalised entropy of ``(K, ...)`` probabilities: 0 = sure, 1 = all phases alike.

    Examples
    --------
    >>> uncertainty(np.array([[1.0, 0.5], [0.0, 0.5]])).round(3).tolist()
    [0.0, 1.0]
    """
    p = np.clip(probability, 1e-12, 1.0)
    return (-(p * np.log(p)).sum(axis=0) / np.log(len(p))).astype(np.float32)


def live_fit(image: Any, strokes: Any, config: LiveConfig | None = None, **kwargs) -> LiveModel:
    """Fit a live model to the strokes painted on ``image`` (see :func:`live_job`; a list of
    images with a list of their strokes fits them all, each image normalised on its own).

    Examples
    --------
    >>> from battery_seg.phantom import make_sample
    >>> from battery_seg.training import simulate_strokes
    >>> sample = make_sample((8, 64, 64), seed=0)
    >>> strokes = simulate_strokes(sample.labels, slices=[4], fraction=0.05)
    >>> live = live_fit(sample.image, strokes, LiveConfig(steps=20))
    >>> live.predict_slice(sample.image, 4)[0].shape
    (64, 64)
    """
    return run_job(live_job(image, strokes, config or LiveConfig(), **kwargs))


def live_job(
    image: Any,
    strokes: Any,
    config: LiveConfig,
    *,
    bank: FeatureBank | None = None,
    previous: LiveModel | None = None,
    names: list[str] | None = None,
) -> Job[LiveModel]:
    """Read the painted slices' features (yielding after each), fit the head, return the
    :class:`LiveModel` (saved to ``config.output`` when set).

    ``image`` and ``strokes`` are one image and its strokes, or lists of several (separate
    images, each normalised with its own grey-value range, as ``segment`` normalises each file;
    images with no strokes are left out; ``names``, e.g. their files, name them in messages).
    ``bank`` (a :class:`FeatureBank` of the base network) keeps features between fits;
    ``previous`` (a model of the same bank and phases) is where the head starts.
    """
    pairs = _pairs(image, strokes)
    if bank is None:
        bank = base_bank(config, [picture for picture, _ in pairs])
    phases = _phases(config, bank.card)
    painted = _painted_slices(pairs, len(phases), names)  # (image, slice index, name)
    fits = _fits(previous, bank, len(phases), config)
    # what the head reads, when known before the features: a refit's, or the one asked for
    known = previous.features if fits else (None if config.features == "auto" else config.features)
    samples, y = [], []  # per painted slice: (image, index, stroke pixels, random pixels)
    rng = np.random.default_rng(config.seed)
    per_slice = max(1, config.max_points // len(painted))
    for i, (k, index, name) in enumerate(painted):
        yield Progress(i, len(painted) + 1, f"features of {name}")
        picture, marks = pairs[k]
        plane = np.asarray(_plane(marks, index))
        rows, cols = np.nonzero(plane)
        if len(rows) > per_slice:
            keep = rng.choice(len(rows), per_slice, replace=False)
            rows, cols = rows[keep], cols[keep]
        y.append(torch.from_numpy(plane[rows, cols].astype(np.int64) - 1))
        anywhere = rng.integers(0, plane.shape, size=(BACKGROUND_PIXELS, 2)).T
        samples.append((picture, index, (rows, cols), tuple(anywhere)))
        bank.slice(picture, index, filters=known == "filters")  # the features, before the yield
    yield Progress(len(painted), len(painted) + 1, "fitting")
    y = torch.cat(y)
    x, background = _gather(bank, samples, known == "filters")
    reads = known or _what_to_read(config, bank, phases, x, y)
    if reads == "filters" and known is None:  # the network's features were not enough
        x, background = _gather(bank, samples, True)
    columns, groups = _columns(bank.feature_groups, reads)
    scale = feature_scale(background[:, columns], groups, reads == "network")
    start = previous.head if fits else None
    head = yield from fit_head(x[:, columns], y, len(phases), config, scale, start)
    matched = None
    if reads == "network" and config.match_fractions:
        matched = _match_fractions(head, bank, phases, x, y, background, columns)
    provenance = {
        "live": {
            "base_model": bank.name,
            "painted_voxels": len(y),
            "slices": [index for k, index, _ in painted if k == 0][:50],  # of the first image
            "images": len(pairs),
            "features": reads,
            "fractions_matched": matched,
        },
        "live_config": {k: v for k, v in asdict(config).items() if k not in ("output", "phases")},
    }
    network, card = fold_head(bank, head, phases, provenance, columns)
    live = LiveModel(network, card, bank, len(y), head)
    if config.output is not None:
        live.save(config.output)
    return live


def base_bank(config: LiveConfig, image: Any) -> FeatureBank:
    """A :class:`FeatureBank` of the base network ``config.init`` names (``auto``: the bundled
    model that suits ``image``, or a list of images, as training picks it)."""
    from ..model import load_model
    from ._config import TrainConfig, TrainingPair
    from ._grey_head import without_grey_head
    from ._init import resolve_init

    init = config.init
    if str(init).lower() == "auto":
        probe = TrainConfig(init="auto", phases=config.phases)
        images = image if isinstance(image, (list, tuple)) else [image]
        init = resolve_init(probe, [TrainingPair(im, im, "image") for im in images])[0].init
    network, card = without_grey_head(*load_model(init))  # the features are the U-Net's
    if card.architecture.live_hidden:
        raise BatterySegError(
            f"{init} is a live model; live fitting reads the features of a trained U-Net. "
            "Start from a bundled model (default, fast, 2d, nmc, nmc-2d) or a model from Train."
        )
    return FeatureBank(network, card, config.cache_bytes, name=str(init))


def _phases(config: LiveConfig, card: ModelCard) -> PhaseSet:
    from ._init import model_phases

    return card.phases if config.phases is None else model_phases(PhaseSet.parse(config.phases))


def _pairs(image: Any, strokes: Any) -> list[tuple[Any, Any]]:
    """``(image, strokes)`` pairs from one image and its strokes or from two lists."""
    if not isinstance(image, (list, tuple)):
        return [(image, strokes)]
    if not isinstance(strokes, (list, tuple)) or len(strokes) != len(image) or not image:
        raise BatterySegError(
            f"Give one strokes array per image: got {len(image)} image(s) and "
            f"{len(strokes) if isinstance(strokes, (list, tuple)) else 'not a list of'} strokes."
        )
    return list(zip(image, strokes, strict=True))


def _painted_slices(
    pairs: list[tuple[Any, Any]], n_phases: int, names: list[str] | None = None
) -> list[tuple[int, int, str]]:
    """``(image number, slice index, name for progress)`` of every painted slice."""
    painted = []
    for k, (image, strokes) in enumerate(pairs):
        named = len(pairs) > 1 or bool(names)  # one unnamed image goes without a name
        name = names[k] if names and k < len(names) and names[k] else f"image {k + 1}"
        where = f" of {name}" if named else ""
        if tuple(strokes.shape) != tuple(image.shape) or image.ndim not in (2, 3):
            raise BatterySegError(
                f"The strokes {tuple(strokes.shape)}{where} must have the image's shape "
                f"{tuple(image.shape)}, 2D or 3D: paint them in a Labels layer over the image."
            )
        planes = np.asarray(strokes)[None] if strokes.ndim == 2 else strokes
        painted += [
            (k, i, f"slice {i}{where}" if image.ndim == 3 else name if named else "the image")
            for i in range(planes.shape[0])
            if np.asarray(planes[i]).any()
        ]
    if not painted:
        raise BatterySegError("Nothing is painted yet: paint a few strokes of every phase.")
    top = max(int(np.asarray(_plane(pairs[k][1], i)).max()) for k, i, _ in painted)
    if top > n_phases:
        raise BatterySegError(
            f"Strokes use label {top} but there are only {n_phases} phases; choose phases "
            "with as many names as labels painted (e.g. 'pore,active,cbd')."
        )
    return painted


def _plane(strokes: Any, index: int) -> Any:
    return strokes if strokes.ndim == 2 else strokes[index]


def _fits(previous: LiveModel | None, bank: FeatureBank, n_phases: int, config) -> bool:
    return (
        previous is not None
        and previous.head is not None
        and previous.bank is bank
        and previous.card.architecture.n_phases == n_phases
        and previous.card.architecture.live_hidden == config.hidden
        and config.features in ("auto", previous.features)
    )


def base_agreement(bank: FeatureBank, phases: PhaseSet, x: torch.Tensor, y: torch.Tensor) -> float:
    """How well the base network labels the strokes by itself: the mean over phases of the
    share of each phase's strokes its logits (the last block of ``x``) put in that phase; 0
    when it does not know every phase by name."""
    recalls = _base_recalls(bank, phases, x, y)
    return float(recalls.mean()) if recalls is not None else 0.0


def _base_recalls(bank: FeatureBank, phases: PhaseSet, x, y) -> torch.Tensor | None:
    """Per painted phase, the share of its strokes the base network's logits put in it (None
    when the network does not know every phase by name)."""
    labels = _base_labels(bank, phases, x)
    if labels is None:
        return None
    return torch.stack(
        [(labels[y == k] == k).float().mean() for k in range(len(phases)) if (y == k).any()]
    )


def _base_labels(bank: FeatureBank, phases: PhaseSet, x: torch.Tensor) -> torch.Tensor | None:
    """The base network's phase (0..K-1 in ``phases``' order) at every row of ``x``, from its
    logits (the last block); None when it does not know every phase by name."""
    names = list(bank.card.phases.names)
    if not set(phases.names) <= set(names):
        return None
    logits = x[:, -bank.card.architecture.n_phases :]
    return logits[:, [names.index(n) for n in phases.names]].argmax(dim=1)


def _match_fractions(head: FittedHead, bank, phases, x, y, background, columns) -> dict | None:
    """Shift ``head``'s output biases (in place) so that it predicts the base network's phase
    fractions on the painted slices' random pixels, when the network labels the strokes well
    (mean recall at least :data:`NETWORK_TRUST`, every phase's at least ``MIN_RECALL``)."""
    from ._balance import MIN_RECALL, shift_to

    recalls = _base_recalls(bank, phases, x, y)
    if recalls is None or recalls.mean() < NETWORK_TRUST or recalls.min() < MIN_RECALL:
        return None
    base = _base_labels(bank, phases, background)
    target = np.bincount(base.numpy(), minlength=len(phases)) / len(base)
    with torch.inference_mode():
        log_p = torch.log_softmax(head.logits(background[:, columns]), dim=1)
    shift, report = shift_to(log_p.T[None].numpy(), target)  # log_p as (1, K, N)
    with torch.no_grad():
        head.second.bias += torch.from_numpy(shift)
    return report


def _what_to_read(config, bank: FeatureBank, phases: PhaseSet, x, y) -> str:
    """``config.features``, or for ``auto``: the network's features where it labels the strokes
    itself (:func:`base_agreement` of at least :data:`NETWORK_TRUST`), else the filters."""
    if config.features != "auto":
        return config.features
    return "network" if base_agreement(bank, phases, x, y) >= NETWORK_TRUST else "filters"


def _gather(bank: FeatureBank, samples: list, filters: bool):
    """Features of the stroke pixels and of the random pixels of every painted slice."""
    x = [bank.at(im, index, *strokes, filters=filters) for im, index, strokes, _ in samples]
    anywhere = [bank.at(im, index, *pixels, filters=filters) for im, index, _, pixels in samples]
    return torch.cat(x), torch.cat(anywhere)


def _columns(groups: list[int], reads: str) -> tuple[torch.Tensor, list[int]]:
    """The feature columns (of blocks ``groups``: scales, filters, logits) a head reading
    ``reads`` fits on, and its blocks' widths."""
    starts = np.cumsum([0, *groups])
    kept = [len(groups) - 2] if reads == "filters" else [*range(len(groups) - 2), len(groups) - 1]
    columns = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in kept])
    return torch.from_numpy(columns), [groups[i] for i in kept]
