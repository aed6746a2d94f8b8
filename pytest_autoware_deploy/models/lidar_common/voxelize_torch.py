"""``voxelize``, ``pillar_features`` and ``scatter`` of ``voxelize.py`` in PyTorch, on any device.

What Autoware's ``generateVoxels`` / ``generateFeatures`` / ``scatterFeatures`` CUDA kernels do, so a
pipeline on a GPU keeps the sweep on the device instead of spending tens of ms in numpy. The results
are bit-identical to the numpy reference (same voxels in the same order, same points kept, same float32
maths in the same order), which the tests check on real sweeps and generated clouds:

- the voxel order is mmcv's deterministic hard voxelization: a stable sort of the points by voxel id
  keeps each voxel's points in point order, so the first ``max_points`` are kept and a voxel's first
  point (the segment's head) orders the voxels; only the first ``max_voxels`` survive;
- the pillar mean sums the points sequentially (torch's own ``sum`` reduces in another order and
  differs in the last bit);
- the distance feature takes its square root in float64 (correctly rounded, as numpy's float32 one);
- nothing here uses atomics, so the GPU result does not depend on scheduling.
"""

from __future__ import annotations

import torch

from .voxelize import grid_shape


def voxelize_torch(points: torch.Tensor, voxel_size, point_cloud_range, max_points, max_voxels):
    """``voxelize`` for a ``(N, C)`` tensor; the outputs live on the points' device.

    Returns ``voxels (V, max_points, C)`` float32, ``num_points (V,)`` int32, ``coors (V, 4)`` int32
    as [batch 0, z, y, x]."""
    points = points.to(torch.float32)
    dev, num_feats = points.device, points.shape[1]
    pcr = torch.tensor([float(v) for v in point_cloud_range], dtype=torch.float32, device=dev)
    vs = torch.tensor([float(v) for v in voxel_size], dtype=torch.float32, device=dev)
    nx, ny, nz = grid_shape(point_cloud_range, voxel_size)
    cell = torch.floor((points[:, :3] - pcr[:3]) / vs)
    grid = torch.tensor([nx, ny, nz], dtype=torch.float32, device=dev)
    inside = ((cell >= 0) & (cell < grid)).all(dim=1)
    points, idx = points[inside], cell[inside].to(torch.int64)
    n = points.shape[0]
    if n == 0:
        return (torch.zeros((0, max_points, num_feats), dtype=torch.float32, device=dev),
                torch.zeros((0,), dtype=torch.int32, device=dev), torch.zeros((0, 4), dtype=torch.int32, device=dev))
    lin = (idx[:, 2] * ny + idx[:, 1]) * nx + idx[:, 0]
    sorted_lin, perm = torch.sort(lin, stable=True)  # stable: a voxel's points stay in point order
    head = torch.ones(n, dtype=torch.bool, device=dev)
    head[1:] = sorted_lin[1:] != sorted_lin[:-1]
    seg_start = torch.nonzero(head).squeeze(1)  # sorted position where each voxel's points begin
    seg_id = torch.cumsum(head, 0) - 1  # voxel (in id order) of each sorted point
    first = perm[seg_start]  # each voxel's first point
    order = torch.argsort(first)[:max_voxels]  # voxels by first appearance (no ties: point indices differ)
    rank_of = torch.full((len(seg_start),), -1, dtype=torch.int64, device=dev)
    rank_of[order] = torch.arange(len(order), device=dev)
    slot = torch.arange(n, device=dev) - seg_start[seg_id]  # position of the point inside its voxel
    vox = rank_of[seg_id]
    keep = (vox >= 0) & (slot < max_points)
    voxels = torch.zeros((len(order), max_points, num_feats), dtype=torch.float32, device=dev)
    voxels[vox[keep], slot[keep]] = points[perm[keep]]
    seg_len = torch.diff(seg_start, append=torch.tensor([n], device=dev))
    num_points = seg_len[order].clamp(max=max_points).to(torch.int32)
    first_idx = idx[first[order]]
    coors = torch.zeros((len(order), 4), dtype=torch.int32, device=dev)
    coors[:, 1], coors[:, 2], coors[:, 3] = first_idx[:, 2], first_idx[:, 1], first_idx[:, 0]
    return voxels, num_points, coors


def pillar_features_torch(voxels, num_points, coors, voxel_size, point_cloud_range, with_cluster_center=True,
                          with_voxel_center=True, with_distance=False, voxel_center_dims=3):
    """``pillar_features`` for tensors: ``(V, M, C + 3 + 3)`` (``C + 3 + 2`` with ``voxel_center_dims=2``)
    float32 on the voxels' device."""
    vx, vy, vz = (float(v) for v in voxel_size)
    xo, yo, zo = vx / 2 + point_cloud_range[0], vy / 2 + point_cloud_range[1], vz / 2 + point_cloud_range[2]
    feats = [voxels]
    xyz = voxels[:, :, :3]
    if with_cluster_center:
        n = num_points.clamp(min=1).to(torch.float32).view(-1, 1, 1)
        total = xyz[:, 0] if voxels.shape[1] else voxels.new_zeros((len(voxels), 3))
        for j in range(1, voxels.shape[1]):  # numpy's order (voxelize.pillar_features), bit for bit
            total = total + xyz[:, j]
        feats.append(xyz - total.unsqueeze(1) / n)
    if with_voxel_center:
        c = coors.to(torch.float32)
        centre = torch.stack([c[:, 3] * vx + xo, c[:, 2] * vy + yo, c[:, 1] * vz + zo], -1).unsqueeze(1)
        feats.append(xyz[..., :voxel_center_dims] - centre[..., :voxel_center_dims])
    if with_distance:
        sq = xyz[..., 0:1] * xyz[..., 0:1] + xyz[..., 1:2] * xyz[..., 1:2] + xyz[..., 2:3] * xyz[..., 2:3]
        # torch's float32 sqrt on the CPU is not correctly rounded (numpy's is); in float64 it is
        feats.append(torch.sqrt(sq.double()).to(torch.float32))
    out = torch.cat(feats, dim=2)
    mask = torch.arange(voxels.shape[1], device=voxels.device).view(1, -1) < num_points.view(-1, 1)
    return out * mask.unsqueeze(-1).to(out.dtype)


def scatter_torch(pillar_feats, coors, nx, ny):
    """``scatter`` for tensors: ``(V, C)`` (or ``(V, 1, C)``) onto a ``(1, C, ny, nx)`` canvas on their device."""
    feats = pillar_feats.to(torch.float32).reshape(len(coors), pillar_feats.shape[-1])
    canvas = torch.zeros((feats.shape[1], ny * nx), dtype=torch.float32, device=feats.device)
    canvas[:, coors[:, 2].to(torch.int64) * nx + coors[:, 3].to(torch.int64)] = feats.t()
    return canvas.view(1, feats.shape[1], ny, nx)
