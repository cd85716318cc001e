"""The global tile grid and Gaussian blending (battery_seg.inference._tiling)."""

from __future__ import annotations

import numpy as np
import pytest

from battery_seg.inference._tiling import (
    AxisGrid,
    blend_planes,
    gaussian_importance_map,
    plan_axis,
)


@pytest.mark.parametrize("length", [1, 5, 16, 17, 53, 61, 96, 97, 300])
@pytest.mark.parametrize("tile", [16, 32])
def test_grid_covers_the_axis_with_tiles_of_the_allowed_size(length, tile):
    grid = plan_axis(length, tile, 0.25, 8)
    assert grid.tile % 8 == 0 and grid.tile <= max(tile, grid.tile)
    covered = np.zeros(grid.padded_length, bool)
    for start in grid.starts:
        assert 0 <= start and start + grid.tile <= grid.padded_length
        covered[start : start + grid.tile] = True
    assert covered.all()
    assert list(grid.starts) == sorted(set(grid.starts))
    if length > tile:  # as MONAI: stride int(tile * 0.75), last tile flush with the edge
        assert grid.padded_length == length and grid.starts[-1] == length - tile
        assert (np.diff(grid.starts) <= int(tile * 0.75)).all()
    else:  # one tile of the smallest allowed size, mirror-padded
        assert grid.starts == (0,) and grid.tile == max(8, -(-length // 8) * 8)


def test_grid_matches_monai_patch_positions():
    from monai.data.utils import dense_patch_slices
    from monai.inferers.utils import _get_scan_interval

    for length in (61, 100, 300):
        interval = _get_scan_interval((length,), (32,), 1, (0.25,))
        monai_starts = [s[0].start for s in dense_patch_slices((length,), (32,), interval)]
        assert list(plan_axis(length, 32, 0.25, 16).starts) == monai_starts


def test_window_lists_the_tiles_touching_a_range():
    grid = AxisGrid(300, 128, (0, 96, 172))
    assert grid.window(0, 10) == ((0,), 0, 128)
    assert grid.window(100, 180) == ((0, 96, 172), 0, 300)
    assert grid.window(230, 300) == ((172,), 172, 300)


@pytest.mark.parametrize("shape", [(32, 32), (64, 48), (16, 80)])
def test_importance_map_equals_monai_gaussian(shape):
    from monai.data.utils import compute_importance_map

    expected = compute_importance_map(shape, mode="gaussian", sigma_scale=0.125).numpy()
    np.testing.assert_allclose(gaussian_importance_map(shape), expected, rtol=1e-6, atol=1e-7)


def _softmax(logits, axis):
    e = np.exp(logits - logits.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _pointwise(tiles: np.ndarray) -> np.ndarray:
    """An analytic 'network': logits (2x+1, -x, 3x-1) of the centre channel, per pixel."""
    x = tiles[:, tiles.shape[1] // 2]
    return _softmax(np.stack([2 * x + 1, -x, 3 * x - 1], axis=1), axis=1).astype(np.float32)


@pytest.mark.parametrize("plane", [(40, 37), (7, 5), (16, 16)])
@pytest.mark.parametrize("batch_size", [1, 3, 64])
def test_blending_a_pointwise_model_gives_its_values_exactly(plane, batch_size):
    rng = np.random.default_rng(0)
    grids = (plan_axis(plane[0], 16, 0.25, 8), plan_axis(plane[1], 16, 0.25, 8))
    stack = rng.random((4 + 2, *plane), dtype=np.float32)  # 4 planes, context 3
    padded = np.pad(
        stack,
        ((0, 0), (0, grids[0].padded_length - plane[0]), (0, grids[1].padded_length - plane[1])),
        mode="reflect",
    )
    region = ((0, plane[0]), (0, plane[1]))
    out = np.concatenate(
        [p for _, p in blend_planes(padded, 3, grids, region, _pointwise, 3, batch_size)]
    )
    expected = _softmax(np.stack([2 * stack[1:5] + 1, -stack[1:5], 3 * stack[1:5] - 1], 1), 1)
    assert out.shape == (4, 3, *plane)
    np.testing.assert_allclose(out, expected, rtol=2e-6, atol=1e-7)


def test_a_sub_region_equals_the_same_region_of_the_whole_plane():
    rng = np.random.default_rng(1)
    grids = (plan_axis(61, 16, 0.25, 8), plan_axis(53, 16, 0.25, 8))
    plane = rng.random((1, 61, 53), dtype=np.float32)
    kernel = rng.random((3, 3, 3), dtype=np.float32)

    def conv_like(tiles):  # depends on the tile border: blending must hide it
        from scipy.ndimage import correlate

        out = np.stack([[correlate(t[0], k, mode="constant") for k in kernel] for t in tiles])
        return _softmax(out, 1).astype(np.float32)

    whole = next(blend_planes(plane, 1, grids, ((0, 61), (0, 53)), conv_like, 3))[1]
    (_, y0, y1), (_, x0, x1) = grids[0].window(20, 41), grids[1].window(9, 30)
    region = ((20, 41), (9, 30))
    part = next(blend_planes(plane[:, y0:y1, x0:x1], 1, grids, region, conv_like, 3))
    np.testing.assert_array_equal(part[1], whole[:, :, 20:41, 9:30])
