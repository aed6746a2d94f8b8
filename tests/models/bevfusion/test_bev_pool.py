"""BEV pooling (``autoware::QuickCumsumCuda``): the PyTorch Function and the ONNX Runtime numpy kernel both equal a
naive per-point scatter-sum when ranks name cells one to one, and a per-rank sum with AWML's ranks; the host
geometry puts each frustum point where the camera sees it."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoware_deploy.models.bevfusion.bev_pool import bev_pool_intervals, per_interval_sum
from pytest_autoware_deploy.models.bevfusion.camera_geometry import (bev_pool_aux, create_frustum, get_geometry,
                                                                     precompute, ranks_unique)
from pytest_autoware_deploy.models.bevfusion.ort_ops import quick_cumsum_cuda

SHAPE = dict(batch_size=1, dimension=2, height=5, width=7)


def _pool_both(x, cells, ranks):
    """Sort by rank as the host does, intervals as the graph does; (torch result, numpy kernel result)."""
    order = np.argsort(ranks, kind="stable")
    xs, gs, rs = x[order], cells[order].astype(np.int32), ranks[order]
    lengths, starts = bev_pool_intervals(torch.from_numpy(rs), len(rs))
    want = per_interval_sum(torch.from_numpy(xs), torch.from_numpy(gs), lengths, starts, *SHAPE.values()).numpy()
    got = quick_cumsum_cuda(xs, gs, lengths.numpy(), starts.numpy(), **{k: str(v) for k, v in SHAPE.items()})
    return want, got


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 60), st.integers(0, 2 ** 31 - 1))
def test_bev_pool_equals_naive_scatter_sum(n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 3)).astype(np.float32)
    cells = np.stack([rng.integers(0, 5, n), rng.integers(0, 7, n), rng.integers(0, 2, n), np.zeros(n, int)], 1)
    ranks = (cells[:, 0] * 7 + cells[:, 1]) * 2 + cells[:, 2]  # one rank per cell
    naive = np.zeros((1, 2, 5, 7, 3), np.float32)
    for p in range(n):
        naive[0, cells[p, 2], cells[p, 0], cells[p, 1]] += x[p]
    want, got = _pool_both(x, cells, ranks)
    np.testing.assert_allclose(want, naive, atol=1e-5)
    np.testing.assert_allclose(got, naive, atol=1e-5)


def test_colliding_ranks_merge_into_the_first_cell():
    """AWML's rank strides can give two cells one rank: the kernel sums both into the interval's first cell."""
    x = np.array([[1.0], [2.0], [4.0]], np.float32)
    cells = np.array([[0, 3, 0, 0], [1, 0, 0, 0], [2, 2, 1, 0]])
    ranks = np.array([3, 3, 9])  # cells (0, 3) and (1, 0) collide
    want, got = _pool_both(x, cells, ranks)
    expect = np.zeros((1, 2, 5, 7, 1), np.float32)
    expect[0, 0, 0, 3] = 3.0
    expect[0, 1, 2, 2] = 4.0
    np.testing.assert_array_equal(want, expect)
    np.testing.assert_array_equal(got, expect)
    assert not ranks_unique(cells, ranks) and ranks_unique(cells[1:], ranks[1:])


def test_frustum_points_project_back_to_their_pixels():
    """get_geometry inverts lidar2image: each frustum point projects to its (x, y) pixel at its depth."""
    f = 50.0
    cam2img = np.array([[f, 0, 32, 0], [0, f, 16, 0], [0, 0, 1, 0], [0, 0, 0, 1]])
    lidar2cam = np.eye(4)
    lidar2cam[:3, :3] = [[0, -1, 0], [0, 0, -1], [1, 0, 0]]  # camera looks along lidar x
    lidar2cam[:3, 3] = [0.1, 0.2, 0.3]
    aug = np.eye(4)
    aug[:2, :2] *= 0.5  # a resize, as AWML's img_aug_matrix
    aug[:2, 3] = [-3.0, 1.0]
    frustum = create_frustum((32, 64), (4, 8), (2.0, 10.0, 2.0))
    pts = get_geometry(frustum, np.linalg.inv(lidar2cam)[None], cam2img[None], aug[None])[0]
    l2i = (cam2img @ lidar2cam)
    uvd = np.einsum("ij,dhwj->dhwi", l2i[:3, :3], pts) + l2i[:3, 3]
    pix = uvd[..., :2] / uvd[..., 2:3]
    pix = np.einsum("ij,dhwj->dhwi", aug[:2, :2], pix) + aug[:2, 3]
    np.testing.assert_allclose(pix, frustum[..., :2], atol=1e-3)
    np.testing.assert_allclose(uvd[..., 2], frustum[..., 2], atol=1e-4)


def test_bev_pool_aux_keeps_in_grid_points_sorted_by_rank():
    geom = np.random.default_rng(0).uniform(-12, 12, size=(2, 3, 2, 4, 3)).astype(np.float32)
    bounds = ([-8.0, 8.0, 2.0], [-8.0, 8.0, 2.0], [-10.0, 10.0, 20.0])
    gf, kept, ranks, indices = bev_pool_aux(geom, *bounds, rank_strides="grid")
    # the cell index is truncated toward zero (torch .long(), Autoware's cast): up to one cell below the grid's
    # lower edge lands in cell 0, as on the GPU
    g = geom.reshape(-1, 3)
    inside = (g[:, 0] > -10) & (g[:, 0] < 8) & (g[:, 1] > -10) & (g[:, 1] < 8) & (g[:, 2] < 10)
    np.testing.assert_array_equal(kept, inside)
    assert (np.diff(ranks) >= 0).all() and gf.dtype == np.int32 and len(gf) == inside.sum()
    cells = np.trunc((g[kept] - [-8, -8, -10]) / [2, 2, 20]).astype(int)
    np.testing.assert_array_equal(gf[:, :3], cells[indices])
    assert ranks_unique(gf, ranks)


def test_precompute_rejects_mismatched_camera_lists():
    import pytest

    with pytest.raises(ValueError, match="same cameras"):
        precompute(np.eye(4)[None].repeat(2, 0), np.eye(4)[None], np.eye(4)[None], (32, 64), (4, 8),
                   [-8, 8, 2], [-8, 8, 2], [-10, 10, 20], [1, 5, 1])


def test_reference_kernel_rejects_intervals_that_do_not_tile_the_points():
    import pytest

    x = np.ones((4, 2), np.float32)
    cells = np.zeros((4, 4), np.int32)
    with pytest.raises(ValueError, match="QuickCumsumCuda reference: the intervals must tile the sorted points"):
        quick_cumsum_cuda(x, cells, np.array([1, 1], np.int32), np.array([0, 2], np.int32),
                          **{k: str(v) for k, v in SHAPE.items()})
