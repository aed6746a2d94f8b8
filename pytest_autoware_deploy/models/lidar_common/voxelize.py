"""Host-side pre-processing around the pillar encoder, as Autoware's lidar_centerpoint runs it.

``voxelize``: mmcv's hard voxelization (deterministic mode): points in range go to their pillar,
pillars in order of their first point, at most ``max_points`` points per pillar and ``max_voxels``
pillars (later ones dropped). ``pillar_features``: PillarFeatureNet's decoration (raw features,
offset from the pillar's point mean, offset from the pillar centre; padding zeroed), what AWML's
``PillarFeatureNetONNX.get_input_features`` computes before export and Autoware's
``generateFeatures`` kernel computes on the GPU. ``scatter``: PointPillarsScatter onto the BEV canvas.

This is the CPU reference; ``voxelize_torch.py`` is the same on a GPU, bit for bit (sums are written as
sequential loops here and there so that both add in one defined order).
"""

from __future__ import annotations

import numpy as np


def grid_shape(point_cloud_range, voxel_size):
    """(nx, ny, nz) of the voxel grid."""
    pcr, vs = np.asarray(point_cloud_range, np.float64), np.asarray(voxel_size, np.float64)
    return tuple(int(v) for v in np.round((pcr[3:] - pcr[:3]) / vs))


def voxelize(points, voxel_size, point_cloud_range, max_points, max_voxels):
    """Returns ``voxels (V, max_points, C)``, ``num_points (V,)`` int32, ``coors (V, 4)`` int32 as
    [batch 0, z, y, x] (mmdet3d's order)."""
    points = np.asarray(points, np.float32)
    pcr = np.asarray(point_cloud_range, np.float32)
    vs = np.asarray(voxel_size, np.float32)
    nx, ny, nz = grid_shape(point_cloud_range, voxel_size)
    cell = np.floor((points[:, :3] - pcr[:3]) / vs)
    # range test on the float cells: NaN and huge coordinates fall out before any int cast
    inside = np.all((cell >= 0) & (cell < np.array([nx, ny, nz], np.float32)), axis=1)
    points, idx = points[inside], cell[inside].astype(np.int64)
    lin = (idx[:, 2] * ny + idx[:, 1]) * nx + idx[:, 0]
    uniq, first, inverse = np.unique(lin, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")[:max_voxels]  # voxel ids by first appearance
    rank_of = np.full(len(uniq), -1, np.int64)
    rank_of[order] = np.arange(len(order))
    vox = rank_of[inverse]
    # position of each point inside its voxel (points keep their order)
    by_vox = np.argsort(vox, kind="stable")
    sorted_vox = vox[by_vox]
    starts = np.searchsorted(sorted_vox, sorted_vox, side="left")
    slot = np.empty(len(vox), np.int64)
    slot[by_vox] = np.arange(len(vox)) - starts
    keep = (vox >= 0) & (slot < max_points)
    voxels = np.zeros((len(order), max_points, points.shape[1]), np.float32)
    voxels[vox[keep], slot[keep]] = points[keep]
    num_points = np.bincount(vox[keep], minlength=len(order)).astype(np.int32)
    first_idx = idx[first[order]]
    coors = np.zeros((len(order), 4), np.int32)
    coors[:, 1], coors[:, 2], coors[:, 3] = first_idx[:, 2], first_idx[:, 1], first_idx[:, 0]
    return voxels, num_points, coors


def pillar_features(voxels, num_points, coors, voxel_size, point_cloud_range, with_cluster_center=True,
                    with_voxel_center=True, with_distance=False, voxel_center_dims=3):
    """PillarFeatureNet's input decoration (mmdet3d, ``legacy=False``): ``(V, M, C + 3 + 3)`` float32.
    ``voxel_center_dims=2``: AWML's BackwardPillarFeatureNet, offsets from the pillar centre in x, y only
    (``C + 3 + 2``)."""
    vx, vy, vz = (float(v) for v in voxel_size)
    xo, yo, zo = vx / 2 + point_cloud_range[0], vy / 2 + point_cloud_range[1], vz / 2 + point_cloud_range[2]
    feats = [voxels]
    n = np.maximum(num_points, 1).astype(np.float32)[:, None, None]
    if with_cluster_center:
        total = voxels[:, 0, :3] if voxels.shape[1] else np.zeros((len(voxels), 3), np.float32)
        for j in range(1, voxels.shape[1]):  # a fixed, sequential order: voxelize_torch sums the same way
            total = total + voxels[:, j, :3]
        mean = total[:, None, :] / n
        feats.append(voxels[:, :, :3] - mean)
    if with_voxel_center:
        c = coors.astype(np.float32)
        centre = np.stack([c[:, 3] * vx + xo, c[:, 2] * vy + yo, c[:, 1] * vz + zo], -1)[:, None, :voxel_center_dims]
        feats.append(voxels[:, :, :voxel_center_dims] - centre)
    if with_distance:
        x, y, z = (voxels[:, :, i:i + 1] for i in range(3))
        feats.append(np.sqrt(x * x + y * y + z * z))  # spelled out: the torch twin adds in the same order
    out = np.concatenate(feats, axis=2).astype(np.float32)
    mask = np.arange(voxels.shape[1])[None, :] < num_points[:, None]
    return out * mask[:, :, None]


def scatter(pillar_feats, coors, nx, ny):
    """PointPillarsScatter: ``(V, C)`` pillar features onto a ``(1, C, ny, nx)`` canvas."""
    feats = np.asarray(pillar_feats, np.float32)
    feats = feats.reshape(len(coors), feats.shape[-1])
    canvas = np.zeros((feats.shape[1], ny * nx), np.float32)
    canvas[:, coors[:, 2].astype(np.int64) * nx + coors[:, 3]] = feats.T
    return canvas.reshape(1, feats.shape[1], ny, nx)
