"""Fitting the live head on painted voxels' features, and folding it into a U-Net.

The head is fitted on standardised features, which Adam needs with channels as different as
logits and deep activations: each channel's mean and spread over random pixels of the painted
slices (not the painted voxels only: strokes keep away from boundaries, so their spread says
little about the pixels to classify), and each scale's block of channels weighed as one, the
logits four times (measured on the phantom at 1 % of one slice: mean IoU 0.60 with every channel
alike, 0.73 per block, 0.78 with the logits x4; a forest on the same features 0.80). The
standardisation is then folded into the first layer, so the saved network reads raw features.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING, NamedTuple

import torch
from torch import nn

from ..jobs import Job, Progress
from ..model import ModelCard, UNet
from ..model.unet import filter_count
from ..phases import PhaseSet

if TYPE_CHECKING:
    from ._features import FeatureBank
    from ._live import LiveConfig

__all__ = ["FittedHead", "feature_scale", "fit_head", "fold_head"]

LOGITS_WEIGHT = 4.0  # the U-Net's own logits count this many times a scale's block


class FittedHead(NamedTuple):
    """An MLP on standardised features: ``second(relu(first((x - mean) / std)))``."""

    first: nn.Linear
    second: nn.Linear
    mean: torch.Tensor
    std: torch.Tensor

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """``(P, K)`` phase logits of raw feature rows ``x`` ``(P, F)``."""
        return self.second(torch.relu(self.first((x - self.mean) / self.std)))

    def raw_first(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The first layer's weight and bias on raw (unstandardised) features."""
        weight = self.first.weight / self.std
        return weight, self.first.bias - weight @ self.mean


def feature_scale(
    background: torch.Tensor, groups: list[int], logits_last: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and divisor of every channel: its spread over ``background`` pixels ``(N, F)`` times
    the square root of its block's size (``groups``: the blocks' widths; the last one is the
    logits' when ``logits_last``, weighed :data:`LOGITS_WEIGHT` times)."""
    factors = [float(w) ** 0.5 for w in groups]
    if logits_last:
        factors[-1] /= LOGITS_WEIGHT
    blocks = torch.cat([torch.full((w,), f) for w, f in zip(groups, factors, strict=True)])
    return background.mean(dim=0), background.std(dim=0).clamp_min(1e-6) * blocks


def fit_head(
    x: torch.Tensor,
    y: torch.Tensor,
    n_phases: int,
    config: LiveConfig,
    scale: tuple[torch.Tensor, torch.Tensor],
    start: FittedHead | None = None,
) -> Job[FittedHead]:
    """Fit the head to features ``x`` ``(P, F)`` and phases ``y`` (0..K-1) standardised by
    ``scale`` (:func:`feature_scale`), yielding every 50 steps (a cancel point); from ``start``
    (the previous head, on the same features) with a fifth of the steps."""
    torch.manual_seed(config.seed)
    mean, std = scale
    z = (x - mean) / std
    first, second = nn.Linear(x.shape[1], config.hidden), nn.Linear(config.hidden, n_phases)
    steps = config.steps
    if start is not None:
        with torch.no_grad():
            weight, bias = start.raw_first()
            first.weight.copy_(weight * std)
            first.bias.copy_(bias + weight @ mean)
            second.weight.copy_(start.second.weight)
            second.bias.copy_(start.second.bias)
        steps = max(1, steps // 5)
    counts = torch.bincount(y, minlength=n_phases).float()
    weights = torch.where(counts > 0, counts.sum() / counts.clamp_min(1) / n_phases, 0.0)
    loss_fn = nn.CrossEntropyLoss(weight=weights.clamp(max=config.weight_cap))
    parameters = [*first.parameters(), *second.parameters()]
    adam = _Adam(parameters, config.learning_rate)
    generator = torch.Generator().manual_seed(config.seed)
    for step in range(steps):
        batch = torch.randint(len(z), (min(config.batch_size, len(z)),), generator=generator)
        loss = loss_fn(second(torch.relu(first(z[batch]))), y[batch])
        for parameter in parameters:
            parameter.grad = None
        loss.backward()
        adam.step()
        if step % 50 == 49:
            yield Progress(step + 1, steps, "fitting", {"loss": float(loss.detach())})
    return FittedHead(first, second, mean, std)


def fold_head(
    bank: FeatureBank,
    head: FittedHead,
    phases: PhaseSet,
    provenance: dict,
    columns: torch.Tensor,
) -> tuple[UNet, ModelCard]:
    """The bank's base U-Net with ``head`` (fitted on the feature ``columns`` of the bank's
    blocks) as its :class:`~battery_seg.model.MultiScaleHead`, computing the filter features
    when some of the columns are theirs: a network whose forward pass on a slice equals the
    head on that slice's features."""
    base = bank.card.architecture
    groups = bank.feature_groups  # scales, filters, logits
    start = sum(groups[:-2])
    filters = bool(((columns >= start) & (columns < start + groups[-2])).any())
    architecture = replace(
        base,
        n_phases=len(phases),
        live_hidden=head.first.out_features,
        feature_phases=base.n_phases,
        live_filters=filter_count() if filters else 0,
    )
    weight, bias = head.raw_first()
    full = weight.new_zeros(weight.shape[0], sum(groups))
    full[:, columns] = weight.detach()
    blocks = torch.split(full, groups, dim=1)
    state = dict(bank.network.state_dict())
    read = [*blocks[:-2], blocks[-2]] if filters else list(blocks[:-2])
    for i, block in enumerate(read):
        state[f"live.project.{i}.weight"] = block[:, :, None, None]
    state["live.project_logits.weight"] = blocks[-1][:, :, None, None]
    state["live.project_logits.bias"] = bias.detach()
    state["live.out.weight"] = head.second.weight.detach()[:, :, None, None]
    state["live.out.bias"] = head.second.bias.detach()
    network = UNet(architecture)
    network.load_state_dict(state)
    device = next(bank.network.parameters()).device
    card = replace(bank.card, phases=phases, architecture=architecture, provenance=provenance)
    return network.to(device).eval(), card


class _Adam:
    """Adam with a little L2, by hand: ``torch.optim`` imports ``torch._dynamo`` on first use
    (8 s on a busy 2-core machine, holding the GIL in long stretches: napari froze for 2.3 s
    when the first live fit ran in its worker thread)."""

    def __init__(self, parameters: list[torch.Tensor], lr: float, decay: float = 1e-4) -> None:
        self.parameters, self.lr, self.decay, self.steps = parameters, lr, decay, 0
        self.mean = [torch.zeros_like(p) for p in parameters]
        self.square = [torch.zeros_like(p) for p in parameters]

    @torch.no_grad()
    def step(self, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8) -> None:
        self.steps += 1
        size = self.lr * (1 - beta2**self.steps) ** 0.5 / (1 - beta1**self.steps)
        for parameter, mean, square in zip(self.parameters, self.mean, self.square, strict=True):
            grad = parameter.grad + self.decay * parameter
            mean.mul_(beta1).add_(grad, alpha=1 - beta1)
            square.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
            parameter.addcdiv_(mean, square.sqrt().add_(eps), value=-size)
