"""Smooth shading and ring artefacts of reconstructed X-ray CT volumes."""

from __future__ import annotations

import numpy as np

__all__ = ["ring_pattern", "shading_field"]


def _axis_radius(shape: tuple[int, int, int]) -> np.ndarray:
    """Distance (voxels) of every (y, x) position from the rotation axis (centre of the slice)."""
    y = np.arange(shape[1], dtype=np.float32) - (shape[1] - 1) / 2
    x = np.arange(shape[2], dtype=np.float32) - (shape[2] - 1) / 2
    return np.sqrt(y[:, None] ** 2 + x[None, :] ** 2)


def _slow_wave(length: int, rng: np.random.Generator, waves: int = 3) -> np.ndarray:
    """A random smooth 1-D profile in [-1, 1] with at most ``waves`` periods over ``length``."""
    t = np.linspace(0.0, 1.0, length, dtype=np.float32)
    profile = np.zeros(length, dtype=np.float32)
    for k in range(1, waves + 1):
        profile += rng.normal(0.0, 1.0 / k) * np.cos(np.pi * k * t + rng.uniform(0, 2 * np.pi))
    peak = float(np.abs(profile).max())
    return profile / peak if peak > 0 else profile


def shading_field(
    shape: tuple[int, int, int], shading: float, cupping: float, rng: np.random.Generator
) -> np.ndarray:
    """Multiplicative low-frequency intensity field (values near 1).

    ``shading`` scales a smooth random drift (a sum of slow waves along each axis, e.g. source
    intensity drift along z); ``cupping`` darkens the middle of every slice relative to its rim
    like beam hardening does.
    """
    drift = (
        _slow_wave(shape[0], rng)[:, None, None]
        + _slow_wave(shape[1], rng)[None, :, None]
        + _slow_wave(shape[2], rng)[None, None, :]
    ) / np.float32(3.0)
    radius = _axis_radius(shape)
    rim = float(radius.max()) or 1.0
    cup = (radius / rim) ** 2 - np.float32(0.5)
    return 1.0 + np.float32(shading) * drift + np.float32(cupping) * cup[None, :, :]


def ring_pattern(
    shape: tuple[int, int, int], amplitude: float, count: int, rng: np.random.Generator
) -> np.ndarray:
    """Additive ring artefacts: thin concentric rings around the rotation axis (z) in every slice.

    Each ring (a miscalibrated detector column) has a random radius, width and signed strength
    up to ``amplitude``; its strength varies slowly along z as the calibration drifts.
    """
    radius = _axis_radius(shape)
    rings = np.zeros(shape[1:], dtype=np.float32)
    for _ in range(count):
        centre = rng.uniform(1.0, float(radius.max()))
        width = rng.uniform(0.4, 1.2)
        strength = amplitude * rng.uniform(0.4, 1.0) * rng.choice([-1.0, 1.0])
        rings += np.float32(strength) * np.exp(-((radius - centre) ** 2) / (2 * width**2))
    along_z = 1.0 + 0.3 * _slow_wave(shape[0], rng, waves=2)
    return rings[None, :, :] * along_z[:, None, None]
