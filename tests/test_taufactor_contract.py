"""The contract with TauFactor: exactly the parts of its API that battery_seg uses.

battery_seg.analysis._taufactor calls ``Solver(img, D_0=, device=)``, ``AnisotropicSolver(img,
spacing=, D_0=, device=)``, ``solve(iter_limit=, verbose=, conv_crit=)`` in chunks, and reads
``iter``, ``converged``, ``D_0``, ``D_eff`` and ``tau``; the anisotropic flux fix overrides
``vertical_flux`` using the ``field`` and ``factor`` tensors. If a TauFactor release renames or
changes any of these, this test fails before a user sees a wrong number (pyproject pins the range
these tests pass on).
"""

from __future__ import annotations

import contextlib
import inspect
import io

import numpy as np
import pytest

taufactor = pytest.importorskip("taufactor")


def _channels() -> np.ndarray:
    mask = np.zeros((12, 6, 6), dtype=np.uint8)
    mask[:, :, :3] = 1  # straight channels along axis 0: D_eff / D_0 = 0.5, tau = 1
    return mask


def test_the_constructors_and_solve_take_the_arguments_we_pass():
    assert {"img", "D_0", "device"} <= set(inspect.signature(taufactor.Solver).parameters)
    anisotropic = set(inspect.signature(taufactor.AnisotropicSolver).parameters)
    assert {"img", "spacing", "D_0", "device"} <= anisotropic
    solve = set(inspect.signature(taufactor.Solver.solve).parameters)
    assert {"iter_limit", "verbose", "conv_crit"} <= solve
    assert issubclass(taufactor.AnisotropicSolver, taufactor.Solver)
    assert callable(taufactor.AnisotropicSolver.vertical_flux)  # the hook we override


@pytest.mark.parametrize("anisotropic", [False, True])
def test_public_attributes_after_a_chunked_solve(anisotropic):
    import torch

    if anisotropic:
        solver = taufactor.AnisotropicSolver(
            _channels(), spacing=(1.0, 1.0, 1.0), D_0=1, device="cpu"
        )
    else:
        solver = taufactor.Solver(_channels(), D_0=1, device="cpu")
    assert solver.iter == 0 and solver.converged is False and solver.D_0 == 1
    assert isinstance(solver.field, torch.Tensor) and isinstance(solver.factor, torch.Tensor)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        while not solver.converged and solver.iter < 2000:
            solver.solve(iter_limit=solver.iter + 37, verbose=False, conv_crit=1e-3)
    assert solver.converged and solver.iter % 100 == 0  # converges on a check, every 100
    assert float(np.asarray(solver.D_eff).ravel()[0]) == pytest.approx(0.5, rel=1e-3)
    assert float(np.asarray(solver.tau).ravel()[0]) == pytest.approx(1.0, rel=1e-3)
    flux = solver.vertical_flux()
    assert tuple(flux.shape[1:]) == (11, 6, 6)  # between the 12 layers, over the cross-section


def test_the_multiphase_solver_parts_we_use():
    """battery_seg.analysis._transport builds ``MultiPhaseSolver(img, cond=, device=)`` and scales
    its ``pre_factors`` (two per axis, padded like the field) and ``factor`` for anisotropic
    voxels, then solves in chunks and reads ``D_eff``."""
    import torch

    assert {"img", "cond", "device"} <= set(
        inspect.signature(taufactor.MultiPhaseSolver).parameters
    )
    image = _channels().astype(np.int32)
    solver = taufactor.MultiPhaseSolver(image, cond={1: 1.0}, device="cpu")
    assert len(solver.pre_factors) == 6
    assert isinstance(solver.factor, torch.Tensor)
    assert tuple(solver.pre_factors[0][:, 1:-1, 1:-1, 1:-1].shape) == tuple(solver.factor.shape)
    with contextlib.redirect_stdout(io.StringIO()):
        while not solver.converged and solver.iter < 4000:
            solver.solve(iter_limit=solver.iter + 100, verbose=False, conv_crit=1e-3)
    assert float(np.asarray(solver.D_eff).ravel()[0]) == pytest.approx(0.5, rel=1e-2)


@pytest.mark.parametrize("kind", ["Solver", "AnisotropicSolver", "MultiPhaseSolver"])
def test_buffered_sweeps_give_taufactors_own_numbers(kind):
    """Our solvers sum a voxel's weighted neighbours into kept buffers (no temporaries per
    sweep); TauFactor's own ``sum_weighted_neighbours`` must give the same bits, before and
    after 250 sweeps (if a release changes its formula, this fails)."""
    import torch

    from battery_seg.analysis._taufactor import buffered_solver_class

    rng = np.random.default_rng(0)
    image = (rng.random((14, 9, 11)) < 0.7).astype(np.uint8)
    base = getattr(taufactor, kind)
    if kind == "AnisotropicSolver":
        args = {"spacing": (1.0, 0.7, 1.3), "D_0": 1}
    elif kind == "MultiPhaseSolver":
        image = image * rng.integers(1, 3, image.shape).astype(np.int32)
        args = {"cond": {1: 1.0, 2: 0.3}}
    else:
        args = {"D_0": 1}
    ours = buffered_solver_class(base)(image, device="cpu", **args)
    theirs = base(image, device="cpu", **args)
    assert isinstance(ours, base)
    with torch.no_grad():
        noise = torch.from_numpy(rng.random(ours.field.shape).astype(np.float32))
        ours.field += noise
        theirs.field += noise
    assert torch.equal(ours.sum_weighted_neighbours(), base.sum_weighted_neighbours(ours))
    with contextlib.redirect_stdout(io.StringIO()):
        ours.solve(iter_limit=250, verbose=False, conv_crit=1e-9)
        theirs.solve(iter_limit=250, verbose=False, conv_crit=1e-9)
    assert ours.iter == theirs.iter == 250
    assert torch.equal(ours.field, theirs.field)
