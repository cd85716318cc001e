"""Representativity: how sure is a volume fraction measured on one finite volume?

The method of Dahari et al., "What is the right size for my image? A statistical approach"
(ImageRep, tldr-group, BSD-3-Clause), followed step by step from its ``representativity/core.py``:

1. The two-point correlation (TPC) of the phase indicator, by FFT with periodic wrap-around, for
   every displacement up to half the shortest edge.
2. The distance ``r0`` where the TPC has levelled off at ``phi**2`` (fewer than 3 % of a ring of
   displacements more than 5 % of ``phi - phi**2`` above it).
3. The characteristic length scale (integral range) ``a = (C / (phi - phi2) *
   sum_{|r| < r0} (TPC(r) - phi2)) ** (1/3)`` with ImageRep's finite-volume coefficient ``C``
   and ``phi2`` the mean of the levelled-off TPC and ``phi**2``.
4. The volume holds ``n = N / a**3`` independent cubes of edge ``a``: the fraction's standard
   deviation is ``sqrt(phi (1 - phi) / n)`` (Bernoulli), widened by ImageRep's model error
   (``444.8 * N ** -0.437`` relative, fitted on MicroLib) into a 95 % prediction interval.
5. The edge length of a cube whose interval would be +-1 % (relative) of the fraction.

Where the TPC does not level off inside the volume (features as large as the volume), ImageRep
falls back to its first distance ring, which reports a tiny integral range and an overconfident
interval; here the whole TPC window is integrated instead and ``levelled_off`` is False: the
volume is too small to tell, and the interval is a lower bound of the uncertainty.

Lengths are in voxels along the grid (the integral range counts voxels, so anisotropic voxels do
not change ``n``); the needed edge is converted to physical units with the geometric-mean voxel
size. ImageRep's extra check against a patch-statistics estimate for small volumes is not
applied. The phase mask must be in memory (the FFT takes ~20 bytes per voxel).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["Representativity", "representativity"]

_MODEL_ERROR = (444.803518, 0.436974444)  # ImageRep's 3D fit: std_model = a / N ** b
_DIVISIONS = 301


@dataclass(frozen=True)
class Representativity:
    """95 % interval of one phase's volume fraction from the volume itself."""

    volume_fraction: float
    ci95: tuple[float, float]
    integral_range: float  # voxels
    integral_range_length: float  # physical units (geometric-mean voxel size)
    edge_for_one_percent: float  # physical units
    edge_for_one_percent_voxels: float
    levelled_off: bool = True

    def to_dict(self) -> dict:
        return {
            "volume_fraction": self.volume_fraction,
            "volume_fraction_ci95": list(self.ci95),
            "relative_error_95": (self.ci95[1] - self.volume_fraction) / self.volume_fraction
            if self.volume_fraction > 0
            else math.nan,
            "integral_range_voxels": self.integral_range,
            "integral_range_um": self.integral_range_length,
            "edge_for_one_percent_um": self.edge_for_one_percent,
            "edge_for_one_percent_voxels": self.edge_for_one_percent_voxels,
            "tpc_levelled_off": self.levelled_off,
        }


def two_point_correlation(mask: np.ndarray) -> np.ndarray:
    """Periodic TPC for displacements -L..L on every axis (L = half the shortest edge)."""
    from scipy import fft

    data = np.asarray(mask, dtype=np.float32)
    spectrum = fft.rfftn(data, workers=-1)
    spectrum *= spectrum.conj()
    tpc = fft.irfftn(spectrum, s=data.shape, workers=-1) / data.size
    half = min(data.shape) // 2
    window = np.ix_(*[np.arange(-half, half + 1) % n for n in data.shape])
    return np.asarray(tpc[window], dtype=np.float64)


def _end_distance(phi: float, tpc: np.ndarray, distance: np.ndarray) -> float:
    """ImageRep's ``find_end_dist_tpc``: where the TPC has levelled off."""
    largest = float(distance.max())
    if largest < int(100 * math.sqrt(tpc.ndim)):
        rings = np.linspace(0, int(largest), 100)
    else:
        rings = np.arange(0, int(largest), 100)
    small_change = (phi - phi**2) * 0.05
    for i in range(1, len(rings) - 1):
        ring = (distance >= rings[i]) & (distance < rings[i + 1])
        if ring.any() and np.mean(tpc[ring] - phi**2 > small_change) < 0.03:
            return float(rings[i])
    # ImageRep falls back to the first ring here, which claims a tiny integral range; a TPC that
    # never levels off means features as large as the volume, so integrate all of it.
    return math.inf


def integral_range(mask: np.ndarray) -> tuple[float, bool]:
    """ImageRep's characteristic length scale of a boolean mask (voxels), and whether the TPC
    levelled off inside the volume (if not, the length is a lower bound)."""
    tpc = two_point_correlation(mask)
    shape = np.asarray(np.shape(mask))
    half = (np.asarray(tpc.shape) - 1) // 2
    offsets = [np.abs(np.arange(n) - h) for n, h in zip(tpc.shape, half, strict=True)]
    grids = np.ix_(*offsets)
    distance = np.sqrt(sum(g.astype(np.float64) ** 2 for g in grids))
    share = np.ones(tpc.shape)
    for grid, n in zip(grids, shape, strict=True):
        share = share * ((n - grid) / n)  # fraction of positions that stay inside the volume
    phi = float(tpc[tuple(half)])
    end = _end_distance(phi, tpc, distance)
    levelled = math.isfinite(end)
    end = end if levelled else float(min(half))
    plateau = tpc[(distance >= end - 10) & (distance <= end)]
    phi2 = (float(plateau.mean()) + phi**2) / 2
    inside = distance < end
    volume = float(np.prod(shape))
    small = float(share[inside].sum())
    coeff_1 = volume / (volume - small)
    product = coeff_1 * (float(inside.sum()) - small) / volume
    while product > 1:
        product /= 1.1
    coeff = coeff_1 / (1 - product)
    cls = coeff / (phi - phi2) * float(np.sum(tpc[inside] - phi2))
    return (float(cls ** (1 / 3)) if cls > 0 else float(cls)), levelled


def _interval(phi: float, std: float, model_error: float) -> tuple[float, float]:
    """ImageRep's ``get_prediction_interval``: a normal whose std is itself uncertain.

    The stds range over ImageRep's positive window; the fractions over +-6 of the largest std
    (ImageRep spans only as many stds as the std window, which truncates the interval when the
    model error is large, i.e. for volumes under ~150**3 voxels)."""
    spread = std * model_error
    stds = min(std / spread - std / spread / 10, 6)
    std_axis = np.linspace(std - stds * spread, std + stds * spread, _DIVISIONS)
    weights = _normal(std_axis, std, spread)
    reach = 6 * float(std_axis[-1])
    values = np.linspace(phi - reach, phi + reach, 4 * _DIVISIONS)
    grid_values, grid_stds = np.meshgrid(values, std_axis)
    density = (_normal(grid_values, phi, grid_stds).T * weights).T.sum(axis=0)
    density /= np.trapezoid(density, values)
    cumulative = np.cumsum(density * np.diff(values)[0])
    low = values[np.nonzero(cumulative > 0.025)[0][0]]
    high = values[np.nonzero(cumulative > 0.975)[0][0]]
    return float(low), float(high)


def _normal(x, mean, std):
    return np.exp(-0.5 * ((x - mean) / std) ** 2) / (std * np.sqrt(2 * np.pi))


def _cubes_for_error(phi: float, cubes: float, model_error: float, target: float) -> float:
    """Number of integral-range cubes whose 95 % interval is +-``target`` (absolute)."""
    from scipy.optimize import minimize

    def miss(n):
        std = math.sqrt(phi * (1 - phi) / n[0])
        return abs(target - (phi - _interval(phi, std, model_error)[0]))

    start = min(max(cubes, 10.0), 1e9)
    found = minimize(miss, [start], method="nelder-mead", bounds=[(10, 1e9)])
    return float(found.x[0])


def representativity(
    mask: np.ndarray, voxel_size: Sequence[float] = (1.0, 1.0, 1.0), *, target: float = 0.01
) -> Representativity:
    """95 % interval of the volume fraction of a boolean mask and the edge for +-``target``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> mask = rng.random((40, 40, 40)) < 0.3            # white noise: integral range ~1 voxel
    >>> found = representativity(mask)
    >>> bool(found.ci95[0] < mask.mean() < found.ci95[1]), round(found.integral_range)
    (True, 1)
    """
    mask = np.asarray(mask, dtype=bool)
    phi = float(mask.mean())
    voxel = float(np.prod(voxel_size)) ** (1 / 3)
    if phi in (0.0, 1.0):
        return Representativity(phi, (phi, phi), 0.0, 0.0, 0.0, 0.0, True)
    cls, levelled = integral_range(mask)
    cls = max(cls, 1e-3)
    cubes = mask.size / cls**3
    model_error = _MODEL_ERROR[0] / mask.size ** _MODEL_ERROR[1]
    low, high = _interval(phi, math.sqrt(phi * (1 - phi) / cubes), model_error)
    needed = _cubes_for_error(phi, cubes, model_error, target * phi)
    edge = (needed * cls**3) ** (1 / 3)
    ci95 = (max(low, 0.0), min(high, 1.0))
    return Representativity(phi, ci95, cls, cls * voxel, edge * voxel, edge, levelled)
