"""The training job: sample, augment, optimise, validate on held-back strokes, keep the best.

:func:`train_job` is a generator (see :mod:`battery_seg.jobs`): it yields a progress event after
every optimiser step (so a Cancel acts within a step) and one with the epoch's loss and
per-phase validation IoU after every epoch, and returns a :class:`TrainResult`. The best model so
far is written (atomically) on every improvement, so a cancelled or interrupted run leaves the
last good checkpoint behind.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch

from .. import __version__
from ..errors import BatterySegError
from ..gpu_memory import release_gpu_memory
from ..jobs import Job, Progress, run_job
from ..model import ModelCard, UNet, save_model
from ._balance import (
    MIN_RECALL,
    MIN_TRUST,
    match_fractions,
    predicted_fractions,
    survey_log_probabilities,
)
from ._config import TrainConfig
from ._data import PreparedData, as_pairs, prepare_data
from ._grey_head import fit_grey_head, with_grey_head
from ._init import Start, initial_model, resolve_init
from ._loss import resolve_phase_weights
from ._predict import predict_planes
from ._samples import PatchSampler
from ._step import training_step
from ._transfer import head_rows, map_head, stroke_agreement
from ._validation import confusion, iou_from_confusion
from ._validation_notes import validation_notes

__all__ = ["TrainResult", "describe_iou", "train", "train_job"]

_TOLERANCE = 0.005  # IoU differences smaller than this are ties (broken by validation loss)


@dataclass
class TrainResult:
    """Outcome of a training run.

    ``model`` holds the best weights (eval mode); ``history`` one dict per epoch with
    ``epoch``, ``loss``, ``val_loss``, ``val_iou`` ({phase: IoU}), ``best``, ``lr`` and
    ``seconds``.
    """

    model: UNet
    card: ModelCard
    history: list[dict] = field(default_factory=list)
    best_val_iou: dict[str, float] = field(default_factory=dict)
    best_epoch: int = 0
    model_path: Path | None = None
    stopped_by: str = ""


def train(
    pairs: Sequence,
    config: TrainConfig | None = None,
    on_progress: Callable[[Progress], None] | None = None,
) -> TrainResult:
    """Train a U-Net from painted labels and return the best model (see :func:`train_job`).

    Examples
    --------
    >>> from battery_seg.phantom import make_sample
    >>> from battery_seg.training import simulate_strokes
    >>> sample = make_sample((16, 64, 64), seed=0)
    >>> painted = simulate_strokes(sample.labels, slices=[8], fraction=0.05, seed=0)
    >>> config = TrainConfig(epochs=1, steps_per_epoch=2, base_channels=4, depth=2,
    ...                      patch_size=32, batch_size=2)
    >>> result = train([(sample.image, painted, "phantom")], config)
    >>> len(result.history), sorted(result.card.provenance)[:3]
    (1, ['best_epoch', 'best_val_iou', 'config'])
    """
    return run_job(train_job(pairs, config), on_progress)


def train_job(
    pairs: Sequence, config: TrainConfig | None = None, *, preview: Callable | None = None
) -> Job[TrainResult]:
    """Training as a job: yields :class:`~battery_seg.jobs.Progress`, returns TrainResult.

    Parameters
    ----------
    pairs : sequence
        ``(image, labels)`` or ``(image, labels, name)`` tuples / :class:`TrainingPair`: NumPy or
        dask arrays ``(Z, Y, X)`` or ``(Y, X)``; labels 0 = unpainted, 1..K = phases. The labels
        are only read.
    config : TrainConfig, optional
        Settings (defaults: 40 epochs, from scratch, ``si-graphite``).
    preview : callable, optional
        ``preview(model, card)``, called after every epoch with the model as validated (e.g.
        :func:`~battery_seg.training.predict_slice` on the slice a user looks at); it runs in
        the job's thread, and its return value travels in the epoch's event as ``"preview"``.

    Yields
    ------
    Progress
        After each step (``message`` says epoch and step) and after each epoch with ``data =
        {"epoch", "loss", "val_loss", "val_iou", "best", "lr", "seconds"}``; before the first
        step, when the painting calls for it, once with ``data = {"notes": [...]}`` (e.g. every
        stroke of a 3D volume on one slice, a stack of unrelated slices given to ``init="auto"``).

    Raises
    ------
    BatterySegError
        For unusable data or settings, naming the layer / file and the fix.
    """
    config = config if config is not None else TrainConfig()
    started = time.perf_counter()
    pairs = as_pairs(pairs)
    config, init_notes = resolve_init(config, pairs)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    start = initial_model(config)
    data = yield from prepare_data(
        pairs, start.phases, start.card.normalization, config, start.card.context, rng
    )
    data.notes[:0] = init_notes
    if data.notes:  # before the long part, so a user can stop and paint more
        yield Progress(0, 1000, data.notes[0], {"notes": list(data.notes)})
    start, adoption = _adopt(start, data, config)
    model, card = start.model, start.card
    target = _target_fractions(start, data, config, adoption)
    weights = resolve_phase_weights(
        config.phase_weights, card.phases, data.train_counts, config.weight_cap
    )
    loop = _Loop(start, config, data, weights, rng, started, adoption)
    loop.preview = preview
    try:
        history = yield from loop.run()
        card = replace(card, provenance=_provenance(loop))
        model.load_state_dict(loop.best_state)
    finally:  # finished, failed or cancelled: nothing of the run stays on the GPU
        model.to("cpu").eval()  # the result is used like a loaded checkpoint
        best_iou, best_epoch, stopped_by = loop.best_iou_by_phase, loop.best_epoch, loop.stopped_by
        del loop
        release_gpu_memory()
    model, card = yield from _finish(model, card, data, config, adoption, target, preview)
    return TrainResult(
        model,
        card,
        history,
        best_iou,
        best_epoch,
        Path(config.output) if config.output is not None else None,
        stopped_by,
    )


class _Loop:
    """The optimisation loop and its best-model bookkeeping."""

    def __init__(
        self,
        start: Start,
        config: TrainConfig,
        data: PreparedData,
        weights,
        rng,
        started: float,
        adoption: dict,
    ) -> None:
        model, card = start.model, start.card
        self.model, self.card, self.config, self.data = model, card, config, data
        self.started, self.init_label = started, start.label
        self.device = _device(config.device)
        self.model.to(self.device).to(memory_format=torch.channels_last).train()
        # Validated, kept and saved: the running average of the weights, or the weights.
        self.averaged = copy.deepcopy(model) if config.weight_averaging else model
        self.sampler = PatchSampler(
            data.crops, len(card.phases), config.patch_size, rng, data.unlabelled
        )
        self.weights = torch.tensor(weights, dtype=torch.float32, device=self.device)
        self.optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.peak_learning_rate, weight_decay=1e-4
        )
        self.generator = torch.Generator().manual_seed(config.seed)
        self.adoption = adoption
        self.retain = config.retain_weight * adoption.get("trust", 0.0)
        self.teacher = _teacher(model) if self.retain > 0 else None
        self.validation = _validation_regions(data, model.config.receptive_radius)
        self.val_notes = validation_notes(data.crops, card.phases.names)
        self.best_state = copy.deepcopy(model.state_dict())
        self.best_score = (-math.inf, math.inf)
        self.best_epoch = self.epoch = self.steps = 0
        self.best_iou_by_phase: dict[str, float] = {}
        self.stopped_by = ""
        self.preview: Callable | None = None

    def fraction(self) -> float:
        """How far the run is, by epochs or by time, whichever is further."""
        c = self.config
        done = 0.0
        if c.epochs is not None:
            done = self.steps / (c.epochs * c.steps_per_epoch)
        if c.minutes is not None:
            done = max(done, (time.perf_counter() - self.started) / (60 * c.minutes))
        return min(done, 1.0)

    def learning_rate(self) -> float:
        """Linear warm-up over the first 5 %, then cosine decay to 2 % of the peak."""
        f, peak = self.fraction(), self.config.peak_learning_rate
        if f < 0.05:
            return peak * (0.1 + 0.9 * f / 0.05)
        return peak * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * (f - 0.05) / 0.95)))

    def run(self) -> Job[list[dict]]:
        history: list[dict] = []
        epoch, since_best = 0, 0
        while not self.stopped_by:
            epoch += 1
            losses = yield from self._epoch(epoch)
            if not losses:
                break
            self.epoch = epoch
            record = self._end_epoch(epoch, float(np.mean(losses)))
            history.append(record)
            since_best = 0 if record["best"] else since_best + 1
            if self.config.epochs is not None and epoch >= self.config.epochs:
                self.stopped_by = "epochs"
            elif self.fraction() >= 1:
                self.stopped_by = "time"
            elif self.config.patience is not None and since_best >= self.config.patience:
                self.stopped_by = "early stopping"
            data = record
            if self.preview is not None:
                data = {**record, "preview": self.preview(self.averaged, self.card)}
            yield Progress(round(1000 * self.fraction()), 1000, _summary(record), data)
        return history

    def _epoch(self, epoch: int) -> Job[list[float]]:
        c = self.config
        losses = []
        for step in range(c.steps_per_epoch):
            if self.fraction() >= 1 and epoch > 1:  # a tiny time budget still trains one epoch
                self.stopped_by = "time"
                break
            for group in self.optimizer.param_groups:
                group["lr"] = self.learning_rate()
            losses.append(self._step())
            self.steps += 1
            yield Progress(
                round(1000 * self.fraction()),
                1000,
                f"epoch {epoch}: step {step + 1}/{c.steps_per_epoch}, loss {losses[-1]:.3f}",
            )
        return losses

    def _step(self) -> float:
        ramp = min(1.0, self.fraction() / 0.3)
        loss = training_step(
            self.model,
            self.optimizer,
            self.sampler,
            self.config,
            self.weights,
            self.generator,
            ramp,
            teacher=self.teacher,
            retain=self.retain,
            mean_teacher=self.averaged if self.averaged is not self.model else None,
        )
        if self.averaged is not self.model:
            _update_average(self.averaged, self.model, self.steps)
        return loss

    def _end_epoch(self, epoch: int, loss: float) -> dict:
        if not math.isfinite(loss):
            raise BatterySegError(
                f"Training diverged in epoch {epoch} (the loss became {loss}); the weights are "
                "no longer numbers, so this epoch was not saved. Use a lower learning rate "
                "(--lr), or check the image for extreme values."
            )
        iou, val_loss = _validate(self.averaged, self.validation, self.card, self.device)
        mean_iou = float(np.mean(list(iou.values()))) if iou else 0.0
        if not iou:  # nothing held back: judge by the training loss
            val_loss = loss
        best_iou, best_loss = self.best_score
        improved = mean_iou > best_iou + _TOLERANCE or (
            mean_iou >= best_iou - _TOLERANCE and val_loss < best_loss
        )
        if improved:
            self.best_score = (mean_iou, val_loss)
            self.best_state = copy.deepcopy(self.averaged.state_dict())
            self.best_epoch, self.best_iou_by_phase = epoch, iou
            if self.config.output is not None:
                self._save()
        return {
            "epoch": epoch,
            "loss": loss,
            "val_loss": val_loss,
            "val_iou": iou,
            "val_notes": self.val_notes,
            "best": improved,
            "lr": self.learning_rate(),
            "seconds": time.perf_counter() - self.started,
        }

    def _save(self) -> None:
        card = replace(self.card, provenance=_provenance(self))
        save_model(self.config.output, self.averaged, card)


def _adopt(start: Start, data: PreparedData, config: TrainConfig) -> tuple[Start, dict]:
    """Judge the start model on the training strokes; fill a new output layer from its own.

    Returns the start with its final network and what was found: the start model's balanced
    accuracy on the strokes (``agreement``), how much of it to keep away from them (``trust``,
    0..1) and, for a new output layer, which of its phases each phase took (``phase_map``).
    """
    if start.source is None:
        return start, {}
    n_phases = len(start.phases)
    agreement = stroke_agreement(start.source, data.crops, n_phases, device=_device(config.device))
    if start.keeps_head:
        rows = list(range(n_phases))
        adoption = {}
    else:
        rows = head_rows(start.source_phases, start.phases, agreement)
        model = map_head(start.source, n_phases, rows)
        start = start._replace(model=model.train())
        names = start.source_phases.names
        adoption = {
            "phase_map": {
                p: (names[j] if j is not None else None)
                for p, j in zip(start.phases.names, rows, strict=True)
            }
        }
    adoption["agreement"] = round(agreement.accuracy(rows), 4)
    adoption["trust"] = round(agreement.trust(rows), 4)
    adoption["recall"] = [None if r is None else round(r, 4) for r in agreement.recall(rows)]
    if "grey_head" in start.card.provenance:  # a model that blends grey levels goes on doing so
        adoption["grey_levels"] = True
    return start, adoption


def _target_fractions(
    start: Start, data: PreparedData, config: TrainConfig, adoption: dict
) -> np.ndarray | None:
    """The start model's phase fractions on the survey planes, when it is to be matched: when it
    labels the strokes well overall and misses no phase's strokes (a start model that labels
    most of some phase's strokes as another, e.g. what a user painted to correct it, does not
    know that phase's fraction)."""
    if not config.match_fractions or not _knows_imaging(adoption) or not data.survey:
        return None
    return predicted_fractions(survey_log_probabilities(start.model, data.survey))


def _knows_imaging(adoption: dict) -> bool:
    """Whether the start model labels the strokes well (:func:`_adopt`'s ``trust`` at least
    ``MIN_TRUST``) and misses no phase's strokes (each phase's recall at least ``MIN_RECALL``):
    then its phase fractions are matched; otherwise (or from scratch, or from a model that
    blends them already) a grey-level head is blended in (``TrainConfig.grey_weight``)."""
    recall = [r for r in adoption.get("recall", []) if r is not None]
    return adoption.get("trust", 0.0) >= MIN_TRUST and min(recall, default=0.0) >= MIN_RECALL


def _finish(
    model: UNet,
    card: ModelCard,
    data: PreparedData,
    config: TrainConfig,
    adoption: dict,
    target: np.ndarray | None,
    preview: Callable | None,
) -> Job[tuple[UNet, ModelCard]]:
    """After the loop, on the best weights: match the phase fractions to ``target``, or blend
    in the grey levels when the start model does not know the imaging; preview and save the
    model as it is then."""
    if target is not None:
        card.provenance["fractions"] = match_fractions(model, data.survey, target)
        if note := _fractions_note(card):
            yield note
    if config.grey_weight > 0 and (adoption.get("grey_levels") or not _knows_imaging(adoption)):
        model, card = yield from _blend_grey_levels(model, card, data, config, adoption)
    if preview is not None:  # the slice on screen as the saved model segments it
        yield Progress(1000, 1000, "preview of the model", {"preview": preview(model, card)})
    if config.output is not None:  # same best weights, final provenance (epochs run, time)
        save_model(config.output, model, card)
    return model, card


def _blend_grey_levels(
    model: UNet, card: ModelCard, data: PreparedData, config: TrainConfig, adoption: dict
) -> Job[tuple[UNet, ModelCard]]:
    """The trained ``model`` with a grey-level head fitted to the painted voxels blended in
    (``TrainConfig.grey_weight``), its reason recorded and said."""
    head = yield from fit_grey_head(data.crops, len(card.phases), config.seed)
    model, card = with_grey_head(model, card, head, config.grey_weight)
    note = _grey_note(card, adoption, config.grey_weight)
    card.provenance["grey_head"] = {"weight": config.grey_weight, "note": note}
    yield Progress(1000, 1000, "grey levels blended in", {"notes": [note]})
    return model, card


def _grey_note(card: ModelCard, adoption: dict, weight: float) -> str:
    """Why the model blends a grey-level head (a note for the CLI, the dock, the provenance)."""
    start = card.provenance["init"].split(" (")[0]
    if "agreement" not in adoption:
        why = "Trained from scratch"
    elif not _knows_imaging(adoption):
        why = (
            f"The start model ({start}) labels {100 * adoption['agreement']:.0f} % of the "
            "strokes right overall, or under half of some phase's, too few to know this imaging"
        )
    else:
        why = f"The start model ({start}) blended in grey levels; fitted again to these strokes"
    note = (
        f"{why}: the model blends in a classifier of the grey levels fitted to the same strokes "
        f"(weight {weight:g}), which draws the boundaries of look-alike phases (pore and CBD) "
        "from the grey values. To leave it out: --no-grey-levels (CLI), 'blend in grey levels' "
        "off (Train dock, More options), grey_weight=0 (Python)."
    )
    return note


def _fractions_note(card: ModelCard) -> Progress | None:
    """What matching the fractions changed, as a note (the CLI prints it, the dock shows it);
    None when no fraction moved by a percentage point."""
    done = card.provenance["fractions"]
    if np.abs(np.subtract(done["before"], done["after"])).max() < 0.01:
        return None
    change = ", ".join(
        f"{name} {before:.2f} -> {after:.2f}"
        for name, before, after in zip(
            card.phases.names, done["before"], done["after"], strict=True
        )
    )
    note = (
        f"Phase fractions matched to the start model's ({card.provenance['init']}, which labels "
        f"{100 * card.provenance['start_model']['agreement']:.0f} % of the strokes right): "
        f"{change} on a few planes of the training images. Strokes of every phase in equal "
        "amounts make a network over-predict the rare phases. To keep the fractions the strokes "
        "gave: --no-match-fractions (CLI), 'keep the start model's phase fractions' off (Train "
        "dock, More options), match_fractions=False (Python)."
    )
    return Progress(1000, 1000, "phase fractions matched", {"notes": [note]})


def _teacher(model: UNet) -> UNet:
    """A frozen copy of the start model (see retain_weight)."""
    teacher = copy.deepcopy(model).eval()
    for parameter in teacher.parameters():
        parameter.requires_grad_(False)
    return teacher


def _update_average(averaged: UNet, model: UNet, step: int, decay: float = 0.99) -> None:
    """Exponential moving average of the weights (short memory early on); BN statistics copied."""
    rate = 1.0 - min(decay, (1.0 + step) / (10.0 + step))
    with torch.no_grad():
        averaged_params = list(averaged.parameters())
        torch._foreach_lerp_(averaged_params, list(model.parameters()), rate)
        for target, source in zip(averaged.buffers(), model.buffers(), strict=True):
            target.copy_(source)


def _device(name: str) -> torch.device:
    """``"auto"``: CUDA when available, else the CPU; otherwise the named (existing) device."""
    from ..checks import resolve_device

    return torch.device(resolve_device(name, "training"))


def _validation_regions(
    data: PreparedData, halo: int, max_pixels: int = 2_000_000
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``(image (C, h, w), validation labels (h, w))`` around the held-back strokes of each crop.

    Densely labelled volumes (whole labelled planes) would make every epoch's validation cost
    more than its training: beyond ``max_pixels`` a fixed random subset of the regions is kept.
    """
    regions = []
    for crop in data.crops:
        rows, cols = np.nonzero(crop.val)
        if rows.size == 0:
            continue
        top, left = max(rows.min() - halo, 0), max(cols.min() - halo, 0)
        bottom, right = rows.max() + 1 + halo, cols.max() + 1 + halo
        window = (slice(top, bottom), slice(left, right))
        regions.append((crop.image[(slice(None), *window)], crop.val[window]))
    sizes = np.array([truth.size for _, truth in regions])
    if sizes.sum() <= max_pixels:
        return regions
    order = np.random.default_rng(0).permutation(len(regions))
    keep = order[: max(1, int(np.searchsorted(np.cumsum(sizes[order]), max_pixels)))]
    return [regions[i] for i in sorted(keep)]


def _validate(model, regions, card: ModelCard, device) -> tuple[dict[str, float], float]:
    """Per-phase IoU and mean cross-entropy on the held-back strokes."""
    n = len(card.phases)
    matrix = np.zeros((n, n), np.int64)
    log_losses = []
    for image, truth in regions:
        probability = predict_planes(model, image[None], device=device)[0]  # (K, h, w)
        painted = truth > 0
        predicted = probability.argmax(axis=0).astype(np.int64) + 1
        matrix += confusion(truth, predicted, n)
        p_true = np.take_along_axis(probability, (truth.astype(np.int64) - 1)[None].clip(0), 0)
        log_losses.append(-np.log(p_true[0][painted] + 1e-6))
    if not regions:
        return {}, math.inf
    return iou_from_confusion(matrix, card.phases.names), float(np.concatenate(log_losses).mean())


def describe_iou(val_iou: dict[str, float], notes: dict[str, str], digits: int = 2) -> str:
    """``"pore 0.97, cbd 1.00 (easy strokes ...)"``: each IoU with what it cannot say."""
    return ", ".join(
        f"{name} {iou:.{digits}f}" + (f" ({notes[name]})" if notes.get(name) else "")
        for name, iou in val_iou.items()
    )


def _summary(record: dict) -> str:
    scores = describe_iou(record["val_iou"], record.get("val_notes", {}))
    best = " (best)" if record["best"] else ""
    return f"epoch {record['epoch']}: loss {record['loss']:.3f}; val IoU {scores or '-'}{best}"


def _provenance(loop: _Loop) -> dict:
    """What the checkpoint was trained on and how (stored in the model file)."""
    config, data, phases = loop.config, loop.data, loop.card.phases
    return {
        "trained_by": f"napari-battery-seg {__version__}",
        "package_version": __version__,
        "data": data.sources,
        "painted_voxels": {
            p.name: int(c) for p, c in zip(phases, data.painted_counts, strict=True)
        },
        "validation_voxels": {p.name: int(c) for p, c in zip(phases, data.val_counts, strict=True)},
        "untrained_phases": [
            p.name for p, c in zip(phases, data.train_counts, strict=True) if c == 0
        ],
        "epochs": loop.epoch,
        "best_epoch": loop.best_epoch,
        "steps": loop.steps,
        "best_val_iou": dict(loop.best_iou_by_phase),
        "validation_notes": {k: v for k, v in loop.val_notes.items() if v},
        "data_notes": list(data.notes),
        "training_seconds": round(time.perf_counter() - loop.started, 1),
        "init": loop.init_label,
        "start_model": dict(loop.adoption),
        "seed": config.seed,
        "stopped_by": loop.stopped_by or None,
        "trained_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "config": config.to_dict(),
    }
