"""Augmentation keeps images and painted labels aligned and the label values intact."""

from __future__ import annotations

import torch

from battery_seg.training._augment import Augmentation, augment

GEOMETRY_ONLY = Augmentation(contrast=0, brightness=0, gamma=0, noise=0, blur_probability=0)


def _batch(n=16, size=32):
    generator = torch.Generator().manual_seed(1)
    blocks = torch.randint(0, 4, (n, size // 8, size // 8), generator=generator)
    labels = blocks.repeat_interleave(8, dim=1).repeat_interleave(8, dim=2)  # 8x8 blocks
    images = labels.to(torch.float32).unsqueeze(1).repeat(1, 3, 1, 1)  # image == label value
    return images, labels


def test_dihedral_transforms_move_images_and_labels_together():
    images, labels = _batch()
    settings = Augmentation(
        rotate_probability=0.0, contrast=0, brightness=0, gamma=0, noise=0, blur_probability=0
    )
    out_images, out_labels = augment(images, labels, torch.Generator().manual_seed(0), settings)
    assert torch.equal(out_images[:, 0], out_labels.to(torch.float32))
    assert torch.equal(out_images[:, 2], out_images[:, 0])
    assert not torch.equal(out_labels, labels)  # something moved
    for a, b in zip(labels, out_labels, strict=True):  # each patch a rotation / flip of itself
        variants = [torch.rot90(v, k) for v in (a, a.flip(-1)) for k in range(4)]
        assert any(torch.equal(b, v) for v in variants)


def test_small_rotations_keep_label_values_and_alignment():
    images, labels = _batch()
    settings = Augmentation(
        rotate_probability=1.0,
        rotate_degrees=20,
        zoom=0.1,
        contrast=0,
        brightness=0,
        gamma=0,
        noise=0,
        blur_probability=0,
    )
    out_images, out_labels = augment(images, labels, torch.Generator().manual_seed(2), settings)
    assert set(out_labels.unique().tolist()) <= {0, 1, 2, 3}
    inside = out_labels > 0  # voxels from outside the patch are unpainted
    agree = (out_images[:, 0][inside] - out_labels[inside].float()).abs() < 0.5
    assert agree.float().mean() > 0.9  # bilinear image vs nearest labels differ at edges


def test_intensity_changes_images_but_not_labels_and_is_seeded():
    images, labels = _batch()
    a_images, a_labels = augment(images, labels, torch.Generator().manual_seed(5))
    b_images, b_labels = augment(images, labels, torch.Generator().manual_seed(5))
    assert torch.equal(a_images, b_images) and torch.equal(a_labels, b_labels)
    assert a_images.dtype == torch.float32 and torch.isfinite(a_images).all()
    geometric, _ = augment(images, labels, torch.Generator().manual_seed(5), GEOMETRY_ONLY)
    assert not torch.allclose(a_images, geometric)
    assert torch.equal(images, _batch()[0])  # inputs untouched
