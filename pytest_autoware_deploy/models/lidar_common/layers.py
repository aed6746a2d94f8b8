"""mmdet3d's pillar detector building blocks in plain PyTorch, with mmdet3d's parameter names.

``PillarFeatureNet`` (pfn_layers.N.{linear,norm}), ``SECOND`` (blocks.N.M), ``SECONDFPN``
(deblocks.N.{0,1}), ``ConvModule`` ({conv,bn}) and ``SeparateHead`` (<head>.N.{conv,bn} / <head>.K)
are laid out exactly as mmdet3d/mmcv build them, so a state dict trained with AWML loads strictly.
"""

from __future__ import annotations

import torch
from torch import nn


class PFNLayer(nn.Module):
    """Linear + BN1d + ReLU per point, then max over the pillar's points (concatenated back unless last)."""

    def __init__(self, in_channels, out_channels, last_layer=False):
        super().__init__()
        self.last_vfe = last_layer
        if not last_layer:
            out_channels = out_channels // 2
        self.linear = nn.Linear(in_channels, out_channels, bias=False)
        self.norm = nn.BatchNorm1d(out_channels, eps=1e-3, momentum=0.01)

    def forward(self, inputs):
        x = self.linear(inputs)
        x = torch.relu(self.norm(x.permute(0, 2, 1).contiguous()).permute(0, 2, 1).contiguous())
        x_max = torch.max(x, dim=1, keepdim=True)[0]
        if self.last_vfe:
            return x_max
        return torch.cat([x, x_max.repeat(1, inputs.shape[1], 1)], dim=2)


class PillarFeatureNet(nn.Module):
    """The pillar encoder. ``forward(features)`` takes the *decorated* features ``(V, M, C+6)`` and
    returns ``(V, 1, C_out)``: AWML's ``PillarFeatureNetONNX``, the graph Autoware's
    ``pts_voxel_encoder.onnx`` holds. ``decorate`` is the same decoration in torch (for graphs that
    contain it, as TransFusion-L's single ONNX does)."""

    def __init__(self, in_channels=4, feat_channels=(64,), voxel_size=(0.2, 0.2, 8.0),
                 point_cloud_range=(0, -40, -3, 70.4, 40, 1), with_cluster_center=True, with_voxel_center=True,
                 voxel_center_dims=3):
        super().__init__()
        # voxel_center_dims=2: AWML's BackwardPillarFeatureNet (pillar-centre offsets in x, y only)
        self.in_channels = in_channels + 3 * with_cluster_center + voxel_center_dims * with_voxel_center
        self._with_cluster_center, self._with_voxel_center = with_cluster_center, with_voxel_center
        self._voxel_center_dims = voxel_center_dims
        chans = [self.in_channels] + list(feat_channels)
        self.pfn_layers = nn.ModuleList(PFNLayer(chans[i], chans[i + 1], last_layer=i == len(chans) - 2)
                                        for i in range(len(chans) - 1))
        self.vx, self.vy, self.vz = (float(v) for v in voxel_size)
        self.x_offset = self.vx / 2 + point_cloud_range[0]
        self.y_offset = self.vy / 2 + point_cloud_range[1]
        self.z_offset = self.vz / 2 + point_cloud_range[2]

    def decorate(self, features, num_points, coors):
        feats = [features]
        if self._with_cluster_center:
            mean = features[:, :, :3].sum(dim=1, keepdim=True) / num_points.clamp(min=1).to(features.dtype).view(-1, 1, 1)
            feats.append(features[:, :, :3] - mean)
        if self._with_voxel_center:
            c = coors.to(features.dtype)
            centre = torch.stack([c[:, 3] * self.vx + self.x_offset, c[:, 2] * self.vy + self.y_offset,
                                  c[:, 1] * self.vz + self.z_offset], dim=-1).unsqueeze(1)
            dims = self._voxel_center_dims
            feats.append(features[:, :, :dims] - centre[..., :dims])
        out = torch.cat(feats, dim=-1)
        mask = torch.arange(features.shape[1], device=features.device).view(1, -1) < num_points.view(-1, 1)
        return out * mask.unsqueeze(-1).to(out.dtype)

    def forward(self, features):
        for pfn in self.pfn_layers:
            features = pfn(features)
        return features


class SECOND(nn.Module):
    """Backbone: stages of a strided 3x3 conv followed by ``layer_nums[i]`` 3x3 convs (BN, ReLU)."""

    def __init__(self, in_channels=128, out_channels=(128, 128, 256), layer_nums=(3, 5, 5), layer_strides=(2, 2, 2)):
        super().__init__()
        in_filters = [in_channels, *out_channels[:-1]]
        blocks = []
        for i, n in enumerate(layer_nums):
            block = [nn.Conv2d(in_filters[i], out_channels[i], 3, stride=layer_strides[i], padding=1, bias=False),
                     nn.BatchNorm2d(out_channels[i], eps=1e-3, momentum=0.01), nn.ReLU(inplace=True)]
            for _ in range(n):
                block += [nn.Conv2d(out_channels[i], out_channels[i], 3, padding=1, bias=False),
                          nn.BatchNorm2d(out_channels[i], eps=1e-3, momentum=0.01), nn.ReLU(inplace=True)]
            blocks.append(nn.Sequential(*block))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x):
        outs = []
        for block in self.blocks:
            x = block(x)
            outs.append(x)
        return tuple(outs)


class SECONDFPN(nn.Module):
    """Neck: every stage brought to one stride (deconv up, or strided conv down for strides < 1), concatenated."""

    def __init__(self, in_channels=(128, 128, 256), out_channels=(256, 256, 256), upsample_strides=(1, 2, 4),
                 use_conv_for_no_stride=True):
        super().__init__()
        deblocks = []
        for i, out in enumerate(out_channels):
            stride = upsample_strides[i]
            if stride > 1 or (stride == 1 and not use_conv_for_no_stride):
                up = nn.ConvTranspose2d(in_channels[i], out, int(stride), stride=int(stride), bias=False)
            else:
                k = int(round(1 / stride))
                up = nn.Conv2d(in_channels[i], out, k, stride=k, bias=False)
            deblocks.append(nn.Sequential(up, nn.BatchNorm2d(out, eps=1e-3, momentum=0.01), nn.ReLU(inplace=True)))
        self.deblocks = nn.ModuleList(deblocks)

    def forward(self, x):
        ups = [deblock(x[i]) for i, deblock in enumerate(self.deblocks)]
        return [torch.cat(ups, dim=1) if len(ups) > 1 else ups[0]]


class ConvModule(nn.Module):
    """mmcv's ConvModule with a BN norm: conv (no bias, as bias='auto' with a norm), bn, ReLU."""

    def __init__(self, in_channels, out_channels, kernel_size, padding=0, dims=2):
        super().__init__()
        conv, bn = (nn.Conv2d, nn.BatchNorm2d) if dims == 2 else (nn.Conv1d, nn.BatchNorm1d)
        self.conv = conv(in_channels, out_channels, kernel_size, padding=padding, bias=False)
        self.bn = bn(out_channels)

    def forward(self, x):
        return torch.relu(self.bn(self.conv(x)))


class SeparateHead(nn.Module):
    """One small conv tower per output (``heads = {name: (channels, num_conv)}``), mmdet3d's SeparateHead."""

    def __init__(self, in_channels, heads, head_conv=64, final_kernel=1, init_bias=-2.19, dims=2):
        super().__init__()
        self.heads = dict(heads)
        conv = nn.Conv2d if dims == 2 else nn.Conv1d
        for name, (classes, num_conv) in self.heads.items():
            layers, c_in = [], in_channels
            for _ in range(num_conv - 1):
                layers.append(ConvModule(c_in, head_conv, final_kernel, padding=final_kernel // 2, dims=dims))
                c_in = head_conv
            layers.append(conv(c_in, classes, final_kernel, padding=final_kernel // 2, bias=True))
            seq = nn.Sequential(*layers)
            if name == "heatmap":
                nn.init.constant_(seq[-1].bias, init_bias)
            self.add_module(name, seq)

    def forward(self, x):
        return {name: getattr(self, name)(x) for name in self.heads}
