"""BCE + soft Dice over painted voxels only."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from battery_seg.errors import BatterySegError
from battery_seg.phases import PhaseSet
from battery_seg.training._loss import auto_phase_weights, painted_loss, resolve_phase_weights


def _batch(seed=0, n_phases=3):
    generator = torch.Generator().manual_seed(seed)
    logits = torch.randn(2, n_phases, 8, 8, generator=generator, requires_grad=True)
    labels = torch.zeros(2, 8, 8, dtype=torch.long)
    labels[0, 1, 1:6] = 1
    labels[0, 5, 2:4] = 2
    labels[1, 3:7, 4] = 3
    return logits, labels


def test_unpainted_voxels_get_exactly_zero_gradient():
    logits, labels = _batch()
    loss = painted_loss(logits, labels, torch.tensor([1.0, 5.0, 2.0]))
    loss.backward()
    unpainted = (labels == 0).unsqueeze(1).expand_as(logits)
    assert torch.all(logits.grad[unpainted] == 0)
    painted = (labels > 0).unsqueeze(1).expand_as(logits)
    assert torch.all(logits.grad[painted].abs().sum() > 0)


def test_loss_ignores_logits_of_unpainted_voxels():
    logits, labels = _batch()
    changed = logits.detach().clone()
    changed[labels.unsqueeze(1).expand_as(changed) == 0] = 1e4  # extreme, never looked at
    assert torch.equal(painted_loss(logits, labels), painted_loss(changed, labels))


def test_loss_matches_hand_computed_bce_and_dice():
    logits = torch.tensor([[[[2.0, 0.0]], [[0.0, 1.0]]]])  # (1, 2 phases, 1, 2)
    labels = torch.tensor([[[1, 2]]])
    p = torch.softmax(logits, dim=1)[0, :, 0]  # (2 phases, 2 voxels)
    one_hot = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    bce = torch.nn.functional.binary_cross_entropy(p, one_hot)  # mean over phases and voxels
    dice = (2 * (p * one_hot).sum(1) + 1) / (p.sum(1) + one_hot.sum(1) + 1)
    expected = bce + (1 - dice).mean()
    assert torch.allclose(painted_loss(logits, labels), expected, atol=1e-6)


def test_confident_correct_prediction_has_lower_loss_than_wrong():
    labels = torch.tensor([[[1, 2, 3]]])
    right = torch.full((1, 3, 1, 3), -5.0)
    wrong = torch.full((1, 3, 1, 3), -5.0)
    for i, value in enumerate([1, 2, 3]):
        right[0, value - 1, 0, i] = 5.0
        wrong[0, value % 3, 0, i] = 5.0
    assert painted_loss(right, labels) < 0.05 < 1.0 < painted_loss(wrong, labels)


def test_nothing_painted_gives_zero_loss_with_graph():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    loss = painted_loss(logits, torch.zeros(1, 4, 4, dtype=torch.long))
    loss.backward()
    assert loss.item() == 0.0
    assert torch.all(logits.grad == 0)


def test_phase_weight_raises_that_phase_share_of_the_loss():
    logits, labels = _batch(seed=3)
    plain = painted_loss(logits, labels, torch.tensor([1.0, 1.0, 1.0]))
    heavy = painted_loss(logits, labels, torch.tensor([1.0, 1.0, 10.0]))
    only_3 = painted_loss(logits, labels, torch.tensor([0.0, 0.0, 1.0]))
    assert abs(heavy.item() - only_3.item()) < abs(plain.item() - only_3.item())


def test_auto_weights_are_capped_inverse_frequencies():
    weights = auto_phase_weights(np.array([1000, 10, 500, 0]), cap=10)
    np.testing.assert_allclose(weights, [1.0, 10.0, 2.0, 0.0])


def test_resolve_weights_by_name_list_and_errors():
    phases = PhaseSet.parse("nmc")
    counts = np.array([100, 100, 50])
    np.testing.assert_allclose(resolve_phase_weights(None, phases, counts, 10), [1, 1, 1])
    np.testing.assert_allclose(resolve_phase_weights("auto", phases, counts, 10), [1, 1, 2])
    np.testing.assert_allclose(resolve_phase_weights({"cbd": 3}, phases, counts, 10), [1, 1, 3])
    np.testing.assert_allclose(resolve_phase_weights([1, 2, 3], phases, counts, 10), [1, 2, 3])
    with pytest.raises(BatterySegError, match="one weight per phase"):
        resolve_phase_weights([1, 2], phases, counts, 10)
    with pytest.raises(BatterySegError, match="non-negative"):
        resolve_phase_weights([1, -2, 3], phases, counts, 10)
    with pytest.raises(BatterySegError, match="No phase 'silicon'"):
        resolve_phase_weights({"silicon": 2}, phases, counts, 10)
