"""BEVFusion lidar-only (AWML ``projects/BEVFusion``, BEVFusion-L) in plain PyTorch with mmdet3d/AWML names.

``BEVFusion`` holds ``pts_voxel_encoder`` (HardSimpleVFE: the mean of each voxel's points, AWML's
``voxelize_reduce``), ``pts_middle_encoder`` (``BEVFusionSparseEncoder``: SubMConv3d/SparseConv3d layers
from ``sparse_conv.py``, ``conv_input.0``, ``encoder_layers.encoder_layer1.0.conv1``, ``conv_out.0``; the
grid is ``[x, y, z]``), ``pts_backbone`` (SECOND), ``pts_neck`` (SECONDFPN) and ``bbox_head``
(``BEVFusionHead``: the TransFusion head on an ``(x, y)`` BEV map, top-K proposals over the class heatmap
after a 3x3 local-max for ``dense_heatmap_pooling_classes``). ``main_body`` is the graph AWML's
``TrtBevFusionMainContainer`` exports and Autoware's ``autoware_bevfusion`` runs: ``voxels (M, P, C),
coors (M, 3) [z, y, x], num_points_per_voxel (M,)`` -> ``bbox_pred (10, K)`` (centre 2, height 1, log-size
3, sin/cos 2, velocity 2), ``score (K,)``, ``label_pred (K,)``; a property, so the state dict keeps
AWML's names. Exported with the TorchScript exporter, the sparse convolutions become
``autoware::GetIndicePairsImplicitGemm`` / ``autoware::ImplicitGemm`` nodes (see ``sparse_conv.py``).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from ..lidar_common.layers import SECOND, SECONDFPN
from ..transfusion_lidar.model import TransFusionHead
from .sparse_conv import SparseBasicBlock, SparseConv3d, SparseSequential, SparseTensor, SubMConv3d

OUTPUT_NAMES = ("bbox_pred", "score", "label_pred")
INPUT_NAMES = ("voxels", "coors", "num_points_per_voxel")


def make_sparse_convmodule(in_channels, out_channels, kernel_size, stride=1, padding=0, conv_type="SubMConv3d",
                           indice_key=None, eps=1e-3, momentum=0.01):
    """mmdet3d's ``make_sparse_convmodule`` (order conv, norm, act): ``0`` conv (no bias), ``1`` BN1d, ``2`` ReLU."""
    conv = (SubMConv3d if conv_type == "SubMConv3d" else SparseConv3d)(
        in_channels, out_channels, kernel_size, stride=stride, padding=padding, bias=False, indice_key=indice_key)
    return SparseSequential(conv, nn.BatchNorm1d(out_channels, eps=eps, momentum=momentum), nn.ReLU(inplace=True))


class BEVFusionSparseEncoder(nn.Module):
    """AWML's ``BEVFusionSparseEncoder`` (mmdet3d ``SparseEncoder`` with an ``[x, y, z]`` grid), inference."""

    def __init__(self, in_channels, sparse_shape, base_channels=16, output_channels=128,
                 encoder_channels=((16,), (32, 32, 32), (64, 64, 64), (64, 64, 64)),
                 encoder_paddings=((1,), (1, 1, 1), (1, 1, 1), ((0, 1, 1), 1, 1)), block_type="conv_module",
                 num_aug_features=0, aug_features_min_values=(), aug_features_max_values=()):
        super().__init__()
        if block_type not in ("conv_module", "basicblock"):
            raise ValueError(f"block_type must be 'conv_module' or 'basicblock', got {block_type!r}")
        self.sparse_shape = [int(s) for s in sparse_shape]
        self.num_aug_features = int(num_aug_features)
        self.in_channels = in_channels * num_aug_features * 2 if num_aug_features else in_channels
        self.register_buffer("aug_features_min_values", torch.tensor(list(aug_features_min_values), dtype=torch.float32))
        self.register_buffer("aug_features_max_values", torch.tensor(list(aug_features_max_values), dtype=torch.float32))
        if num_aug_features:
            self.register_buffer("exponents", 2 ** torch.arange(0, num_aug_features).float())
        self.conv_input = make_sparse_convmodule(self.in_channels, base_channels, 3, padding=1, indice_key="subm1")
        layers, c_in = [], base_channels
        for i, blocks in enumerate(encoder_channels):
            block_list = []
            for j, c_out in enumerate(tuple(blocks)):
                padding = tuple(encoder_paddings[i])[j]
                last_of_stage = j == len(blocks) - 1 and i != len(encoder_channels) - 1
                if block_type == "conv_module" and i != 0 and j == 0:
                    block_list.append(make_sparse_convmodule(c_in, c_out, 3, stride=2, padding=padding,
                                                             conv_type="SparseConv3d", indice_key=f"spconv{i + 1}"))
                elif block_type == "basicblock" and last_of_stage:
                    block_list.append(make_sparse_convmodule(c_in, c_out, 3, stride=2, padding=padding,
                                                             conv_type="SparseConv3d", indice_key=f"spconv{i + 1}"))
                elif block_type == "basicblock":
                    block_list.append(SparseBasicBlock(c_out, c_out))
                else:
                    block_list.append(make_sparse_convmodule(c_in, c_out, 3, padding=padding,
                                                             indice_key=f"subm{i + 1}"))
                c_in = c_out
            layers.append((f"encoder_layer{i + 1}", SparseSequential(*block_list)))
        self.encoder_layers = SparseSequential()
        for name, layer in layers:
            self.encoder_layers.add_module(name, layer)
        self.conv_out = make_sparse_convmodule(c_in, output_channels, (1, 1, 3), stride=(1, 1, 2), padding=0,
                                               conv_type="SparseConv3d", indice_key="spconv_down2")

    def forward(self, voxel_features, coors, batch_size=1):
        """``coors (N, 4)`` ``[batch, x, y, z]`` -> BEV ``(B, C * D, X, Y)``."""
        if self.num_aug_features:
            n = voxel_features.shape[0]
            x = (voxel_features - self.aug_features_min_values.view(1, -1)) / (
                self.aug_features_max_values - self.aug_features_min_values).view(1, -1)
            y = (x.reshape(-1, 1) * math.pi * self.exponents.reshape(1, -1)).reshape(n, -1)
            voxel_features = torch.cat([torch.cos(y), torch.sin(y)], dim=1)
        x = SparseTensor(voxel_features, coors.int(), self.sparse_shape, batch_size)
        x = self.conv_input(x)
        for layer in self.encoder_layers:
            x = layer(x)
        dense = self.conv_out(x).dense()  # (B, C, X, Y, Z)
        n, c, h, w, d = dense.shape
        return dense.permute(0, 1, 4, 2, 3).contiguous().view(n, c * d, h, w)


def bev_grid_xy(x_size, y_size):
    """AWML's ``create_2D_grid``: ``(1, X*Y, 2)`` cell centres of the ``(x, y)``-ordered map (flat = x*Y + y)."""
    bx, by = torch.meshgrid(torch.linspace(0, x_size - 1, x_size), torch.linspace(0, y_size - 1, y_size),
                            indexing="ij")
    return torch.cat([(bx + 0.5)[None], (by + 0.5)[None]], 0)[None].view(1, 2, -1).permute(0, 2, 1).contiguous()


class BEVFusionHead(TransFusionHead):
    """AWML's ``BEVFusionHead`` (lidar only, one decoder layer by default): TransFusionHead's layers and names;
    BEV positions on the ``(x, y)`` map; the local-max pooling only for ``pooling_class_indices`` (the others
    keep their heatmap, as AWML's ``dense_heatmap_pooling_classes``); ``query_labels`` returned."""

    def __init__(self, in_channels, num_classes, grid_size, pooling_class_indices=None, **kwargs):
        super().__init__(in_channels, num_classes, grid_size, **kwargs)
        self.register_buffer("bev_pos", bev_grid_xy(grid_size[0], grid_size[1]), persistent=False)
        idx = list(range(num_classes)) if pooling_class_indices is None else [int(i) for i in pooling_class_indices]
        self.pooling_class_indices = idx
        self.exclude_class_indices = [i for i in range(num_classes) if i not in idx]

    def local_max(self, heatmap):
        """Local maxima for ``pooling_class_indices`` only; the other classes keep their whole heatmap."""
        pad = self.nms_kernel_size // 2
        local_max = torch.zeros_like(heatmap)
        if self.pooling_class_indices:
            pooled = F.max_pool2d(heatmap[:, self.pooling_class_indices], self.nms_kernel_size, stride=1, padding=0)
            local_max[:, self.pooling_class_indices, pad:-pad, pad:-pad] = pooled
        if self.exclude_class_indices:
            local_max[:, self.exclude_class_indices] = heatmap[:, self.exclude_class_indices]
        return local_max

    def forward_dict(self, feats):
        res = super().forward_dict(feats)  # its fixed-K TopK is the one AWML's export fixes
        res["query_labels"] = res["top_class"]
        return res

    def forward(self, feats):
        """AWML's ``TrtBevFusionMainContainer.postprocessing``: ``bbox_pred (10, K)``, ``score (K,)``,
        ``label_pred (K,)`` of batch element 0."""
        r = self.forward_dict(feats)
        score = r["heatmap"].sigmoid()
        one_hot = F.one_hot(r["query_labels"], num_classes=score.shape[1]).permute(0, 2, 1)
        score = (score * r["query_heatmap_score"] * one_hot)[0].max(dim=0)[0]
        bbox = torch.cat([r["center"][0], r["height"][0], r["dim"][0], r["rot"][0], r["vel"][0]], dim=0)
        return bbox, score, r["query_labels"][0]


class BEVFusionMainBody(nn.Module):
    """The deployed graph (AWML ``TrtBevFusionMainContainer``, lidar only)."""

    def __init__(self, model):
        super().__init__()
        self.mod = model

    def bev(self, voxels, coors, num_points_per_voxel):
        feats = voxels.sum(dim=1) / num_points_per_voxel.to(voxels.dtype).clamp(min=1).view(-1, 1)  # HardSimpleVFE
        xyz = coors.flip(dims=[-1])  # [z, y, x] -> [x, y, z]
        coors4 = torch.cat([torch.zeros_like(xyz[:, :1]), xyz], dim=1)  # batch 0
        x = self.mod.pts_middle_encoder(feats, coors4, 1)
        return self.mod.pts_neck(self.mod.pts_backbone(x))

    def forward(self, voxels, coors, num_points_per_voxel):
        return self.mod.bbox_head(self.bev(voxels, coors, num_points_per_voxel))


class HardSimpleVFE(nn.Module):
    """mmdet3d's HardSimpleVFE (no parameters): the mean of the voxel's points, done inside ``main_body``."""

    def __init__(self, num_features=5):
        super().__init__()
        self.num_features = num_features


class BEVFusion(nn.Module):
    def __init__(self, num_classes=5, in_channels=5, voxel_size=(0.17, 0.17, 0.2),
                 point_cloud_range=(-122.4, -122.4, -3.0, 122.4, 122.4, 5.0), sparse_shape=(1440, 1440, 41),
                 base_channels=16, output_channels=128,
                 encoder_channels=((16, 16, 32), (32, 32, 64), (64, 64, 128), (128, 128)),
                 encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, (1, 1, 0)), (0, 0)), block_type="basicblock",
                 num_aug_features=0, aug_features_min_values=(), aug_features_max_values=(),
                 backbone_channels=(128, 256), layer_nums=(5, 5), layer_strides=(1, 2), neck_channels=(256, 256),
                 upsample_strides=(1, 2), out_size_factor=8, num_proposals=500, hidden_channel=128, num_heads=8,
                 ffn_channels=256, num_decoder_layers=1, nms_kernel_size=3, pooling_class_indices=None,
                 backbone_in_channels=None):
        super().__init__()
        self.voxel_size, self.point_cloud_range = list(voxel_size), list(point_cloud_range)
        self.out_size_factor = out_size_factor
        self.pts_voxel_encoder = HardSimpleVFE(in_channels)
        self.pts_middle_encoder = BEVFusionSparseEncoder(
            in_channels, sparse_shape, base_channels, output_channels, encoder_channels, encoder_paddings, block_type,
            num_aug_features, aug_features_min_values, aug_features_max_values)
        bev_channels = self.bev_channels(sparse_shape, output_channels, encoder_paddings, len(encoder_channels))
        self.lidar_bev_channels = bev_channels
        # with a fusion layer (camera+lidar) the backbone takes the fuser's channels
        self.pts_backbone = SECOND(backbone_in_channels or bev_channels, backbone_channels, layer_nums, layer_strides)
        self.pts_neck = SECONDFPN(backbone_channels, neck_channels, upsample_strides)
        grid = (sparse_shape[0] // out_size_factor, sparse_shape[1] // out_size_factor)
        self.bbox_head = BEVFusionHead(sum(neck_channels), num_classes, grid, pooling_class_indices,
                                       num_proposals=num_proposals, hidden_channel=hidden_channel,
                                       num_heads=num_heads, ffn_channels=ffn_channels,
                                       num_decoder_layers=num_decoder_layers, nms_kernel_size=nms_kernel_size)

    @staticmethod
    def bev_channels(sparse_shape, output_channels, encoder_paddings, stages):
        """Channels of the BEV map: ``output_channels`` times the z cells left after the strided convs."""
        z = int(sparse_shape[2])
        for i in range(stages - 1):
            pad = tuple(encoder_paddings[i])[-1]
            pad_z = pad[2] if isinstance(pad, (list, tuple)) else pad
            z = (z + 2 * pad_z - 3) // 2 + 1
        z = (z - 3) // 2 + 1
        if z < 1:
            raise ValueError(f"sparse_shape {list(sparse_shape)}: too few z cells for {stages - 1} strided "
                             f"convolutions and conv_out")
        return output_channels * z

    @property
    def main_body(self) -> BEVFusionMainBody:
        wrapper = BEVFusionMainBody(self)
        wrapper.training = self.training  # a fresh module says True: export's mode restore would train the parts
        return wrapper

    def forward(self, voxels, coors, num_points_per_voxel):
        return self.main_body(voxels, coors, num_points_per_voxel)


def build_model(**kwargs):
    """The family's ``model.builder``; kwargs as ``BEVFusion``'s (defaults: AWML's BEVFusion-L 120 m config)."""
    torch.manual_seed(0)
    return BEVFusion(**kwargs).eval()
