"""The camera geometry BEVFusion's deployment computes on the host, once per calibration (numpy only).

Autoware's ``autoware_bevfusion`` (``precomputed_features.cpp``) and AWML's ``BaseViewTransform`` do this outside
the main-body graph, because it needs matrix inverses and an argsort: ``create_frustum`` (image-plane pixel
positions at each depth bin), ``get_geometry`` (frustum -> lidar frame: undo the image augmentation, scale by
depth, intrinsics inverse, camera-to-lidar), ``bev_pool_aux`` (voxel index of each frustum point, the ``kept``
mask of points inside the BEV grid, ``ranks`` and the sorting ``indices``), and ``lidar2image``.

``ranks`` follow AWML/Autoware exactly: ``x * (fW * D) + y * D + z + b`` with ``D`` the depth bins and ``fW`` the
feature-map width (the frustum's shape, not the BEV grid's; mit-han-lab's original used ``ny * nz``). When the
BEV grid is wider than ``fW`` in y, distinct cells can share a rank and QuickCumsumCuda merges them into the cell
of the interval's first point; ``ranks_unique`` says whether a calibration is affected. ``rank_strides='grid'``
gives collision-free ranks (``x * ny * nz + y * nz + z``) for comparison. Cell indices are truncated toward zero
(torch's ``.long()``, Autoware's ``cast<int32_t>``), so points up to one cell below the grid's lower edge are kept
in cell 0, as on the GPU.
"""

from __future__ import annotations

import numpy as np


def grid_shape(xbound, ybound, zbound):
    """``nx``: cells along x, y, z (AWML's ``gen_dx_bx``: ``(hi - lo) / step`` truncated)."""
    return [int((b[1] - b[0]) / b[2]) for b in (xbound, ybound, zbound)]


def create_frustum(image_size, feature_size, dbound):
    """``(D, fH, fW, 3)`` float32: pixel ``x``, ``y`` (image coordinates of each feature cell) and depth."""
    ih, iw = image_size
    fh, fw = feature_size
    ds = np.arange(*dbound, dtype=np.float32)
    xs = np.linspace(0, iw - 1, fw, dtype=np.float32)
    ys = np.linspace(0, ih - 1, fh, dtype=np.float32)
    d, y, x = np.meshgrid(ds, ys, xs, indexing="ij")
    return np.stack([x, y, d], -1).astype(np.float32)


def get_geometry(frustum, camera2lidar, cam2img, img_aug_matrix):
    """``(N, D, fH, fW, 3)`` lidar-frame points of the frustum for ``N`` cameras (4x4 matrices each)."""
    camera2lidar, cam2img, aug = (np.asarray(m, np.float32).reshape(-1, 4, 4) for m in
                                  (camera2lidar, cam2img, img_aug_matrix))
    post_rots_inv = np.linalg.inv(aug)[:, :3, :3]
    post_trans = aug[:, :3, 3]
    intrins_inv = np.linalg.inv(cam2img)[:, :3, :3]
    pts = frustum[None] - post_trans[:, None, None, None]
    pts = np.einsum("nij,ndhwj->ndhwi", post_rots_inv, pts)
    pts = np.concatenate([pts[..., :2] * pts[..., 2:3], pts[..., 2:3]], -1)
    combine = camera2lidar[:, :3, :3] @ intrins_inv
    pts = np.einsum("nij,ndhwj->ndhwi", combine, pts) + camera2lidar[:, None, None, None, :3, 3]
    return pts.astype(np.float32)


def bev_pool_aux(geom, xbound, ybound, zbound, rank_strides="awml"):
    """``geom (N, D, fH, fW, 3)`` -> ``geom_feats (P, 4)`` int32 ``[x, y, z, b]`` sorted by rank, ``kept (N*D*fH*fW,)``
    bool, ``ranks (P,)`` int64 sorted, ``indices (P,)`` int64 (the stable argsort, as Autoware's ``std::sort`` of
    ``(rank, index)`` pairs)."""
    if rank_strides not in ("awml", "grid"):
        raise ValueError(f"rank_strides must be 'awml' or 'grid', got {rank_strides!r}")
    _, d, _, w, c = geom.shape
    dx = np.array([b[2] for b in (xbound, ybound, zbound)], np.float32)
    bx = np.array([b[0] + b[2] / 2.0 for b in (xbound, ybound, zbound)], np.float32)
    nx = grid_shape(xbound, ybound, zbound)
    cells = ((geom.reshape(-1, 3) - (bx - dx / 2.0)) / dx).astype(np.int64)  # truncation, as .long() / cast
    kept = ((cells >= 0) & (cells < np.array(nx))).all(1)
    cells = cells[kept]
    if rank_strides == "awml":
        ranks = cells[:, 0] * (w * d) + cells[:, 1] * d + cells[:, 2]
    else:
        ranks = (cells[:, 0] * nx[1] + cells[:, 1]) * nx[2] + cells[:, 2]
    indices = np.argsort(ranks, kind="stable")
    geom_feats = np.concatenate([cells, np.zeros((len(cells), 1), np.int64)], 1)[indices].astype(np.int32)
    return geom_feats, kept, ranks[indices].astype(np.int64), indices.astype(np.int64)


def ranks_unique(geom_feats, ranks):
    """Whether every rank names one BEV cell (no two cells merged by QuickCumsumCuda)."""
    if len(ranks) == 0:
        return True
    cells = np.unique(np.concatenate([ranks[:, None], geom_feats.astype(np.int64)], 1), axis=0)
    return len(np.unique(cells[:, 0])) == len(cells)


def precompute(lidar2camera, cam2img, img_aug_matrix, image_size, feature_size, xbound, ybound, zbound, dbound,
               rank_strides="awml"):
    """Everything the main body takes from the calibration: ``lidar2image (N, 4, 4)``, ``img_aug_matrix``,
    ``geom_feats``, ``kept``, ``ranks``, ``indices`` (dtypes as Autoware feeds them: float32, int32, bool, int64)."""
    lidar2camera = np.asarray(lidar2camera, np.float64).reshape(-1, 4, 4)
    cam2img = np.asarray(cam2img, np.float64).reshape(-1, 4, 4)
    aug = np.asarray(img_aug_matrix, np.float64).reshape(-1, 4, 4)
    if not (len(lidar2camera) == len(cam2img) == len(aug)):
        raise ValueError(f"lidar2camera, cam2img and img_aug_matrix must list the same cameras, got "
                         f"{len(lidar2camera)}, {len(cam2img)}, {len(aug)}")
    geom = get_geometry(create_frustum(image_size, feature_size, dbound), np.linalg.inv(lidar2camera), cam2img, aug)
    geom_feats, kept, ranks, indices = bev_pool_aux(geom, xbound, ybound, zbound, rank_strides)
    return {"lidar2image": (cam2img @ lidar2camera).astype(np.float32), "img_aug_matrix": aug.astype(np.float32),
            "geom_feats": geom_feats, "kept": kept, "ranks": ranks, "indices": indices}
