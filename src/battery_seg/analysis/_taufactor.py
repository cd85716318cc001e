"""TauFactor behind a small adapter: its public API only, quiet, and a thread count that fits.

We use what TauFactor documents: ``Solver(img, D_0=, device=)`` and ``AnisotropicSolver(img,
spacing, D_0=, device=)``, ``solve(iter_limit=, verbose=, conv_crit=)``, and the attributes
``iter``, ``converged``, ``D_0`` and ``D_eff``; the anisotropic flux fix overrides the
``vertical_flux`` hook with the ``field`` and ``factor`` tensors.
``tests/test_taufactor_contract.py`` fails if a TauFactor release changes any of them. TauFactor
prints at the end of every ``solve`` call (a warning for each unconverged chunk); the printout is
captured, not patched away.

Memory traffic: TauFactor sums a voxel's neighbours as one Python expression, so every sweep
allocates five temporaries the size of the volume; large blocks come fresh from the system each
time, and zeroing their pages cost more than the arithmetic (measured on the published 256^3
electrode, one thread: 0.49 s per iteration against 0.12 s). Our solvers sum into buffers kept
between sweeps, in TauFactor's order of operations, so every iterate is bit for bit TauFactor's
(``tests/test_taufactor_contract.py`` compares the sums with TauFactor's own).

Threads: a solve is a few element-wise sweeps per iteration over the whole volume. With other
processes busy on the same cores, torch's threads wait for each other at every sweep (measured:
two solves side by side on 2 busy cores took 4x longer with 2 threads each than with 1). So the
solve measures: its second chunk of iterations runs on one thread, its third on all of torch's
threads, and it keeps whichever ran an iteration faster.
"""

from __future__ import annotations

import contextlib
import io
import time
from typing import Any

import numpy as np

from ..errors import BatterySegError

__all__ = [
    "ThreadChoice",
    "buffered_solver_class",
    "make_solver",
    "relative_diffusivity",
    "run_quietly",
]


def make_solver(mask: np.ndarray, spacing: tuple[float, float, float], device: str) -> Any:
    """TauFactor's solver for a 0/1 uint8 mask, transport along axis 0, ``D_0 = 1``."""
    import taufactor

    if max(spacing) / min(spacing) > 10:
        raise BatterySegError(
            f"Voxel sizes {spacing} differ by more than 10x; a finite-difference tortuosity on "
            "such voxels is unreliable. Resample the volume to more even voxels first."
        )
    if spacing[0] == spacing[1] == spacing[2]:
        return buffered_solver_class(taufactor.Solver)(mask, D_0=1, device=device)
    return _anisotropic_solver_class()(mask, spacing=spacing, D_0=1, device=device)


def buffered_solver_class(base: type) -> type:
    """``base`` (TauFactor's ``Solver``, ``AnisotropicSolver`` or ``MultiPhaseSolver``) summing
    the weighted neighbours into buffers kept between sweeps: the same numbers, no temporaries."""
    import taufactor

    if issubclass(base, taufactor.AnisotropicSolver):
        return type(base.__name__, (_BufferedAnisotropic, base), {})
    if issubclass(base, taufactor.MultiPhaseSolver):
        return type(base.__name__, (_BufferedMultiPhase, base), {})
    if issubclass(base, taufactor.Solver):
        return type(base.__name__, (_BufferedSolver, base), {})
    raise TypeError(f"no buffered sweep for {base.__name__}")


class _Buffers:
    """Two interior-sized buffers of the solver's field, made on first use."""

    def _buffers(self):
        if getattr(self, "_sweep_buffers", None) is None:
            inner = self.field[:, 1:-1, 1:-1, 1:-1]
            self._sweep_buffers = (
                self.field.new_empty(inner.shape),
                self.field.new_empty(inner.shape),
            )
        return self._sweep_buffers


def _shifted(field):
    """The field's interior shifted by one voxel: +x, -x, +y, -y, +z, -z (TauFactor's order)."""
    return (
        field[:, 2:, 1:-1, 1:-1],
        field[:, :-2, 1:-1, 1:-1],
        field[:, 1:-1, 2:, 1:-1],
        field[:, 1:-1, :-2, 1:-1],
        field[:, 1:-1, 1:-1, 2:],
        field[:, 1:-1, 1:-1, :-2],
    )


class _BufferedSolver(_Buffers):
    def sum_weighted_neighbours(self):  # a + b + c + d + e + f
        import torch

        total, _ = self._buffers()
        first, *rest = _shifted(self.field)
        torch.add(first, rest[0], out=total)
        for shifted in rest[1:]:
            total.add_(shifted)
        return total


class _BufferedAnisotropic(_Buffers):
    def sum_weighted_neighbours(self):  # a + b + Ky * (c + d) + Kz * (e + f)
        import torch

        total, pair = self._buffers()
        a, b, c, d, e, f = _shifted(self.field)
        torch.add(a, b, out=total)
        for weight, (one, other) in ((self.Ky, (c, d)), (self.Kz, (e, f))):
            torch.add(one, other, out=pair)
            total.add_(pair.mul_(weight))
        return total


class _BufferedMultiPhase(_Buffers):
    def sum_weighted_neighbours(self):  # sum of field * pre_factor, neighbour by neighbour
        import torch

        total, product = self._buffers()
        fields = _shifted(self.field)
        factors = [_shifted(f)[i] for i, f in enumerate(self.pre_factors)]
        torch.mul(fields[0], factors[0], out=total)
        for field, factor in zip(fields[1:], factors[1:], strict=True):
            total.add_(torch.mul(field, factor, out=product))
        return total


def _anisotropic_solver_class():
    """TauFactor's ``AnisotropicSolver`` with its flux measurement fixed.

    TauFactor 1.2.1 marks non-conducting voxels by ``factor > 8`` when it sums the flux, which
    holds for the isotropic solver (at most 6 neighbours + 2 for a face). With anisotropic
    weights ``(d_transport / d_other)^2 > 1`` a conducting voxel's weighted neighbour sum can
    exceed 8, so its flux was dropped and tau came out too large or infinite. Non-conducting
    voxels have ``factor = inf``; this subclass tests exactly that. The solver itself is unchanged.
    """
    import taufactor
    import torch

    class AnisotropicSolver(buffered_solver_class(taufactor.AnisotropicSolver)):
        def vertical_flux(self):
            flux = self.field[:, 2:-1, 1:-1, 1:-1] - self.field[:, 1:-2, 1:-1, 1:-1]
            flux[torch.isinf(self.factor[:, :-1])] = 0
            flux[torch.isinf(self.factor[:, 1:])] = 0
            return flux

    return AnisotropicSolver


def run_quietly(solver: Any, iter_limit: int, conv_crit: float) -> None:
    """Iterate until ``iter_limit`` or convergence, keeping TauFactor's printout off the screen."""
    with contextlib.redirect_stdout(io.StringIO()):
        solver.solve(iter_limit=iter_limit, verbose=False, conv_crit=conv_crit)


def relative_diffusivity(solver: Any) -> float:
    """``D_eff / D_0`` of the first (only) batch element."""
    return float(np.asarray(solver.D_eff).ravel()[0]) / float(solver.D_0)


class ThreadChoice:
    """Runs chunk 1 of a CPU solve on one thread and chunk 2 on all, then keeps the faster.

    Chunk 0 (first touch of the memory) runs on all threads and is not judged. Use
    ``with choice.chunk(index, iterations):`` around each chunk; ``threads`` is the count in use.
    """

    def __init__(self, device: str) -> None:
        import torch

        self.torch = torch
        self.original = torch.get_num_threads()
        self.trial = device == "cpu" and self.original > 1
        self.seconds_per_iteration: dict[int, float] = {}
        self.threads = self.original

    @property
    def decided(self) -> bool:
        return not self.trial or len(self.seconds_per_iteration) == 2

    @contextlib.contextmanager
    def chunk(self, index: int, iterations: int):
        if not self.decided:
            self.threads = 1 if index == 1 else self.original
        self.torch.set_num_threads(self.threads)
        start = time.perf_counter()
        try:
            yield
        finally:
            self.torch.set_num_threads(self.original)
        if not self.decided and index in (1, 2) and iterations > 0:
            self.seconds_per_iteration[self.threads] = (time.perf_counter() - start) / iterations
            if self.decided:
                times = self.seconds_per_iteration
                self.threads = min(times, key=times.__getitem__)
