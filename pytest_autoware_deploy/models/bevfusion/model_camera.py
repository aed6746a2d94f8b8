"""BEVFusion camera+lidar (AWML ``projects/BEVFusion`` BEVFusion-CL) in plain PyTorch with AWML's parameter names.

``BEVFusionCameraLidar`` is the lidar-only ``BEVFusion`` (``pts_*``, ``bbox_head``) plus ``img_backbone``
(mmdet Swin, ``models/swin``), ``img_neck`` (GeneralizedLSSFPN), ``view_transform`` (``DepthLSSTransform``)
and ``fusion_layer`` (``ConvFuser``: camera BEV then lidar BEV). Deployed as two graphs, as AWML exports them
and Autoware's ``autoware_bevfusion`` runs them:

- ``image_backbone`` (AWML ``TrtBevFusionImageBackboneContainer``): ``imgs`` uint8 ``(N, 3, H, W)`` ->
  normalisation -> Swin -> neck level 0 -> ``image_feats (N, C, H/8, W/8)``;
- ``main_body`` (``TrtBevFusionMainContainer`` with images): ``voxels, coors, num_points_per_voxel`` (as the lidar
  variant), ``lidar2image (N, 4, 4)``, ``img_aug_matrix (N, 4, 4)``, ``geom_feats (P, 4)`` int32, ``kept
  (N*D*fH*fW,)`` bool, ``ranks (P,)`` int64, ``indices (P,)`` int64 (host-precomputed once per calibration,
  ``camera_geometry.precompute``) and ``image_feats`` -> ``bbox_pred, score, label_pred``. The depth image is
  made from the voxel centroids (AWML: "using only the centroids"); BEV pooling is ``autoware::QuickCumsumCuda``.
"""

from __future__ import annotations

import torch
from torch import nn

from ..swin.model import GeneralizedLSSFPN, SwinImageBackbone, SwinTransformer, init_weights
from .camera import ConvFuser, DepthLSSTransform
from .model import OUTPUT_NAMES, BEVFusion, BEVFusionMainBody

CAMERA_INPUT_NAMES = ("voxels", "coors", "num_points_per_voxel", "lidar2image", "img_aug_matrix", "geom_feats",
                      "kept", "ranks", "indices", "image_feats")
IMAGE_INPUT_NAMES, IMAGE_OUTPUT_NAMES = ("imgs",), ("image_feats",)
__all__ = ["BEVFusionCameraLidar", "CAMERA_INPUT_NAMES", "OUTPUT_NAMES", "build_model"]


class BEVFusionCameraLidarMainBody(BEVFusionMainBody):
    """The deployed main body with images (AWML ``TrtBevFusionMainContainer``, ``points=None``)."""

    def bev(self, voxels, coors, num_points_per_voxel, lidar2image, img_aug_matrix, geom_feats, kept, ranks, indices,
            image_feats):
        """The fused BEV features after ``pts_neck`` (what the head reads; training uses it directly)."""
        m = self.mod
        centroids = voxels.sum(dim=1) / num_points_per_voxel.to(voxels.dtype).clamp(min=1).view(-1, 1)
        img_bev = m.view_transform(image_feats.unsqueeze(0), centroids, lidar2image, img_aug_matrix, geom_feats,
                                   kept, ranks, indices)
        xyz = coors.flip(dims=[-1])
        coors4 = torch.cat([torch.zeros_like(xyz[:, :1]), xyz], dim=1)
        pts_bev = m.pts_middle_encoder(centroids, coors4, 1)
        x = m.fusion_layer([img_bev, pts_bev])
        return m.pts_neck(m.pts_backbone(x))

    def forward(self, voxels, coors, num_points_per_voxel, lidar2image, img_aug_matrix, geom_feats, kept, ranks,
                indices, image_feats):
        """-> ``bbox_pred (10, K)``, ``score (K,)``, ``label_pred (K,)``."""
        return self.mod.bbox_head(self.bev(voxels, coors, num_points_per_voxel, lidar2image, img_aug_matrix,
                                           geom_feats, kept, ranks, indices, image_feats))


class BEVFusionCameraLidar(BEVFusion):
    def __init__(self, image_size=(384, 768), feature_size=None, embed_dims=96, depths=(2, 2, 6, 2),
                 swin_num_heads=(3, 6, 12, 24), window_size=7, img_neck_channels=256, vtransform_channels=80,
                 xbound=(-122.4, 122.4, 0.68), ybound=(-122.4, 122.4, 0.68), zbound=(-10.0, 10.0, 20.0),
                 dbound=(1.0, 166.2, 1.4), vtransform_downsample=2, fuser_channels=256, **kwargs):
        output_channels = kwargs.get("output_channels", 128)
        sparse_shape = kwargs.get("sparse_shape", (1440, 1440, 41))
        encoder_paddings = kwargs.get("encoder_paddings", ((0, 0, 1), (0, 0, 1), (0, 0, (1, 1, 0)), (0, 0)))
        encoder_channels = kwargs.get("encoder_channels", ((16, 16, 32), (32, 32, 64), (64, 64, 128), (128, 128)))
        lidar_channels = self.bev_channels(sparse_shape, output_channels, encoder_paddings, len(encoder_channels))
        super().__init__(backbone_in_channels=fuser_channels, **kwargs)
        image_size = [int(v) for v in image_size]
        feature_size = list(feature_size) if feature_size else [image_size[0] // 8, image_size[1] // 8]
        self.img_backbone = SwinTransformer(3, embed_dims, 4, window_size, 4, tuple(depths), tuple(swin_num_heads),
                                            (1, 2, 3))
        in_channels = [self.img_backbone.num_features[i] for i in (1, 2, 3)]
        self.img_neck = GeneralizedLSSFPN(in_channels, img_neck_channels, num_outs=3)
        init_weights(self.img_backbone)
        self.view_transform = DepthLSSTransform(img_neck_channels, vtransform_channels, image_size, feature_size,
                                                xbound, ybound, zbound, dbound, vtransform_downsample)
        bev = [self.view_transform.nx[0] // vtransform_downsample, self.view_transform.nx[1] // vtransform_downsample]
        lidar_bev = [int(sparse_shape[0]) // self.out_size_factor, int(sparse_shape[1]) // self.out_size_factor]
        if bev != lidar_bev:
            raise ValueError(f"camera BEV grid {bev} (xbound/ybound over vtransform_downsample "
                             f"{vtransform_downsample}) must equal the lidar BEV grid {lidar_bev} (sparse_shape over "
                             f"out_size_factor {self.out_size_factor}) for the ConvFuser")
        self.fusion_layer = ConvFuser([vtransform_channels * self.view_transform.nx[2], lidar_channels],
                                      fuser_channels)

    def geometry_kwargs(self):
        """The keyword arguments ``camera_geometry.precompute`` needs besides the calibration."""
        vt = self.view_transform
        return dict(image_size=vt.image_size, feature_size=vt.feature_size, xbound=vt.xbound, ybound=vt.ybound,
                    zbound=vt.zbound, dbound=vt.dbound)

    @property
    def image_backbone(self) -> nn.Module:
        wrapper = SwinImageBackbone(self.img_backbone, self.img_neck)
        wrapper.training = self.training
        return wrapper

    @property
    def main_body(self) -> BEVFusionCameraLidarMainBody:
        wrapper = BEVFusionCameraLidarMainBody(self)
        wrapper.training = self.training
        return wrapper

    def forward(self, imgs, voxels, coors, num_points_per_voxel, lidar2image, img_aug_matrix, geom_feats, kept,
                ranks, indices):
        return self.main_body(voxels, coors, num_points_per_voxel, lidar2image, img_aug_matrix, geom_feats, kept,
                              ranks, indices, self.image_backbone(imgs))


def build_model(**kwargs):
    """The ``bevfusion_camera_lidar`` family's ``model.builder`` (defaults: AWML's BEVFusion-CL, Swin-T,
    384x768 images, 120 m range)."""
    torch.manual_seed(0)
    return BEVFusionCameraLidar(**kwargs).eval()
