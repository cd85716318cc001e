"""One optimiser step: painted-voxel loss, plus optional consistency on unpainted patches."""

from __future__ import annotations

import torch
from torch.nn import functional

from ._augment import Augmentation, augment_geometry, augment_intensity
from ._config import TrainConfig
from ._loss import painted_loss
from ._samples import PatchSampler

__all__ = ["training_step"]

CONFIDENCE = 0.9  # teacher probability above which an unpainted pixel gets a target


def training_step(
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    sampler: PatchSampler,
    config: TrainConfig,
    weights: torch.Tensor,
    generator: torch.Generator,
    ramp: float,
    *,
    teacher: torch.nn.Module | None = None,
    retain: float = 0.0,
    mean_teacher: torch.nn.Module | None = None,
) -> float:
    """Sample, augment, forward, backward, step; return the loss.

    Unpainted patches (``config.unlabelled_patches``) share the batch, so batch-norm statistics
    describe the whole volume rather than the painted slices only. With a consistency weight
    (times ``ramp`` in [0, 1]), the confident prediction of the ``mean_teacher`` (the running
    average of the weights, in eval mode; else the network itself) on a geometry-only view of
    each unpainted patch is the target for the intensity-augmented view. With a ``teacher``
    (the frozen start model of a fine-tuning run), its probabilities are soft targets for the
    unpainted pixels, weighted by ``retain``.
    """
    device = weights.device
    images, labels = sampler.sample(config.batch_size)
    x, y = torch.from_numpy(images), torch.from_numpy(labels)
    unpainted = torch.from_numpy(sampler.sample_unlabelled(config.unlabelled_patches))
    n_unpainted = len(unpainted)
    if n_unpainted:
        x = torch.cat([x, unpainted])
        y = torch.cat([y, torch.zeros((n_unpainted, *y.shape[1:]), dtype=y.dtype)])
    settings = config.augment if isinstance(config.augment, Augmentation) else Augmentation()
    if config.augment:
        x, y = augment_geometry(x, y, generator, settings)
    consistency = config.consistency_weight * ramp if n_unpainted else 0.0
    teacher_view = x[-n_unpainted:].clone() if consistency > 0 else None
    if config.augment:
        x = augment_intensity(x, generator, settings)
    inputs = x.to(device).contiguous(memory_format=torch.channels_last)
    logits = model(inputs)
    y = y.to(device)
    # unpainted patches carry no labels, so only painted voxels enter this term
    loss = painted_loss(logits, y, weights, dice_weight=config.dice_weight)
    if teacher is not None and retain > 0:
        loss = loss + retain * _retain(teacher, inputs, logits, y == 0)
    if teacher_view is not None:
        judge = mean_teacher if mean_teacher is not None else model
        loss = loss + consistency * _consistency(judge, teacher_view, logits[-n_unpainted:])
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def _retain(teacher, inputs: torch.Tensor, logits: torch.Tensor, unpainted: torch.Tensor):
    """Soft cross-entropy to the start model's probabilities, mean over unpainted pixels."""
    with torch.no_grad():
        target = torch.softmax(teacher(inputs), dim=1)
    per_pixel = -(target * torch.log_softmax(logits, dim=1)).sum(dim=1)
    return (per_pixel * unpainted).sum() / unpainted.sum().clamp(min=1)


def _consistency(model, teacher_view: torch.Tensor, student_logits: torch.Tensor):
    """Cross-entropy to the confident teacher predictions (mean over all pixels)."""
    was_training = model.training
    model.eval()
    with torch.no_grad():
        view = teacher_view.to(student_logits.device).contiguous(memory_format=torch.channels_last)
        confidence, target = torch.softmax(model(view), dim=1).max(dim=1)
    model.train(was_training)
    per_pixel = functional.cross_entropy(student_logits, target, reduction="none")
    return (per_pixel * (confidence > CONFIDENCE)).mean()
