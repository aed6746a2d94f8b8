"""BEVFusion's camera-to-BEV layers with AWML's parameter names: ``DepthLSSTransform`` and ``ConvFuser``.

``DepthLSSTransform`` (AWML ``depth_lss.py``): a sparse depth image from lidar points projected into each camera
(``dtransform``: 1 -> 8 -> 32 -> 64 channels, stride 4 * ``lidar_depth_image_last_stride``), concatenated with the
image features, ``depthnet`` (two 3x3 conv-BN-ReLU, then 1x1 to ``D + C``), a softmax over the ``D`` depth bins
times the ``C`` context channels (lift), BEV pooling of the frustum with the host-precomputed ``geom_feats, kept,
ranks, indices`` (``bev_pool.py``; splat), then ``downsample`` (three 3x3 conv-BN-ReLU, the middle one strided).
In AWML's ONNX main body the depth image is made from the *voxel centroids* (``voxels.sum(1) / num_points``), not
the raw points, and the projection scatter has duplicate indices (the last write wins), as AWML notes.
``ConvFuser``: concatenation of the camera and lidar BEV maps, 3x3 conv, BN, ReLU (``fusion_layer.0/1/2``).
"""

from __future__ import annotations

import torch
from torch import nn

from .bev_pool import bev_pool_precomputed
from .camera_geometry import grid_shape


def _cbr(cin, cout, k, stride=1, padding=0, bias=True):
    return [nn.Conv2d(cin, cout, k, stride=stride, padding=padding, bias=bias), nn.BatchNorm2d(cout), nn.ReLU(True)]


class LidarDepthImageNet(nn.Module):
    def __init__(self, in_channels=1, out_channels=64, last_stride=2):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.net = nn.Sequential(*_cbr(in_channels, 8, 1), *_cbr(8, 32, 5, 4, 2),
                                 *_cbr(32, out_channels, 5, last_stride, 2))

    def forward(self, x):
        return self.net(x)


class DepthLSSNet(nn.Module):
    def __init__(self, in_channels, out_channels):
        super().__init__()
        self.net = nn.Sequential(*_cbr(in_channels, in_channels, 3, padding=1),
                                 *_cbr(in_channels, in_channels, 3, padding=1), nn.Conv2d(in_channels, out_channels, 1))

    def forward(self, x):
        return self.net(x)


class DownSampleNet(nn.Module):
    def __init__(self, downsample, in_channels, out_channels):
        super().__init__()
        if downsample not in (1, 2):
            raise ValueError(f"DownSampleNet: downsample must be 1 or 2 (AWML), got {downsample}")
        self.net = nn.Identity() if downsample == 1 else nn.Sequential(
            *_cbr(in_channels, out_channels, 3, padding=1, bias=False),
            *_cbr(in_channels, out_channels, 3, stride=2, padding=1, bias=False),
            *_cbr(in_channels, out_channels, 3, padding=1, bias=False))

    def forward(self, x):
        return self.net(x)


def lidar_depth_image(points, lidar2image, img_aug_matrix, image_size):
    """AWML's sparse depth image: ``points (P, >=3)`` lidar frame, ``lidar2image``/``img_aug_matrix (N, 4, 4)`` ->
    ``(1, N, 1, H, W)`` holding the depth of the point that lands on each pixel (0 elsewhere)."""
    ih, iw = int(image_size[0]), int(image_size[1])
    n = lidar2image.shape[0]
    xyz = points[:, :3].transpose(1, 0)  # (3, P)
    coords = lidar2image[:, :3, :3].matmul(xyz) + lidar2image[:, :3, 3].reshape(-1, 3, 1)  # (N, 3, P)
    dist = coords[:, 2, :]
    valid = dist > 0
    z = torch.clamp(coords[:, 2:3, :], 1e-5, 1e5)
    coords = torch.cat([coords[:, :2, :] / z, z], 1)
    coords = img_aug_matrix[:, :3, :3].matmul(coords) + img_aug_matrix[:, :3, 3].reshape(-1, 3, 1)
    rc = coords[:, :2, :].transpose(1, 2)[..., [1, 0]]  # (N, P, 2) as (row, col)
    on_img = (rc[..., 0] < ih) & (rc[..., 0] >= 0) & (rc[..., 1] < iw) & (rc[..., 1] >= 0) & valid
    hit = torch.nonzero(on_img)
    cam, pt = hit[:, 0], hit[:, 1]
    px = rc[cam, pt].long()
    flat = cam * (ih * iw) + px[:, 0] * iw + px[:, 1]
    depth = torch.zeros(n * ih * iw, dtype=points.dtype, device=points.device)
    depth = depth.scatter(0, flat, dist[cam, pt])
    return depth.view(1, n, 1, ih, iw)


class DepthLSSTransform(nn.Module):
    """AWML's ``DepthLSSTransform`` (inference with precomputed geometry)."""

    def __init__(self, in_channels, out_channels, image_size, feature_size, xbound, ybound, zbound, dbound,
                 downsample=1, lidar_depth_image_last_stride=2):
        super().__init__()
        self.in_channels, self.C = in_channels, out_channels
        self.image_size, self.feature_size = [int(v) for v in image_size], [int(v) for v in feature_size]
        self.xbound, self.ybound, self.zbound, self.dbound = (list(b) for b in (xbound, ybound, zbound, dbound))
        self.nx = grid_shape(xbound, ybound, zbound)
        self.D = len(torch.arange(*dbound))
        self.dtransform = LidarDepthImageNet(1, 64, lidar_depth_image_last_stride)
        self.depthnet = DepthLSSNet(in_channels + self.dtransform.out_channels, self.D + self.C)
        self.downsample = DownSampleNet(downsample, out_channels, out_channels)

    def get_cam_feats(self, x, d):
        b, n, c, fh, fw = x.shape
        x = x.view(b * n, c, fh, fw)
        d = self.dtransform(d.view(b * n, *d.shape[2:]))
        x = self.depthnet(torch.cat([d, x], dim=1))
        depth = x[:, :self.D].softmax(dim=1)
        x = depth.unsqueeze(1) * x[:, self.D:self.D + self.C].unsqueeze(2)
        return x.view(b, n, self.C, self.D, fh, fw).permute(0, 1, 3, 4, 5, 2)

    def forward(self, img, points, lidar2image, img_aug_matrix, geom_feats, kept, ranks, indices):
        """``img (1, N, C, fH, fW)`` image features -> camera BEV ``(1, C', nx, ny)`` (after ``downsample``)."""
        depth = lidar_depth_image(points, lidar2image, img_aug_matrix, self.image_size)
        x = self.get_cam_feats(img, depth)
        x = bev_pool_precomputed(x, geom_feats, kept, ranks, indices, self.nx)
        return self.downsample(x)


class ConvFuser(nn.Sequential):
    """AWML/mit-han-lab ``ConvFuser``: ``cat(inputs, 1)`` -> 3x3 conv (no bias) -> BN -> ReLU."""

    def __init__(self, in_channels, out_channels):
        super().__init__(nn.Conv2d(sum(in_channels), out_channels, 3, padding=1, bias=False),
                         nn.BatchNorm2d(out_channels), nn.ReLU(True))
        self.in_channels, self.out_channels = list(in_channels), out_channels

    def forward(self, inputs):
        return super().forward(torch.cat(list(inputs), dim=1))
