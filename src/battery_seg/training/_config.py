"""The one configuration object of a training run, shared by the widget, the CLI and the API."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

from ..checks import check_device, check_memory, check_output, network_bytes, resolve_device
from ..errors import BatterySegError
from ..phases import PhaseSet

__all__ = ["CONTEXTS", "LiveConfig", "TrainConfig", "TrainingPair"]

CONTEXTS = (1, 3, 5, 7)
DEFAULT_CONTEXT = 3
SCRATCH = ("", "none", "scratch")  # an `init` that means: train from scratch
AUTO = "auto"  # an `init` that means: the bundled model that suits the data (see resolve_init)


class TrainingPair(NamedTuple):
    """One image volume and the labels painted on it.

    ``image`` and ``labels`` are NumPy or dask arrays of the same shape, ``(Z, Y, X)`` or
    ``(Y, X)`` (one slice). ``labels`` holds 0 for unpainted voxels and the phase values 1..K
    (or the file values of a ``NAME=VALUE`` phase set); it is only ever read. ``name`` (layer or
    file name) appears in error messages and in the checkpoint's provenance, and so does
    ``voxel_size`` (``(dz, dy, dx)`` in µm, when known): the resolution the model learnt.
    """

    image: Any
    labels: Any
    name: str = ""
    voxel_size: tuple[float, float, float] | None = None


@dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs besides the data.

    Parameters
    ----------
    phases : PhaseSet or str, optional
        Phases the painted values stand for: a preset (``"si-graphite"``, ``"nmc"``), names
        (``"active,cbd,pore"``) or ``NAME=VALUE`` pairs for label files of other tools. ``None``:
        the phases of the ``init`` model, else ``si-graphite``. With ``NAME=VALUE`` pairs a value 0
        outside the set means *unpainted*; if 0 names a phase, every voxel must carry one of the
        set's values (a fully labelled volume).
    context : int, optional
        Neighbouring slices the network sees (1, 3, 5 or 7). ``None``: the ``init`` model's,
        else 3.
    epochs, minutes : optional
        Stop after this many epochs and/or this much training time, whichever comes first;
        the first epoch always completes (a model is never saved untrained).
    steps_per_epoch : int
        Optimiser steps (batches) per epoch; validation runs after each epoch.
    init : str or path, optional
        ``"auto"`` (the default) fine-tunes the bundled model that suits the data: ``"2d"`` for
        2D images, stacks of single slices and ``context`` 1 or 3, else ``"default"``.
        ``"default"``, ``"fast"`` or ``"2d"`` fine-tune that bundled model, a path fine-tunes
        that checkpoint (its architecture is kept; its context is kept or, when ``context`` asks
        for more slices, deepened starting from its predictions; other phases than its own get
        a new output layer started from its rows, see ``retain_weight``); ``None`` or
        ``"scratch"`` trains a new network.
    patch_size, batch_size, learning_rate
        Square patch side (a multiple of ``2**depth``), patches per step, peak learning rate
        (``None``: 3e-3 from scratch, 1e-3 when fine-tuning, so that a few new strokes refine
        what the model knows rather than overwrite it).
    phase_weights : "auto", sequence, mapping or None
        Loss weight of each phase: ``"auto"`` = inverse frequency of the painted voxels, capped
        at ``weight_cap``; a sequence in phase order or ``{name: weight}``; ``None`` = equal.
    dice_weight : float
        Weight of the soft Dice term relative to BCE in the painted-voxel loss.
    validation_fraction : float
        Fraction of the painted strokes (connected painted regions) held back for validation.
    patience : int, optional
        Stop when the validation score has not improved for this many epochs.
    device : str
        Torch device: ``"auto"`` (CUDA when available), ``"cpu"``, ``"cuda"``...
    train_missing_phases : bool
        Go on when a phase has no painted voxel (the others are trained); otherwise that is an
        error naming the phase.
    output : str or path, optional
        Where the best model is saved (on every improvement, atomically).
    overwrite : bool
        Replace an existing ``output`` file.
    augment : bool or Augmentation
        Augment patches (default strengths), not at all, or with these strengths.
    weight_averaging : bool
        Validate, keep and save an exponential moving average of the weights (smoother and
        usually better from few painted voxels) rather than the latest weights.
    unlabelled_patches : int
        Patches per step cut from random places of the volumes, unpainted ones included. They
        take part in the batch statistics of the network and, when ``consistency_weight`` > 0,
        in a consistency loss: the network's confident prediction on a mildly augmented patch
        is the target for a strongly augmented copy. The painted-voxel loss never sees them.
    consistency_weight : float
        Weight of that consistency loss (ramped up over the first third of training).
    retain_weight : float
        When fine-tuning: the start model's predictions (relabelled to the phases when its own
        differ) are soft targets for the unpainted pixels of each patch (learning without
        forgetting), so painted corrections change the model where they are painted and what it
        knew elsewhere stays. The weight is this times the start model's trust: 1 when it
        labels >= 90 % of the training strokes right (balanced over phases), falling to 0 at
        50 %, so a start model that does not know the data is no teacher. 0 turns this off.
    grey_weight : float
        When the start model does not know the imaging (it labels the strokes too poorly for
        its fractions to be matched, see ``match_fractions``) or training starts from scratch:
        a small classifier on filter features of the image (the live head's), fitted to the
        strokes after training, is blended into the model's output with this weight (a
        geometric mean of the two; :mod:`battery_seg.training._grey_head`). It draws the
        boundary of look-alike phases from the grey levels, where the network's features put it
        elsewhere. 0 leaves it out.
    match_fractions : bool
        When fine-tuning from a start model that labels the strokes well (trust >= 0.5): after
        training, shift the output layer's per-phase biases so that the network predicts the
        start model's phase fractions on a few planes of the training images. Strokes painted
        about equally of every phase teach that the phases are equally common, which moves the
        boundary of a common phase (pore) into a rare look-alike (CBD); see
        :mod:`battery_seg.training._balance`. ``False`` keeps the fractions the strokes gave.
    base_channels, depth, dropout
        Architecture of a network trained from scratch (ignored when fine-tuning). Width 8 trains
        about 4x faster than 16 on a CPU at similar accuracy on sparse strokes.

    Examples
    --------
    >>> config = TrainConfig(phases="nmc", context=3, minutes=5, output="model.pt")
    >>> config.phase_set().names
    ('pore', 'active', 'cbd')
    """

    phases: PhaseSet | str | None = None
    context: int | None = None
    epochs: int | None = 40
    minutes: float | None = None
    steps_per_epoch: int = 25
    init: str | os.PathLike | None = AUTO
    patch_size: int = 96
    batch_size: int = 8
    learning_rate: float | None = None
    phase_weights: str | Sequence[float] | Mapping[str, float] | None = "auto"
    weight_cap: float = 10.0
    dice_weight: float = 1.0
    validation_fraction: float = 0.2
    patience: int | None = 12
    augment: Any = True
    weight_averaging: bool = True
    unlabelled_patches: int = 0
    consistency_weight: float = 0.0
    retain_weight: float = 1.0
    grey_weight: float = 0.5
    match_fractions: bool = True
    device: str = "auto"
    seed: int = 0
    train_missing_phases: bool = False
    output: str | os.PathLike | None = None
    overwrite: bool = False
    base_channels: int = 8
    depth: int = 4
    dropout: float = 0.1

    def __post_init__(self) -> None:
        """Raise :class:`BatterySegError` for settings that cannot work."""
        if self.epochs is None and self.minutes is None:
            raise BatterySegError("Give a number of epochs or a time budget in minutes.")
        if self.epochs is not None and self.epochs < 1:
            raise BatterySegError(f"epochs must be at least 1, got {self.epochs}.")
        if self.minutes is not None and not self.minutes > 0:
            raise BatterySegError(f"minutes must be positive, got {self.minutes}.")
        if self.context is not None and self.context not in CONTEXTS:
            raise BatterySegError(f"context must be one of {CONTEXTS} slices, got {self.context}.")
        multiple = 2**self.depth
        if self.patch_size < multiple or self.patch_size % multiple:
            raise BatterySegError(
                f"patch_size {self.patch_size} must be a multiple of {multiple} (2**depth), "
                f"e.g. {max(multiple, round(self.patch_size / multiple) * multiple)}."
            )
        if self.unlabelled_patches < 0 or self.consistency_weight < 0 or self.retain_weight < 0:
            raise BatterySegError(
                "unlabelled_patches, consistency_weight and retain_weight must be >= 0."
            )
        if not 0 <= self.grey_weight <= 1:
            raise BatterySegError(f"grey_weight must be in [0, 1], got {self.grey_weight}.")
        for name in ("batch_size", "steps_per_epoch", "base_channels", "depth"):
            if getattr(self, name) < 1:
                raise BatterySegError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if not 0 <= self.validation_fraction < 1:
            raise BatterySegError(
                f"validation_fraction must be in [0, 1), got {self.validation_fraction}."
            )
        if self.learning_rate is not None and not self.learning_rate > 0:
            raise BatterySegError(f"learning_rate must be positive, got {self.learning_rate}.")
        if isinstance(self.phase_weights, str) and self.phase_weights != "auto":
            raise BatterySegError(
                f"phase_weights must be 'auto', a list of numbers or a mapping, got "
                f"{self.phase_weights!r}."
            )
        object.__setattr__(self, "device", check_device(self.device))
        if self.device.startswith("cuda"):
            resolve_device(self.device, "training")  # a GPU must be there
        elif self.batch_size and self.patch_size:
            need = network_bytes(
                self.base_channels,
                self.patch_size,
                self.patch_size,
                self.batch_size,
                self.context or DEFAULT_CONTEXT,
                training=True,
            )
            check_memory(
                need,
                f"training on batches of {self.batch_size} patches of {self.patch_size} px",
                "Use a smaller patch size (--patch) or batch (--batch).",
            )
        if self.output is not None:
            check_output(self.output, overwrite=self.overwrite, kind="model")

    @property
    def from_scratch(self) -> bool:
        """Whether ``init`` asks for a new network rather than a checkpoint to start from."""
        return self.init is None or str(self.init).strip() in SCRATCH

    @property
    def peak_learning_rate(self) -> float:
        """``learning_rate``, or its default for training from scratch or fine-tuning."""
        if self.learning_rate is not None:
            return float(self.learning_rate)
        return 3e-3 if self.from_scratch else 1e-3

    def phase_set(self) -> PhaseSet:
        """The phases as a :class:`PhaseSet` (``si-graphite`` when unset)."""
        return PhaseSet.parse(self.phases)

    def to_dict(self) -> dict:
        """JSON-able summary stored in the checkpoint's provenance."""
        d = asdict(self)
        d["phases"] = None if self.phases is None else PhaseSet.parse(self.phases).spec()
        d["learning_rate"] = self.peak_learning_rate
        for key in ("init", "output"):
            d[key] = None if d[key] is None else str(d[key])
        if isinstance(self.phase_weights, Mapping):
            d["phase_weights"] = dict(self.phase_weights)
        elif self.phase_weights is not None and not isinstance(self.phase_weights, str):
            d["phase_weights"] = [float(w) for w in self.phase_weights]
        return d


@dataclass(frozen=True)
class LiveConfig:
    """Settings of a live fit (shared by the Train dock's Live mode, ``train --quick`` and the API).

    Parameters
    ----------
    phases : PhaseSet or str, optional
        What the painted values 1..K stand for; ``None``: the base model's phases.
    init : str
        The base network whose features are read: ``"auto"`` (the bundled model that suits the
        image, as for training), a bundled name or a model file.
    hidden : int
        Width of the head's hidden layer.
    steps, learning_rate, batch_size
        Adam steps on random batches of painted voxels (a fifth of the steps when refitting).
    max_points : int
        Painted voxels kept per fit (a phase-balanced random subset beyond that).
    weight_cap : float
        Cap of the inverse-frequency phase weights of the loss.
    cache_bytes : int
        Memory for cached slice features.
    features : str
        What the head reads: ``"network"`` (the base network's multi-scale features and
        logits), ``"filters"`` (classic filter features of the image: smoothing, gradient,
        Hessian at 1, 2, 4 and 8 pixels) or ``"auto"``: the network's where it labels the
        strokes well by itself, else the filters.
    match_fractions : bool
        When the head reads the network's features and the network labels the strokes well by
        itself (as ``"auto"`` asks, and at least half of every phase's strokes): shift the
        head's per-phase biases so that it predicts the network's own phase fractions on the
        painted slices, as Train does (:class:`TrainConfig`): strokes painted about equally of
        every phase would otherwise move the boundary of a common phase into a rare look-alike.
    """

    phases: PhaseSet | str | None = None
    init: str | os.PathLike = "auto"
    hidden: int = 32
    steps: int = 300
    learning_rate: float = 0.01
    batch_size: int = 1024
    max_points: int = 50_000
    weight_cap: float = 10.0
    seed: int = 0
    cache_bytes: int = 1 << 30
    features: str = "auto"
    match_fractions: bool = True
    output: str | os.PathLike | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        for name in ("hidden", "steps", "batch_size", "max_points"):
            if getattr(self, name) < 1:
                raise BatterySegError(f"{name} must be at least 1, got {getattr(self, name)}.")
        if not self.learning_rate > 0:
            raise BatterySegError(f"learning_rate must be positive, got {self.learning_rate}.")
        if self.features not in ("auto", "network", "filters"):
            raise BatterySegError(
                f"features must be 'auto', 'network' or 'filters', got {self.features!r}."
            )
        if self.output is not None:
            check_output(self.output, overwrite=self.overwrite, kind="model")
