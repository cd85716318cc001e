"""Multi-phase transport: porous CBD in the electrolyte network, electronic paths through CBD.

TauFactor's ``MultiPhaseSolver`` solves steady conduction through a labelled volume where each
phase has its own relative conductivity (harmonic means between neighbouring voxels; fixed
values on the two faces of the transport axis, no flux through the side faces):

* **electrolyte with porous CBD**: pore 1, CBD ``cbd_diffusivity`` (e.g. 0.1), the rest 0;
* **electronic**: the given conductivities (``active=1, cbd=0.01``), pore 0.

Reported as TauFactor defines it: ``effective_diffusivity`` = ``D_eff`` relative to a
conductivity of 1 (the pore, or the phase given 1), and ``tau = D_mean / D_eff`` with ``D_mean``
the volume-weighted mean conductivity of the volume (``sum eps_i * D_i``). With anisotropic voxels
the in-plane neighbour weights get ``(d_transport / d_i) ** 2`` (the same finite-volume weights as
TauFactor's ``AnisotropicSolver``). The labelled volume must be in memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from ..errors import BatterySegError
from ..jobs import Job, Progress, run_job
from ._config import AXES, SolverOptions, axis_index
from ._connectivity import Clusters
from ._estimate import resolve_device
from ._masks import transport_axis_first
from ._taufactor import run_quietly
from ._tortuosity import _spacing, solver_and_rest

__all__ = ["MultiphaseResult", "multiphase_tortuosity", "multiphase_tortuosity_job"]

_CHECK_EVERY = 100  # TauFactor checks convergence every 100 iterations


@dataclass(frozen=True)
class MultiphaseResult:
    """Effective conductivity of a multi-phase volume along one axis (TauFactor's definitions)."""

    name: str
    axis: str
    conductivities: dict[str, float]
    tortuosity: float
    effective_diffusivity: float
    mean_conductivity: float
    iterations: int
    converged: bool
    seconds: float
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _solver(image: np.ndarray, conductivity: dict[int, float], spacing, device: str):
    """TauFactor's MultiPhaseSolver, with anisotropic neighbour weights when voxels differ."""
    import taufactor
    import torch

    from ._taufactor import buffered_solver_class

    solver = buffered_solver_class(taufactor.MultiPhaseSolver)(
        image, cond=conductivity, device=device
    )
    weights = [(spacing[0] / s) ** 2 for s in spacing]
    if any(abs(w - 1.0) > 1e-12 for w in weights):
        for axis, weight in enumerate(weights[1:], start=1):
            solver.pre_factors[2 * axis] *= weight
            solver.pre_factors[2 * axis + 1] *= weight
        diagonal = sum(f[:, 1:-1, 1:-1, 1:-1] for f in solver.pre_factors)
        image_t = torch.as_tensor(image[None], device=diagonal.device)
        diagonal[(image_t == 0) | (diagonal == 0)] = torch.inf
        solver.factor = diagonal
    return solver


def multiphase_tortuosity_job(
    phase_index: np.ndarray,
    conductivities: dict[int, float],
    axis: str | int = "z",
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    solver: SolverOptions | None = None,
    *,
    names: dict[int, str] | None = None,
    name: str = "multiphase",
) -> Job[MultiphaseResult]:
    """Solve the effective conductivity of ``phase_index`` (Z, Y, X ints) along ``axis``.

    ``conductivities`` maps phase index to relative conductivity (> 0); other indices do not
    conduct. ``solver`` gives the device, ``conv_crit`` and ``iter_limit`` (default: on the
    CPU). Yields progress every 100 iterations (cancel there).
    """
    solver = SolverOptions(device="cpu") if solver is None else solver
    conv_crit, iter_limit = solver.conv_crit, solver.iter_limit
    index = axis_index(axis)
    names = names or {k: str(k) for k in conductivities}
    labels = {names[k]: float(v) for k, v in conductivities.items()}
    phase_index = np.asarray(phase_index)
    if phase_index.ndim != 3:
        raise BatterySegError(f"A phase volume must be 3D (Z, Y, X), got {phase_index.shape}.")
    image = np.zeros(phase_index.shape, dtype=np.int32)
    for number, key in enumerate(conductivities, start=1):
        image[phase_index == key] = number
    solver_cond = {n: float(conductivities[k]) for n, k in enumerate(conductivities, start=1)}
    fractions = np.bincount(image.ravel(), minlength=len(solver_cond) + 1) / image.size
    mean = float(sum(fractions[n] * c for n, c in solver_cond.items()))
    conducting = image > 0
    if Clusters(conducting).connectivity(index).through in (0.0,) or not conducting.any():
        note = f"{name} does not percolate along {AXES[index]}: D_eff = 0, tau = inf."
        return MultiphaseResult(name, AXES[index], labels, math.inf, 0.0, mean, 0, True, 0.0, note)
    image = transport_axis_first(image, index)
    spacing = _spacing(voxel_size, index)
    device = resolve_device(solver.device)
    taufactor = _solver(np.ascontiguousarray(image), solver_cond, spacing, device)
    start = time.perf_counter()
    while not taufactor.converged and taufactor.iter < iter_limit:
        run_quietly(taufactor, min(taufactor.iter + _CHECK_EVERY, iter_limit), conv_crit)
        yield Progress(
            taufactor.iter, iter_limit, f"{name} along {AXES[index]}: iteration {taufactor.iter}"
        )
    relative = float(np.asarray(taufactor.D_eff).ravel()[0])
    converged = bool(taufactor.converged)
    note = "" if converged else f"not converged after {taufactor.iter} iterations (approximate)."
    tau = mean / relative if relative > 0 else math.inf
    seconds = time.perf_counter() - start
    return MultiphaseResult(
        name, AXES[index], labels, tau, relative, mean, taufactor.iter, converged, seconds, note
    )


def multiphase_tortuosity(
    phase_index: np.ndarray, conductivities: dict[int, float], axis="z", voxel_size=(1, 1, 1), **kw
) -> MultiphaseResult:
    """Effective conductivity and tortuosity of a multi-phase volume (see the job).

    Examples
    --------
    >>> volume = np.ones((6, 4, 4), dtype=np.uint8)
    >>> volume[:, :, 2:] = 2                  # two straight slabs along z: conductivity 1 and 0.5
    >>> result = multiphase_tortuosity(volume, {1: 1.0, 2: 0.5}, "z")
    >>> round(result.effective_diffusivity, 3), round(result.tortuosity, 3)
    (0.75, 1.0)
    """
    if "device" not in kw and "solver" not in kw:
        kw["device"] = "cpu"  # the job's default
    solver, rest = solver_and_rest(kw)
    job = multiphase_tortuosity_job(phase_index, conductivities, axis, voxel_size, solver, **rest)
    return run_job(job)
