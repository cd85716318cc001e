"""Tortuosity factor and effective diffusivity of a 0/1 mask, solved by TauFactor.

Conventions (stated in every result):

* TauFactor's solver: steady diffusion through the mask along the transport axis, fixed
  concentrations on the two faces of that axis (half a voxel outside the first and last layers),
  no flux through the side faces, face (6-neighbour) connectivity. It gives the relative effective
  diffusivity ``D_eff / D_0``.
* ``convention="taufactor"`` (default): ``tau = eps / (D_eff / D_0)`` with ``eps`` the volume
  fraction of *all* voxels of the mask. ``"percolating"``: ``eps`` is the through-connected
  fraction only (PoreSpy's convention); D_eff is the same, tau is smaller.
* MacMullin number ``N_M = D_0 / D_eff`` (= ``tau / eps``, independent of the convention).
* Bruggeman estimate ``tau_B = eps ** -0.5`` with the convention's ``eps``, for comparison.

A phase that does not connect the two faces gets ``tau = inf`` and ``D_eff = 0`` with a plain
explanation, without solving. Before a solve the time and memory are estimated; requests above
the limits are refused unless ``force=True``. The mask must fit in memory.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from ..errors import BatterySegError
from ..jobs import Job, Progress, run_job
from ._config import AXES, SolverOptions, axis_index
from ._connectivity import Clusters
from ._estimate import (
    _CHECK_EVERY,
    TortuosityEstimate,
    check_limits,
    estimate_tortuosity,
    resolve_device,
)
from ._masks import transport_axis_first
from ._taufactor import ThreadChoice, make_solver, relative_diffusivity, run_quietly

_CHUNK_SECONDS = 1.0  # iterations per progress event / cancel point: about this long
_SOLVER_FIELDS = frozenset(f.name for f in fields(SolverOptions))

__all__ = [
    "SolverOptions",
    "TortuosityEstimate",
    "TortuosityResult",
    "estimate_tortuosity",
    "resolve_device",
    "tortuosity",
    "tortuosity_job",
]


@dataclass(frozen=True)
class TortuosityResult:
    """Tortuosity factor of one mask along one axis, with the numbers that explain it."""

    axis: str
    tortuosity: float
    effective_diffusivity: float
    volume_fraction: float
    through_fraction: float
    convention: str
    macmullin: float
    bruggeman_tortuosity: float
    iterations: int
    converged: bool
    seconds: float
    device: str
    note: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def tortuosity_job(
    mask,
    axis: str | int = "z",
    voxel_size: Sequence[float] = (1.0, 1.0, 1.0),
    solver: SolverOptions | None = None,
    *,
    name: str = "phase",
    through_fraction: float | None = None,
) -> Job[TortuosityResult]:
    """Solve the tortuosity factor of a 0/1 ``mask`` (Z, Y, X) along ``axis`` with TauFactor.

    Yields progress by iteration, about every second (cancel there); returns a
    :class:`TortuosityResult`. ``solver`` (:class:`SolverOptions`, default ones when ``None``)
    holds the convention, the device, the convergence criterion and the limits. On the CPU the
    solve measures whether it runs faster on one thread or all of torch's (see
    :mod:`._taufactor`); on CUDA (``device="auto"`` when present) it runs on the GPU.
    ``voxel_size`` is (dz, dy, dx); anisotropic voxels use TauFactor's ``AnisotropicSolver``.
    ``through_fraction``, when already known, skips labelling the clusters again. The first
    event carries the time and memory estimate in ``data["estimate"]``.
    """
    solver = SolverOptions() if solver is None else solver
    index = axis_index(axis)
    mask = _bool_mask(mask)
    fractions = _Fractions(AXES[index], float(mask.mean()) if mask.size else 0.0, 0.0, solver)
    if fractions.volume == 0.0:
        return _infinite(fractions, f"{name} is absent: no voxel of it.")
    through = through_fraction
    if through is None:
        through = Clusters(mask).connectivity(index, solver.front_face).through
    fractions = replace(fractions, through=through)
    if through == 0.0:
        note = (
            f"{name} does not percolate along {AXES[index]}: no face-connected path joins the "
            f"two {AXES[index]} faces, so no steady flux passes (tau = inf, D_eff = 0)."
        )
        return _infinite(fractions, note)
    if mask.shape[index] == 1:  # TauFactor needs two layers; one layer is straight paths
        note = "one layer along the transport axis: every path is straight, tau = 1 exactly."
        return _finished(fractions, fractions.volume, note)
    return (
        yield from _solve(mask, index, voxel_size, solver, fractions, f"{name} along {AXES[index]}")
    )


def _bool_mask(mask) -> np.ndarray:
    mask = np.asarray(mask)
    if mask.ndim != 3:
        raise BatterySegError(f"A tortuosity mask must be 3D (Z, Y, X), got shape {mask.shape}.")
    return mask.astype(bool, copy=False)


def _solve(mask, index, voxel_size, options: SolverOptions, fractions: _Fractions, what: str):
    """Estimate, check the limits, and run TauFactor on a mask that percolates."""
    device = resolve_device(options.device)
    estimate = estimate_tortuosity(mask.shape, index, device)
    check_limits(estimate, **options.limits, what=what)
    text = f"tortuosity of {what}: {estimate.describe()}"
    yield Progress(0, estimate.iterations, text, {"estimate": text})
    solver = make_solver(
        transport_axis_first(mask.view(np.uint8), index), _spacing(voxel_size, index), device
    )
    seconds, _ = yield from _iterate(solver, estimate, mask.shape, index, device, what, options)
    note = (
        ""
        if solver.converged
        else (
            f"not converged after {solver.iter} iterations; the value is approximate "
            "(raise iter_limit)."
        )
    )
    return _finished(
        fractions,
        relative_diffusivity(solver),
        note,
        iterations=solver.iter,
        converged=bool(solver.converged),
        seconds=seconds,
        device=device,
    )


def _iterate(solver, estimate, shape, index, device, what, options: SolverOptions):
    """Iterate in chunks of about a second: progress by iteration, cancel between chunks.

    After the thread trial (see :class:`ThreadChoice`) the time is estimated again from the
    measured rate and checked against the limits. Returns the seconds spent and the estimate.
    """
    conv_crit, iter_limit = options.conv_crit, options.iter_limit
    voxels = int(np.prod(shape))
    threads = ThreadChoice(device)
    rate = estimate.seconds / max(estimate.iterations * voxels, 1)
    start, measured, chunk_index = time.perf_counter(), False, 0
    while not solver.converged and solver.iter < iter_limit:
        size = int(min(_CHECK_EVERY, max(1, _CHUNK_SECONDS / (rate * voxels))))
        before, chunk_start = solver.iter, time.perf_counter()
        with threads.chunk(chunk_index, size):
            run_quietly(solver, min(solver.iter + size, iter_limit), conv_crit)
        done = max(solver.iter - before, 1)
        rate = (time.perf_counter() - chunk_start) / (done * voxels)
        chunk_index += 1
        data = {}
        if threads.decided and not measured and not solver.converged:
            measured = True
            estimate = estimate_tortuosity(shape, index, device, rate)
            estimate = _remaining(estimate, solver.iter)
            text = (
                f"tortuosity of {what}, measured over the first {solver.iter} iterations "
                f"({threads.threads} thread{'s' * (threads.threads != 1)}): "
                f"{estimate.describe()}"
            )
            check_limits(  # memory was checked before the solver took its share
                estimate,
                max_seconds=options.max_seconds,
                max_memory_bytes=estimate.memory_bytes,
                force=options.force,
                what=what,
            )
            data = {"estimate": text}
        total = max(estimate.iterations, math.ceil(1.25 * solver.iter))
        yield Progress(solver.iter, total, f"tortuosity of {what}: iteration {solver.iter}", data)
    return time.perf_counter() - start, estimate


def _remaining(estimate: TortuosityEstimate, done: int) -> TortuosityEstimate:
    """The estimate of a solve that has run ``done`` iterations already (at least 100 more)."""
    iterations = max(estimate.iterations, done + _CHECK_EVERY)
    seconds = estimate.seconds / max(estimate.iterations, 1) * iterations
    return TortuosityEstimate(
        estimate.voxels, iterations, seconds, estimate.memory_bytes, estimate.device
    )


def _spacing(voxel_size: Sequence[float], index: int) -> tuple[float, float, float]:
    sizes = [float(v) for v in voxel_size]
    if len(sizes) != 3 or min(sizes) <= 0:
        raise BatterySegError(f"Voxel size must be three positive numbers, got {voxel_size!r}.")
    return (sizes[index], *[s for i, s in enumerate(sizes) if i != index])


@dataclass(frozen=True)
class _Fractions:
    """The volume fractions a result states: of all voxels of the mask and through-connected."""

    axis: str
    volume: float
    through: float
    solver: SolverOptions

    @property
    def convention(self) -> str:
        return self.solver.convention

    @property
    def used(self) -> float:
        """The fraction in ``tau = eps / (D_eff / D_0)`` under the solver's convention."""
        return self.volume if self.convention == "taufactor" else self.volume * self.through


def _finished(
    fractions: _Fractions,
    relative: float,
    note: str,
    *,
    iterations: int = 0,
    converged: bool = True,
    seconds: float = 0.0,
    device: str = "none",
) -> TortuosityResult:
    if relative <= 0:
        return _infinite(fractions, note or "no flux passes (D_eff = 0).")
    eps = fractions.used
    return TortuosityResult(
        axis=fractions.axis,
        tortuosity=eps / relative,
        effective_diffusivity=relative,
        volume_fraction=eps,
        through_fraction=fractions.through,
        convention=fractions.convention,
        macmullin=1.0 / relative,
        bruggeman_tortuosity=eps**-0.5,
        iterations=iterations,
        converged=converged,
        seconds=seconds,
        device=device,
        note=note,
    )


def _infinite(fractions: _Fractions, note: str) -> TortuosityResult:
    eps = fractions.used
    return TortuosityResult(
        axis=fractions.axis,
        tortuosity=math.inf,
        effective_diffusivity=0.0,
        volume_fraction=eps,
        through_fraction=fractions.through,
        convention=fractions.convention,
        macmullin=math.inf,
        bruggeman_tortuosity=(eps**-0.5) if eps > 0 else math.inf,
        iterations=0,
        converged=True,
        seconds=0.0,
        device="none",
        note=note,
    )


def solver_and_rest(options: dict[str, Any]) -> tuple[SolverOptions, dict[str, Any]]:
    """Split keyword arguments into a :class:`SolverOptions` (``solver=`` or its fields) and
    the rest, for the one-call forms of the jobs."""
    fields = {k: options.pop(k) for k in list(options) if k in _SOLVER_FIELDS}
    solver = options.pop("solver", None)
    if solver is not None and fields:
        raise BatterySegError(f"Give either solver= or its fields ({', '.join(fields)}), not both.")
    return (solver if solver is not None else SolverOptions(**fields)), options


def tortuosity(
    mask, axis: str | int = "z", voxel_size: Sequence[float] = (1.0, 1.0, 1.0), **options
) -> TortuosityResult:
    """Tortuosity factor of a 0/1 mask (Z, Y, X) along ``axis`` (see :func:`tortuosity_job`).

    ``options``: ``solver=SolverOptions(...)`` or its fields (``device="cpu"``, ...), and the
    job's ``name`` and ``through_fraction``.

    Examples
    --------
    >>> mask = np.zeros((8, 4, 4), dtype=np.uint8)
    >>> mask[:, :, :2] = 1                               # straight channels along z
    >>> result = tortuosity(mask, "z", device="cpu")
    >>> round(result.tortuosity, 3), result.effective_diffusivity.__round__(3)
    (1.0, 0.5)
    """
    solver, rest = solver_and_rest(dict(options))
    return run_job(tortuosity_job(mask, axis, voxel_size, solver, **rest))
