"""BCE + soft Dice on painted voxels only, with per-phase weights.

Only painted voxels (label > 0) enter the loss: the logits of unpainted voxels are never
selected, so their gradient is exactly zero. Probabilities are the softmax over phases, as
everywhere in the package; BCE compares them with the one-hot painted phase, soft Dice measures
their overlap per phase over the painted voxels of the batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from ..errors import BatterySegError
from ..phases import PhaseSet

__all__ = ["auto_phase_weights", "painted_loss", "resolve_phase_weights"]


def painted_loss(
    logits: torch.Tensor,
    labels: torch.Tensor,
    phase_weights: torch.Tensor | None = None,
    *,
    dice_weight: float = 1.0,
    smooth: float = 1.0,
) -> torch.Tensor:
    """BCE + soft Dice between softmax(logits) and the painted phases.

    Parameters
    ----------
    logits : Tensor
        ``(N, K, H, W)`` network output.
    labels : Tensor
        ``(N, H, W)`` integers, 0 = unpainted, 1..K = phase.
    phase_weights : Tensor, optional
        ``(K,)`` weight of each phase: each painted voxel's BCE is weighted by its phase's
        weight, and each phase's Dice term likewise.
    dice_weight : float
        Weight of the Dice term relative to BCE.
    smooth : float
        Additive smoothing of the Dice ratio.

    Returns
    -------
    Tensor
        A scalar; 0 (with a graph) when nothing is painted in the batch.

    Examples
    --------
    >>> logits = torch.zeros(1, 2, 4, 4, requires_grad=True)
    >>> labels = torch.zeros(1, 4, 4, dtype=torch.long)
    >>> labels[0, 0, :2] = torch.tensor([1, 2])
    >>> loss = painted_loss(logits, labels)
    >>> loss.backward()
    >>> bool(logits.grad[0, :, 1:].abs().sum() == 0)   # unpainted rows: no gradient
    True
    """
    n_phases = logits.shape[1]
    painted = labels > 0
    if not bool(painted.any()):
        return logits.sum() * 0.0
    selected = logits.movedim(1, -1)[painted]  # (M, K): painted voxels only
    target = labels[painted] - 1  # (M,)
    if phase_weights is None:
        phase_weights = torch.ones(n_phases, dtype=logits.dtype, device=logits.device)
    phase_weights = phase_weights.to(device=logits.device, dtype=logits.dtype)
    log_p = torch.log_softmax(selected, dim=1)
    probability = log_p.exp()
    one_hot = torch.nn.functional.one_hot(target, n_phases).to(logits.dtype)
    # log(1 - p_k) from the logits of the other phases: exact, no clamping of log(0).
    others = (
        selected.unsqueeze(1)
        .expand(-1, n_phases, -1)
        .masked_fill(torch.eye(n_phases, dtype=torch.bool, device=logits.device), float("-inf"))
    )
    log_not_p = torch.logsumexp(others, dim=2) - torch.logsumexp(selected, dim=1, keepdim=True)
    bce = -(one_hot * log_p + (1 - one_hot) * log_not_p).sum(dim=1)  # (M,)
    voxel_weight = phase_weights[target]
    bce = (voxel_weight * bce).sum() / voxel_weight.sum() / n_phases
    present = one_hot.sum(dim=0) > 0
    intersection = (probability * one_hot).sum(dim=0)
    dice = (2 * intersection + smooth) / (probability.sum(dim=0) + one_hot.sum(dim=0) + smooth)
    weight = phase_weights * present
    dice_loss = ((1 - dice) * weight).sum() / weight.sum()
    return bce + dice_weight * dice_loss


def auto_phase_weights(counts: np.ndarray, cap: float = 10.0) -> np.ndarray:
    """Inverse-frequency weights of painted voxel ``counts``, capped at ``cap`` x the smallest.

    Weights are scaled so the most painted phase gets 1; phases with no voxel get 0.

    Examples
    --------
    >>> auto_phase_weights(np.array([1000, 10, 500, 0]), cap=10).tolist()
    [1.0, 10.0, 2.0, 0.0]
    """
    counts = np.asarray(counts, dtype=float)
    weights = np.zeros_like(counts)
    present = counts > 0
    weights[present] = np.minimum(counts[present].max() / counts[present], cap)
    return weights


def resolve_phase_weights(
    spec: str | Sequence[float] | Mapping[str, float] | None,
    phases: PhaseSet,
    counts: np.ndarray,
    cap: float,
) -> np.ndarray:
    """``(K,)`` weights from a ``TrainConfig.phase_weights`` setting."""
    n = len(phases)
    if spec is None:
        return np.ones(n)
    if isinstance(spec, str):
        return auto_phase_weights(counts, cap)
    if isinstance(spec, Mapping):
        weights = np.ones(n)
        for name, weight in spec.items():
            weights[phases.value_of(name) - 1] = float(weight)
    else:
        weights = np.asarray([float(w) for w in spec])
        if weights.shape != (n,):
            raise BatterySegError(
                f"phase_weights has {weights.size} numbers but there are {n} phases "
                f"({', '.join(phases.names)}); give one weight per phase."
            )
    if np.any(weights < 0) or not np.all(np.isfinite(weights)) or not weights.sum() > 0:
        raise BatterySegError(f"phase_weights must be non-negative numbers, got {weights}.")
    return weights
