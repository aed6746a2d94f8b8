"""CenterPoint (pillars) in plain PyTorch with mmdet3d's parameter names (AWML checkpoints load strictly).

``CenterPoint`` holds ``pts_voxel_encoder`` (PillarFeatureNet), ``pts_backbone`` (SECOND, or AWML's
ConvNeXt_PC when ``convnext=`` gives its keyword arguments: CenterPoint-ConvNeXtPC), ``pts_neck``
(SECONDFPN) and ``pts_bbox_head`` (CenterHead, one task), as mmdet3d's detector does.
``pts_backbone_neck_head`` is AWML's ``CenterPointHeadONNX``: backbone + neck + head as one module
whose outputs are the six raw head maps in Autoware's order. It is a property, so the state dict keeps
mmdet3d's names (no duplicated ``pts_backbone_neck_head.*`` keys).
"""

from __future__ import annotations

import torch
from torch import nn

from ..lidar_common.layers import SECOND, SECONDFPN, ConvModule, PillarFeatureNet, SeparateHead
from .convnext_pc import ConvNeXtPC

OUTPUT_NAMES = ("heatmap", "reg", "height", "dim", "rot", "vel")


class CenterHead(nn.Module):
    """Shared 3x3 conv then one SeparateHead per task (AWML: a single task over all classes)."""

    def __init__(self, in_channels, num_classes, share_conv_channel=64, head_conv=64, init_bias=-2.19,
                 common_heads=None):
        super().__init__()
        common = common_heads or dict(reg=(2, 2), height=(1, 2), dim=(3, 2), rot=(2, 2), vel=(2, 2))
        heads = {"heatmap": (num_classes, 2), **{k: tuple(v) for k, v in common.items()}}
        self.shared_conv = ConvModule(in_channels, share_conv_channel, 3, padding=1)
        self.task_heads = nn.ModuleList([SeparateHead(share_conv_channel, heads, head_conv, init_bias=init_bias)])

    def forward(self, feats):
        out = self.task_heads[0](self.shared_conv(feats[0]))
        return tuple(out[name] for name in OUTPUT_NAMES)


class CenterPointHeadONNX(nn.Module):
    """The second ONNX stage: ``spatial_features (B, C, ny, nx)`` -> heatmap, reg, height, dim, rot, vel."""

    def __init__(self, backbone, neck, bbox_head):
        super().__init__()
        self.backbone, self.neck, self.bbox_head = backbone, neck, bbox_head

    def forward(self, spatial_features):
        return self.bbox_head(self.neck(self.backbone(spatial_features)))


class CenterPoint(nn.Module):
    def __init__(self, num_classes=5, in_channels=4, pfn_channels=(32, 32), voxel_size=(0.24, 0.24, 8.0),
                 point_cloud_range=(-122.4, -122.4, -3.0, 122.4, 122.4, 5.0), backbone_channels=(64, 128, 256),
                 layer_nums=(3, 5, 5), layer_strides=(1, 2, 2), neck_channels=(128, 128, 128),
                 upsample_strides=(0.5, 1, 2), share_conv_channel=64, init_bias=-4.595, convnext=None,
                 voxel_center_dims=3):
        super().__init__()
        self.pts_voxel_encoder = PillarFeatureNet(in_channels, pfn_channels, voxel_size, point_cloud_range,
                                                  voxel_center_dims=voxel_center_dims)
        if convnext is None:
            self.pts_backbone = SECOND(pfn_channels[-1], backbone_channels, layer_nums, layer_strides)
        else:  # CenterPoint-ConvNeXtPC: AWML's ConvNeXt_PC backbone (convnext = its keyword arguments)
            self.pts_backbone = ConvNeXtPC(pfn_channels[-1], **convnext)
            backbone_channels = self.pts_backbone.out_channels
        self.pts_neck = SECONDFPN(backbone_channels, neck_channels, upsample_strides)
        self.pts_bbox_head = CenterHead(sum(neck_channels), num_classes, share_conv_channel, share_conv_channel,
                                        init_bias)

    @property
    def pts_backbone_neck_head(self) -> CenterPointHeadONNX:
        wrapper = CenterPointHeadONNX(self.pts_backbone, self.pts_neck, self.pts_bbox_head)
        wrapper.training = self.training  # a fresh module says True: export's mode restore would train the parts
        return wrapper

    def forward(self, input_features, coors_unused=None):
        raise RuntimeError("CenterPoint runs as two stages: pts_voxel_encoder, then the host scatter, then "
                           "pts_backbone_neck_head (see pipeline.CenterPointPipeline)")


def build_model(**kwargs):
    """The families' ``model.builder``; kwargs as ``CenterPoint``'s (defaults: AWML's 121 m base config)."""
    torch.manual_seed(0)
    return CenterPoint(**kwargs).eval()
