"""The network a run starts from: a fresh U-Net, the bundled model or a checkpoint."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import NamedTuple

from .._bundled import THIN_MODEL, bundled_for
from ..checks import correlation_evidence, unrelated_slices
from ..errors import BatterySegError
from ..model import (
    BUNDLED_MODELS,
    ModelCard,
    Normalization,
    UNet,
    UNetConfig,
    load_model,
)
from ..phases import PhaseSet
from ._config import AUTO, DEFAULT_CONTEXT, TrainConfig, TrainingPair
from ._grey_head import without_grey_head

__all__ = ["Start", "initial_model", "model_phases", "resolve_init"]


class Start(NamedTuple):
    """Where a run starts: the network, its card, the phases to read the painted labels with
    and a name of the start point (for provenance). ``source`` is the start checkpoint's network
    with its own output layer (None from scratch): what it predicts on the strokes decides how
    a new output layer is initialised and how much of it is kept (see ``_transfer``)."""

    model: UNet
    card: ModelCard
    phases: PhaseSet
    label: str
    source: UNet | None = None
    source_phases: PhaseSet | None = None

    @property
    def keeps_head(self) -> bool:
        """Whether the output layer is the start model's (same phases) rather than new."""
        return self.source is not None and self.source is self.model


def model_phases(phases: PhaseSet) -> PhaseSet:
    """``phases`` without file values: a model always predicts 1..K."""
    return PhaseSet(tuple(replace(p, source_value=None) for p in phases), preset=phases.preset)


def resolve_init(config: TrainConfig, pairs: list[TrainingPair]) -> tuple[TrainConfig, list[str]]:
    """``config`` with ``init="auto"`` replaced by the bundled model that suits the data, and
    notes that say why when the choice is not the obvious one.

    2D images (or single slices), stacks of unrelated slices (see
    :func:`~battery_seg.checks.slice_correlation`) and contexts of 1 or 3 slices start from the
    one-slice ``2d`` model (a context of 3 widens it exactly); volumes otherwise from a 2.5D
    model, which reads 5 neighbouring slices: ``nmc`` for a cathode's phases (pore, active, cbd;
    :func:`battery_seg._bundled.bundled_for`), else ``default``.
    """
    if config.init is None or str(config.init).strip().lower() != AUTO:
        return config, []
    names = config.phase_set().names if config.phases is not None else None
    # Volumes of a cathode start from the cathode model (on imaging it never saw: 0.673 mean IoU
    # against 0.647 from the anode model); single slices from the anode 2d model, which
    # fine-tunes better on the real LRCS slices (0.578 / 0.562 against 0.559 / 0.529 from nmc-2d;
    # docs/benchmarks.md, imaging the models never saw).
    model, flat = bundled_for(names), THIN_MODEL
    stacks = [p for p in pairs if len(p.image.shape) == 3 and p.image.shape[0] > 1]
    unrelated = [(p.name, r) for p in stacks if (r := unrelated_slices(p.image)) is not None]
    notes = []
    if config.context is None and stacks and len(unrelated) == len(stacks):
        notes += [
            f"Neighbouring slices look unrelated in {name or 'the image'} "
            f"{correlation_evidence(r)}, so each slice is treated as an image of its own: "
            f"training starts from the bundled {flat} model, which reads one slice at a "
            f"time. If this is one continuous volume, start from the {model} model "
            f"instead (--init {model})."
            for name, r in unrelated
        ]
        return replace(config, init=flat), notes
    small_context = config.context is not None and config.context < 5
    name = flat if small_context or (config.context is None and not stacks) else model
    return replace(config, init=name), notes


def initial_model(config: TrainConfig) -> Start:
    """The network a run starts from, with its card, phases and start-point name.

    From scratch, the architecture comes from ``config``. When fine-tuning, the checkpoint's
    architecture is kept; a deeper ``config.context`` widens its first layer with zero weights
    for the added outer slices (the widened model predicts exactly what the checkpoint did, and
    training learns to use them); a shallower one is an error that says what the model expects.
    Other ``config.phases`` than the checkpoint's keep its features and start a new output layer
    for those phases (transfer learning).
    """
    if config.from_scratch:
        phases = config.phase_set()
        if len(phases) < 2:
            raise BatterySegError(f"A model needs at least two phases, got {phases.describe()}.")
        context = config.context or DEFAULT_CONTEXT
        architecture = UNetConfig(
            in_channels=context,
            n_phases=len(phases),
            base_channels=config.base_channels,
            depth=config.depth,
            dropout=config.dropout,
        )
        card = ModelCard(model_phases(phases), context, architecture, Normalization())
        return Start(UNet(architecture), card, phases, "scratch")
    init = str(config.init)
    # a grey-level head is fitted to each run's strokes again (see _grey_head)
    model, card = without_grey_head(*load_model(init, device="cpu"))
    label = init if init in BUNDLED_MODELS else str(Path(init))
    if config.context is not None and config.context < card.context:
        raise BatterySegError(
            f"Model {label} sees {card.context} neighbouring slice(s) (context {card.context}) "
            f"but context {config.context} was asked for. Fine-tuning keeps or deepens the "
            f"model's context: use context {card.context} or more (or leave it unset), or train "
            "from scratch."
        )
    if config.context is not None and config.context > card.context:
        model, card = _widen_context(model, card, config.context)
        label = f"{label} (widened to context {config.context})"
    source, source_phases, phases = model, card.phases, card.phases
    if config.phases is not None:
        asked = config.phase_set()
        if [n.lower() for n in asked.names] != [n.lower() for n in card.phases.names]:
            if card.architecture.live_hidden:
                raise BatterySegError(
                    f"Model {label} is a live model of the phases {card.phases.describe()}; it "
                    f"fine-tunes for those phases only, not {asked.describe()}. Leave the "
                    "phases unset, or start from a bundled model."
                )
            # Transfer: keep the learnt features, a new output layer for other phases (e.g. an
            # NMC cathode from the Si-graphite default model); _transfer fills it from the
            # start model's own rows once the strokes are read.
            model, card = _new_head(model, card, asked)
            label = f"{label} (features; new output layer for {', '.join(asked.names)})"
        phases = asked  # may carry the file values of the labels
    multiple = card.architecture.multiple
    if config.patch_size % multiple:
        suggestion = max(multiple, config.patch_size // multiple * multiple)
        raise BatterySegError(
            f"Model {label} needs patch sizes that are multiples of {multiple}; "
            f"{config.patch_size} is not. Use e.g. {suggestion}."
        )
    model.train()
    return Start(model, card, phases, label, source, source_phases)


def _widen_context(model: UNet, card: ModelCard, context: int) -> tuple[UNet, ModelCard]:
    """``model`` seeing ``context`` slices: the first layer gets zero weights for the new ones.

    Context slices are channels in slice order with the predicted slice in the middle, so the
    checkpoint's weights move to the middle channels and its predictions are unchanged.
    """
    architecture = replace(card.architecture, in_channels=context)
    wide = UNet(architecture)
    state = model.state_dict()
    key = next(k for k, v in state.items() if k.startswith("encoder.stem.") and v.ndim == 4)
    weight = state[key]
    grown = weight.new_zeros((weight.shape[0], context, *weight.shape[2:]))
    offset = (context - card.context) // 2
    grown[:, offset : offset + card.context] = weight
    wide.load_state_dict({**state, key: grown})
    return wide, replace(card, context=context, architecture=architecture)


def _new_head(model: UNet, card: ModelCard, phases: PhaseSet) -> tuple[UNet, ModelCard]:
    """``model`` with a freshly initialised output layer for ``phases``."""
    architecture = replace(card.architecture, n_phases=len(phases))
    fresh = UNet(architecture)
    body = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
    missing, unexpected = fresh.load_state_dict(body, strict=False)
    assert not unexpected and all(k.startswith("head.") for k in missing), (missing, unexpected)
    return fresh, replace(card, phases=model_phases(phases), architecture=architecture)
