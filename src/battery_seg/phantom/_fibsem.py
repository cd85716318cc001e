"""FIB-SEM serial sectioning: labels to a stack of SEM images of the milled face.

Each z slice is the freshly milled face imaged by the electron beam: phase contrast from the
backscatter yield of each material's mean atomic number, with CBD close to epoxy-filled pore;
where pores are not infiltrated the beam sees the material *behind* the face through them
(pore-back shine-through, fading with depth); vertical curtaining stripes from the ion beam;
charging (bright smooth halos on non-conductive regions); beam blur, slice thickness and shot
noise; 8-bit storage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from ._fields import smooth_noise
from ._materials import ELEMENTS, MATERIALS

__all__ = ["FIBSEMParams", "random_fibsem_params", "simulate_fibsem"]


def _backscatter(material: str) -> float:
    """Backscatter yield of a material from its mass-weighted mean atomic number."""
    formula, _ = MATERIALS[material]
    mass = {e: n * ELEMENTS[e][1] for e, n in formula.items()}
    z = sum(m * ELEMENTS[e][0] for e, m in mass.items()) / sum(mass.values())
    return -0.0254 + 0.016 * z - 1.86e-4 * z**2 + 8.3e-7 * z**3


@dataclass(frozen=True)
class FIBSEMParams:
    """Parameters of :func:`simulate_fibsem` (grey levels as fractions of full scale)."""

    active_material: str = "nmc622"
    infiltrated: bool = True
    cbd_contrast: float = 0.08
    shine_depth: float = 3.0
    curtaining: float = 0.04
    charging: float = 0.05
    blur: float = 0.8
    noise: float = 0.05


def random_fibsem_params(rng: np.random.Generator, active: str = "nmc622") -> FIBSEMParams:
    return FIBSEMParams(
        active_material=active,
        infiltrated=bool(rng.random() < 0.6),
        cbd_contrast=rng.uniform(0.02, 0.2),
        shine_depth=rng.uniform(1.5, 6.0),
        curtaining=rng.uniform(0.0, 0.1),
        charging=rng.uniform(0.0, 0.12),
        blur=rng.uniform(0.4, 1.5),
        noise=rng.uniform(0.02, 0.12),
    )


def simulate_fibsem(
    labels: np.ndarray,
    materials: dict[int, str],
    params: FIBSEMParams | None = None,
    *,
    seed: int = 0,
) -> np.ndarray:
    """uint8 FIB-SEM stack (milling along z) of a label volume; ``materials`` as for CT.

    >>> from battery_seg.phantom import make_cathode
    >>> stack = simulate_fibsem(make_cathode((8, 32, 32)), {1: "pore", 2: "active", 3: "cbd"})
    >>> stack.dtype
    dtype('uint8')
    """
    params = params if params is not None else FIBSEMParams()
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), 13]))
    fill = _backscatter("epoxy")
    solid = {
        "active": _backscatter(params.active_material),
        "graphite": _backscatter("graphite"),
        "silicon": _backscatter("silicon"),
    }
    brightest = max(solid.values())
    grey = np.zeros(labels.shape, np.float32)
    pore = np.zeros(labels.shape, bool)
    for value, material in materials.items():
        where = labels == value
        if material == "pore":
            pore |= where
            grey[where] = 0.1
        elif material == "cbd":
            grey[where] = 0.1 + params.cbd_contrast * 0.8
        else:
            grey[where] = 0.1 + 0.8 * (solid.get(material, fill) - fill) / (brightest - fill)
    if not params.infiltrated:  # through open pores the beam sees the walls behind the face
        # beyond the last slice lies more electrode: its mean solid grey level
        behind = np.full(labels.shape[1:], grey[~pore].mean() if (~pore).any() else 0, np.float32)
        decay = np.float32(np.exp(-1.0 / params.shine_depth))
        for z in range(labels.shape[0] - 1, -1, -1):
            behind = np.where(pore[z], behind * decay, grey[z])
            grey[z] = np.where(pore[z], 0.1 + 0.7 * behind, grey[z])
    shape = labels.shape
    stripes = smooth_noise((1, shape[1], shape[2]), 1.0, rng)
    stripes = ndimage.gaussian_filter(stripes, (0, 25.0, 0.6))
    grey += params.curtaining * stripes / (stripes.std() or 1.0)
    charge = np.maximum(smooth_noise(shape, 12.0, rng), 0)
    grey += params.charging * charge * ndimage.gaussian_filter(pore.astype(np.float32), 3)
    grey = ndimage.gaussian_filter(grey, (0.5, params.blur, params.blur))
    grey += params.noise * np.sqrt(np.maximum(grey, 0.01)) * rng.standard_normal(shape, np.float32)
    return np.rint(np.clip(grey, 0, 1) * 255).astype(np.uint8)
