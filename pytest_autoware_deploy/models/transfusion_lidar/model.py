"""TransFusion-L in plain PyTorch with mmdet3d/mmcv parameter names (AWML checkpoints load strictly).

``TransFusion`` holds ``pts_voxel_encoder`` (PillarFeatureNet), ``pts_backbone`` (SECOND), ``pts_neck``
(SECONDFPN) and ``pts_bbox_head`` (TransFusionHead: shared conv, dense class heatmap, top-K local
maxima as queries with a class embedding, ``num_decoder_layers`` transformer decoder layers with
learned position encodings, a SeparateHead of 1x1 Conv1d per query). ``end2end`` is the graph
mmdeploy exports for Autoware's lidar_transfusion (``voxels, num_points, coors`` -> ``cls_score0,
bbox_pred0, dir_cls_pred0``, the scatter inside); a property, so the state dict keeps mmdet3d's names.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..lidar_common.layers import SECOND, SECONDFPN, ConvModule, PillarFeatureNet, SeparateHead

OUTPUT_NAMES = ("cls_score0", "bbox_pred0", "dir_cls_pred0")


class PositionEncodingLearned(nn.Module):
    def __init__(self, input_channel=2, num_pos_feats=128):
        super().__init__()
        self.position_embedding_head = nn.Sequential(
            nn.Conv1d(input_channel, num_pos_feats, 1), nn.BatchNorm1d(num_pos_feats), nn.ReLU(inplace=True),
            nn.Conv1d(num_pos_feats, num_pos_feats, 1))

    def forward(self, xyz):  # (B, P, 2) -> (B, F, P)
        return self.position_embedding_head(xyz.transpose(1, 2).contiguous())


class MultiheadAttention(nn.Module):
    """mmcv's MultiheadAttention: positions added to query and key, residual around ``attn``."""

    def __init__(self, embed_dims, num_heads, dropout=0.1):
        super().__init__()
        self.attn = nn.MultiheadAttention(embed_dims, num_heads, dropout=dropout, batch_first=True)

    def forward(self, query, key, value, query_pos, key_pos):
        return query + self.attn(query + query_pos, key + key_pos, value, need_weights=False)[0]


class FFN(nn.Module):
    def __init__(self, embed_dims, feedforward_channels, dropout=0.1):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Sequential(nn.Linear(embed_dims, feedforward_channels), nn.ReLU(inplace=True), nn.Dropout(dropout)),
            nn.Linear(feedforward_channels, embed_dims), nn.Dropout(dropout))

    def forward(self, x):
        return x + self.layers(x)


class TransformerDecoderLayer(nn.Module):
    """mmdet3d's (BEVFusion/TransFusion) decoder layer: self-attn, norm, cross-attn, norm, FFN, norm."""

    def __init__(self, embed_dims=128, num_heads=8, feedforward_channels=256, dropout=0.1):
        super().__init__()
        self.self_attn = MultiheadAttention(embed_dims, num_heads, dropout)
        self.cross_attn = MultiheadAttention(embed_dims, num_heads, dropout)
        self.ffn = FFN(embed_dims, feedforward_channels, dropout)
        self.norms = nn.ModuleList(nn.LayerNorm(embed_dims) for _ in range(3))
        self.self_posembed = PositionEncodingLearned(2, embed_dims)
        self.cross_posembed = PositionEncodingLearned(2, embed_dims)

    def forward(self, query, key, query_pos, key_pos):
        qpos = self.self_posembed(query_pos).transpose(1, 2)
        kpos = self.cross_posembed(key_pos).transpose(1, 2)
        q, k = query.transpose(1, 2), key.transpose(1, 2)
        q = self.norms[0](self.self_attn(q, q, q, qpos, qpos))
        q = self.norms[1](self.cross_attn(q, k, k, qpos, kpos))
        q = self.norms[2](self.ffn(q))
        return q.transpose(1, 2)


def bev_grid(x_size, y_size):
    """mmdet3d's ``create_2D_grid``: (1, x_size*y_size, 2) cell centres in feature-map cells."""
    ys, xs = torch.meshgrid(torch.linspace(0, x_size - 1, x_size), torch.linspace(0, y_size - 1, y_size),
                            indexing="ij")
    return torch.stack([xs + 0.5, ys + 0.5], 0)[None].view(1, 2, -1).permute(0, 2, 1).contiguous()


class TransFusionHead(nn.Module):
    def __init__(self, in_channels, num_classes, grid_size, num_proposals=500, hidden_channel=128, num_heads=8,
                 ffn_channels=256, num_decoder_layers=1, nms_kernel_size=3, common_heads=None, dropout=0.1):
        super().__init__()
        self.num_classes, self.num_proposals, self.nms_kernel_size = num_classes, num_proposals, nms_kernel_size
        self.shared_conv = nn.Conv2d(in_channels, hidden_channel, 3, padding=1, bias=True)
        self.heatmap_head = nn.Sequential(ConvModule(hidden_channel, hidden_channel, 3, padding=1),
                                          nn.Conv2d(hidden_channel, num_classes, 3, padding=1, bias=True))
        nn.init.constant_(self.heatmap_head[-1].bias, -2.19)
        self.class_encoding = nn.Conv1d(num_classes, hidden_channel, 1)
        self.decoder = nn.ModuleList(TransformerDecoderLayer(hidden_channel, num_heads, ffn_channels, dropout)
                                     for _ in range(num_decoder_layers))
        common = common_heads or dict(center=(2, 2), height=(1, 2), dim=(3, 2), rot=(2, 2), vel=(2, 2))
        heads = {**{k: tuple(v) for k, v in common.items()}, "heatmap": (num_classes, 2)}
        self.prediction_heads = nn.ModuleList(SeparateHead(hidden_channel, heads, hidden_channel, dims=1)
                                              for _ in range(num_decoder_layers))
        self.register_buffer("bev_pos", bev_grid(grid_size[0], grid_size[1]), persistent=False)

    def local_max(self, heatmap):
        """The heatmap's local maxima over ``nms_kernel_size`` windows (zero on the border): the query candidates."""
        pad = self.nms_kernel_size // 2
        return F.pad(F.max_pool2d(heatmap, self.nms_kernel_size, stride=1, padding=0), (pad, pad, pad, pad))

    def forward_dict(self, feats):
        """mmdet3d's ``forward_single`` (lidar only): the last decoder layer's predictions, plus
        ``query_heatmap_score``, ``dense_heatmap`` and the query indices/labels for training."""
        x = feats[0]
        b = x.shape[0]
        lidar_feat = self.shared_conv(x)
        flat = lidar_feat.view(b, lidar_feat.shape[1], -1)
        bev_pos = self.bev_pos.repeat(b, 1, 1)
        dense_heatmap = self.heatmap_head(lidar_feat)
        heatmap = dense_heatmap.detach().sigmoid()
        heatmap = (heatmap * (heatmap == self.local_max(heatmap))).view(b, self.num_classes, -1)
        top = heatmap.view(b, -1).topk(self.num_proposals, dim=-1)[1]
        top_class = torch.div(top, heatmap.shape[-1], rounding_mode="floor")
        top_index = top % heatmap.shape[-1]
        query_feat = flat.gather(-1, top_index[:, None, :].expand(-1, flat.shape[1], -1))
        query_feat = query_feat + self.class_encoding(F.one_hot(top_class, self.num_classes).permute(0, 2, 1).float())
        query_pos = bev_pos.gather(1, top_index[:, :, None].expand(-1, -1, bev_pos.shape[-1]))
        res = {}
        for decoder, pred_head in zip(self.decoder, self.prediction_heads):
            query_feat = decoder(query_feat, flat, query_pos, bev_pos)
            res = pred_head(query_feat)
            res["center"] = res["center"] + query_pos.permute(0, 2, 1)
            query_pos = res["center"].detach().permute(0, 2, 1)
        res["query_heatmap_score"] = heatmap.gather(-1, top_index[:, None, :].expand(-1, self.num_classes, -1))
        res.update(dense_heatmap=dense_heatmap, top_index=top_index, top_class=top_class)
        return res

    def forward(self, feats):
        """The three tensors of AWML's mmdeploy export (``mmdeploy.patch``)."""
        r = self.forward_dict(feats)
        cls_score = r["query_heatmap_score"] * r["heatmap"].sigmoid()
        bbox = torch.cat([r["center"], r["height"], r["dim"], r["vel"]], dim=1)
        return cls_score, bbox, r["rot"]


class TransFusionONNX(nn.Module):
    """The deployed graph: raw voxels in (decoration and scatter inside), head tensors out."""

    def __init__(self, voxel_encoder, backbone, neck, bbox_head, nx, ny):
        super().__init__()
        self.voxel_encoder, self.backbone, self.neck, self.bbox_head = voxel_encoder, backbone, neck, bbox_head
        self.nx, self.ny = nx, ny

    def bev(self, voxels, num_points, coors):
        feats = self.voxel_encoder(self.voxel_encoder.decorate(voxels, num_points, coors))
        pillars = feats.view(feats.shape[0], feats.shape[-1])  # (V, C)
        idx = (coors[:, 2].long() * self.nx + coors[:, 3].long()).view(1, -1).expand(pillars.shape[1], -1)
        canvas = torch.zeros(pillars.shape[1], self.ny * self.nx, dtype=pillars.dtype, device=pillars.device)
        canvas = canvas.scatter(1, idx, pillars.t())
        return self.neck(self.backbone(canvas.view(1, pillars.shape[1], self.ny, self.nx)))

    def forward(self, voxels, num_points, coors):
        return self.bbox_head(self.bev(voxels, num_points, coors))


class TransFusion(nn.Module):
    def __init__(self, num_classes=5, in_channels=5, pfn_channels=(64, 64), voxel_size=(0.24, 0.24, 10.0),
                 point_cloud_range=(-92.16, -92.16, -3.0, 92.16, 92.16, 7.0), backbone_channels=(64, 128, 256),
                 layer_nums=(3, 5, 5), layer_strides=(2, 2, 2), neck_channels=(128, 128, 128),
                 upsample_strides=(0.5, 1, 2), out_size_factor=4, num_proposals=500, hidden_channel=128,
                 num_heads=8, ffn_channels=256, num_decoder_layers=1, nms_kernel_size=3):
        super().__init__()
        self.nx = int(round((point_cloud_range[3] - point_cloud_range[0]) / voxel_size[0]))
        self.ny = int(round((point_cloud_range[4] - point_cloud_range[1]) / voxel_size[1]))
        self.pts_voxel_encoder = PillarFeatureNet(in_channels, pfn_channels, voxel_size, point_cloud_range)
        self.pts_backbone = SECOND(pfn_channels[-1], backbone_channels, layer_nums, layer_strides)
        self.pts_neck = SECONDFPN(backbone_channels, neck_channels, upsample_strides)
        self.pts_bbox_head = TransFusionHead(sum(neck_channels), num_classes,
                                             (self.nx // out_size_factor, self.ny // out_size_factor), num_proposals,
                                             hidden_channel, num_heads, ffn_channels, num_decoder_layers,
                                             nms_kernel_size)

    @property
    def end2end(self) -> TransFusionONNX:
        wrapper = TransFusionONNX(self.pts_voxel_encoder, self.pts_backbone, self.pts_neck, self.pts_bbox_head,
                                  self.nx, self.ny)
        wrapper.training = self.training  # a fresh module says True: export's mode restore would train the parts
        return wrapper

    def forward(self, voxels, num_points, coors):
        return self.end2end(voxels, num_points, coors)


def build_model(**kwargs):
    """The family's ``model.builder``; kwargs as ``TransFusion``'s (defaults: AWML's 90 m / 768-grid config)."""
    torch.manual_seed(0)
    return TransFusion(**kwargs).eval()
