"""A small StreamPETR (AWML ``projects/StreamPETR``) in plain PyTorch, with AWML's parameter names.

What is StreamPETR and what is not: the image backbone is a small ResNet-style conv stack (``img_backbone``,
BasicBlocks, stride 8 or 16; AWML uses VoVNet / ResNet50 and a CPFPN neck: ``img_neck`` here is one 1x1
conv) so the demo trains on a CPU in minutes. The head is the point: ``pts_bbox_head`` is StreamPETRHead
with its parameter names (``position_encoder``, ``memory_embed``, ``spatial_alignment`` (MLN on the
camera ``cone``), ``featurized_pe`` (SELayer_Linear), ``reference_points``, ``query_embedding``,
``time_embedding``, ``ego_pose_pe`` / ``ego_pose_memory`` (MLN on the nerf-encoded ego motion),
``transformer.decoder.layers.N.attentions.{0,1}.attn``, ``cls_branches``, ``reg_branches``), its object
query memory queue (``memory_len`` entries, ``num_propagated`` of them joining the queries, the
``topk_proposals`` best queries of a frame pushed to the front) and the memory's ego-motion update.

Deployed as AWML's ``deploy/containers.py`` exports it and Autoware's ``autoware_camera_streampetr`` runs it:
three graphs, each a property returning a wrapper around the shared submodules (the state dict keeps
AWML's names, no duplicated keys):

- ``extract_img_feat``: ``img (1, N, 3, H, W)`` -> ``img_feats (1, N, C, h, w)``
- ``position_embedding``: ``img_metas_pad (3,)``, ``intrinsics (1, N, 4, 4)``, ``img2lidar (1, N, 4, 4)`` ->
  ``pos_embed (1, N*h*w, C)``, ``cone (1, N*h*w, 8)`` (img2lidar, the inverse of lidar2img, on the host)
- ``pts_head_memory``: ``x`` (the image features), ``pos_embed``, ``cone``, ``data_ego_pose``,
  ``data_ego_pose_inv`` and the five ``pre_memory_*`` tensors -> ``all_cls_scores (L, 1, Q, classes)``,
  ``all_bbox_preds (L, 1, Q, 10)`` and the five ``post_memory_*`` tensors (``topk + memory_len`` long; the
  host keeps the first ``memory_len``). Q = num_query + num_propagated. The memory timestamp is shifted on
  the host (AWML keeps that float64 arithmetic out of TensorRT); the memory is kept in the global frame
  between frames: moved into the current ego frame with ``data_ego_pose_inv`` on entry, back with
  ``data_ego_pose`` on exit.

Box code (StreamPETR's normalize_bbox): ``[x, y, z_centre, log l, log w, log h, sin yaw, cos yaw, vx, vy]``,
centre in metres (sigmoid of the query's reference point + offset, scaled to ``pc_range``).
"""

from __future__ import annotations

import math

import torch
from torch import nn
import torch.nn.functional as F


def inverse_sigmoid(x, eps=1e-5):
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


def pos2posemb3d(pos, num_pos_feats=128, temperature=10000):
    scale = 2 * math.pi
    pos = pos * scale
    dim_t = torch.arange(num_pos_feats, dtype=torch.float32, device=pos.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_pos_feats)
    out = []
    for i in (1, 0, 2):  # y, x, z as PETR orders them
        p = pos[..., i, None] / dim_t
        out.append(torch.stack((p[..., 0::2].sin(), p[..., 1::2].cos()), dim=-1).flatten(-2))
    return torch.cat(out, dim=-1)


def pos2posemb1d(pos, num_pos_feats=256, temperature=10000):
    scale = 2 * math.pi
    pos = pos * scale
    dim_t = torch.arange(num_pos_feats, dtype=torch.float32, device=pos.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode="floor") / num_pos_feats)
    p = pos[..., 0, None] / dim_t
    return torch.stack((p[..., 0::2].sin(), p[..., 1::2].cos()), dim=-1).flatten(-2)


def nerf_positional_encoding(x, num_encoding_functions=4):
    out = [x]
    for i in range(num_encoding_functions):
        out += [torch.sin(x * 2.0 ** i), torch.cos(x * 2.0 ** i)]
    return torch.cat(out, dim=-1)


def transform_reference_points(points, pose):
    """(B, M, 3) points moved by (B, 4, 4) poses."""
    return points @ pose[:, :3, :3].transpose(-1, -2) + pose[:, None, :3, 3]


def _rays(img2lidar, u, v):
    """``img2lidar[..., :3, :3] @ (u, v, 1)`` for pixel grids ``u, v (h, w)`` -> ``(B, N, h, w, 3)``, elementwise."""
    m = img2lidar[..., :3, :3][:, :, None, None]  # (B, N, 1, 1, 3, 3)
    return m[..., 0] * u[..., None] + m[..., 1] * v[..., None] + m[..., 2]


def topk_gather(feat, idx):
    """Rows ``idx (B, k, 1)`` of ``feat (B, Q, ...)``."""
    idx = idx.reshape(*idx.shape[:2], *([1] * (feat.dim() - 2))).expand(*idx.shape[:2], *feat.shape[2:])
    return torch.gather(feat, 1, idx)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        return F.relu(self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x))))) + idt)


class SmallResNet(nn.Module):
    """mmdet ResNet's names (conv1/bn1, layerN.M) with one BasicBlock per stage; output stride 2 * prod(strides)."""

    def __init__(self, channels=(16, 32, 64), stem=16, strides=None):
        super().__init__()
        self.conv1 = nn.Conv2d(3, stem, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(stem)
        cin = stem
        self.num_stages = len(channels)
        strides = list(strides or [2] * len(channels))
        if len(strides) != len(channels):
            raise ValueError(f"SmallResNet: {len(strides)} strides for {len(channels)} stages")
        self.stride = 2 * math.prod(strides)
        for i, (c, s) in enumerate(zip(channels, strides)):
            setattr(self, f"layer{i + 1}", nn.Sequential(BasicBlock(cin, c, s)))
            cin = c

    def forward(self, x):
        x = F.relu(self.bn1(self.conv1(x)))
        for i in range(self.num_stages):
            x = getattr(self, f"layer{i + 1}")(x)
        return x


class MLN(nn.Module):
    """StreamPETR's Motion-aware Layer Normalization: LayerNorm(x) * (1 + gamma(c)) + beta(c)."""

    def __init__(self, c_dim, f_dim=256):
        super().__init__()
        self.reduce = nn.Sequential(nn.Linear(c_dim, f_dim), nn.ReLU())
        self.gamma = nn.Linear(f_dim, f_dim)
        self.beta = nn.Linear(f_dim, f_dim)
        self.ln = nn.LayerNorm(f_dim, elementwise_affine=False)
        nn.init.zeros_(self.gamma.weight)
        nn.init.zeros_(self.beta.weight)
        nn.init.ones_(self.gamma.bias)
        nn.init.zeros_(self.beta.bias)

    def forward(self, x, c):
        x = self.ln(x)
        c = self.reduce(c)
        return self.gamma(c) * x + self.beta(c)


class SELayer_Linear(nn.Module):  # noqa: N801 (StreamPETR's name)
    def __init__(self, channels):
        super().__init__()
        self.conv_reduce = nn.Linear(channels, channels)
        self.conv_expand = nn.Linear(channels, channels)

    def forward(self, x, x_se):
        return x * torch.sigmoid(self.conv_expand(F.relu(self.conv_reduce(x_se))))


class DecoderLayer(nn.Module):
    """mmcv's DetrTransformerDecoderLayer (self_attn, norm, cross_attn, norm, ffn, norm) with mmcv's names."""

    def __init__(self, dims, heads, ffn_dims):
        super().__init__()
        self.attentions = nn.ModuleList([nn.ModuleDict({"attn": nn.MultiheadAttention(dims, heads, batch_first=True)})
                                         for _ in range(2)])
        self.ffns = nn.ModuleList([nn.ModuleDict({"layers": nn.Sequential(
            nn.Sequential(nn.Linear(dims, ffn_dims), nn.ReLU()), nn.Linear(ffn_dims, dims))})])
        self.norms = nn.ModuleList([nn.LayerNorm(dims) for _ in range(3)])
        self.keep_attn, self.last_attn = False, None  # train.py's attention loss sets keep_attn; export never does

    def forward(self, query, query_pos, temp_memory, temp_pos, key, key_pos, attn_mask=None):
        q = query + query_pos
        k_self = torch.cat([q, temp_memory + temp_pos], 1)
        v_self = torch.cat([query, temp_memory], 1)
        query = self.norms[0](query + self.attentions[0]["attn"](q, k_self, v_self, attn_mask=attn_mask,
                                                                   need_weights=False)[0])
        out, weights = self.attentions[1]["attn"](query + query_pos, key + key_pos, key, need_weights=self.keep_attn)
        self.last_attn = weights  # training only (``keep_attn``): the cross-attention, mean over heads
        query = self.norms[1](query + out)
        return self.norms[2](query + self.ffns[0]["layers"](query))


class Decoder(nn.Module):
    def __init__(self, num_layers, dims, heads, ffn_dims):
        super().__init__()
        self.layers = nn.ModuleList([DecoderLayer(dims, heads, ffn_dims) for _ in range(num_layers)])
        self.post_norm = nn.LayerNorm(dims)

    def forward(self, *args, attn_mask=None):
        query, outs = args[0], []
        for layer in self.layers:
            query = layer(query, *args[1:], attn_mask=attn_mask)
            outs.append(self.post_norm(query))
        return torch.stack(outs)


class Transformer(nn.Module):
    def __init__(self, num_layers, dims, heads, ffn_dims):
        super().__init__()
        self.decoder = Decoder(num_layers, dims, heads, ffn_dims)

    def forward(self, memory, tgt, query_pos, pos_embed, temp_memory, temp_pos, attn_mask=None):
        return self.decoder(tgt, query_pos, temp_memory, temp_pos, memory, pos_embed, attn_mask=attn_mask)


class Coords3D(nn.Module):
    """PETR's 3D coordinates of every (cell, depth bin), normalised to the range, through inverse_sigmoid: the
    position encoder's input. A module of its own (no parameters) so its ONNX nodes are named ``/coords3d/...``:
    the fp32 island the fp16 policy keeps (in fp16 a coordinate near the range edge rounds to 1, 1 - x to 0).

    img2lidar @ (u d, v d, d, 1) = d * ray(u, v) + t is written as products and sums, not a MatMul: a matrix
    product runs in TF32 on GPUs (ONNX Runtime's and TensorRT's default), whose 10-bit mantissa moves these points
    by centimetres, which inverse_sigmoid magnifies near the range's edges."""

    def forward(self, img2lidar, gx, gy, ds, pc_range):
        t = img2lidar[..., :3, 3][:, :, None, None, None, :]  # (B, N, 1, 1, 1, 3)
        pts = _rays(img2lidar, gx, gy)[:, :, :, :, None, :] * ds.view(1, 1, 1, 1, -1, 1) + t  # (B, N, h, w, D, 3)
        lo, hi = pc_range[:3], pc_range[3:]
        return inverse_sigmoid((pts - lo) / (hi - lo))


class StreamPETRHead(nn.Module):
    def __init__(self, num_classes=3, in_channels=64, embed_dims=64, num_query=32, memory_len=64, topk_proposals=16,
                 num_propagated=16, num_layers=2, num_heads=4, ffn_dims=128, depth_num=16, depth_start=1.0,
                 depth_max=30.0, pc_range=(-20.0, -20.0, -2.0, 20.0, 20.0, 4.0), code_size=10):
        super().__init__()
        if not num_propagated <= memory_len or not topk_proposals <= num_query + num_propagated:
            raise ValueError(f"StreamPETRHead: need num_propagated ({num_propagated}) <= memory_len ({memory_len}) "
                             f"and topk_proposals ({topk_proposals}) <= num_query + num_propagated")
        self.num_classes, self.embed_dims, self.num_query = num_classes, embed_dims, num_query
        self.memory_len, self.topk_proposals, self.num_propagated = memory_len, topk_proposals, num_propagated
        self.depth_num, self.depth_start, self.depth_max = depth_num, depth_start, depth_max
        self.code_size = code_size
        self.register_buffer("pc_range", torch.tensor(pc_range, dtype=torch.float32), persistent=False)
        self.coords3d = Coords3D()
        self.position_encoder = nn.Sequential(nn.Linear(depth_num * 3, embed_dims * 4), nn.ReLU(),
                                              nn.Linear(embed_dims * 4, embed_dims))
        self.memory_embed = nn.Sequential(nn.Linear(in_channels, embed_dims), nn.ReLU(),
                                          nn.Linear(embed_dims, embed_dims))
        self.spatial_alignment = MLN(8, embed_dims)
        self.featurized_pe = SELayer_Linear(embed_dims)
        self.reference_points = nn.Embedding(num_query, 3)
        self.query_embedding = nn.Sequential(nn.Linear(embed_dims * 3 // 2, embed_dims), nn.ReLU(),
                                             nn.Linear(embed_dims, embed_dims))
        self.time_embedding = nn.Sequential(nn.Linear(embed_dims, embed_dims), nn.LayerNorm(embed_dims))
        ego_dims = 15 * (1 + 2 * 4)  # velo 2 + timestamp 1 + egopose 3x4, nerf-encoded
        self.ego_pose_pe = MLN(ego_dims, embed_dims)
        self.ego_pose_memory = MLN(ego_dims, embed_dims)
        self.transformer = Transformer(num_layers, embed_dims, num_heads, ffn_dims)
        self.cls_branches = nn.ModuleList([nn.Sequential(
            nn.Linear(embed_dims, embed_dims), nn.LayerNorm(embed_dims), nn.ReLU(),
            nn.Linear(embed_dims, num_classes))])
        self.reg_branches = nn.ModuleList([nn.Sequential(
            nn.Linear(embed_dims, embed_dims), nn.ReLU(), nn.Linear(embed_dims, code_size))])
        nn.init.uniform_(self.reference_points.weight, 0, 1)
        nn.init.constant_(self.cls_branches[0][-1].bias, -2.19)

    # -- position embedding (graph 2) ------------------------------------------------------------------
    def position_embeding(self, img_metas_pad, intrinsics, img2lidar, feat_h, feat_w):  # AWML's spelling
        B, N = img2lidar.shape[:2]
        pad_h, pad_w = img_metas_pad[0], img_metas_pad[1]
        dev = img2lidar.device
        ys = (torch.arange(feat_h, device=dev, dtype=torch.float32) + 0.5) * pad_h / feat_h
        xs = (torch.arange(feat_w, device=dev, dtype=torch.float32) + 0.5) * pad_w / feat_w
        idx = torch.arange(self.depth_num, device=dev, dtype=torch.float32)
        bin_size = (self.depth_max - self.depth_start) / (self.depth_num * (1 + self.depth_num))
        ds = self.depth_start + bin_size * idx * (idx + 1)  # linear-increasing depth bins (PETR's LID)
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")  # (h, w)
        pos = self.position_encoder(self.coords3d(img2lidar, gx, gy, ds, self.pc_range).flatten(-2))  # (B, N, h, w, C)
        pos = pos.reshape(B, N * feat_h * feat_w, self.embed_dims)
        # cone: the ray of each feature cell (centre and corner) in the lidar frame and its angular size
        fx, fy = intrinsics[..., 0, 0], intrinsics[..., 1, 1]  # (B, N)
        step_x, step_y = pad_w / feat_w, pad_h / feat_h
        rays = []
        for du, dv in ((0.0, 0.0), (0.5, 0.5)):
            r = _rays(img2lidar, gx + du * step_x, gy + dv * step_y)
            rays.append(r / r.norm(dim=-1, keepdim=True).clamp(min=1e-6))
        size = torch.stack([step_x / fx, step_y / fy], -1)[:, :, None, None, :].expand(B, N, feat_h, feat_w, 2)
        cone = torch.cat([rays[0], rays[1], size], -1).reshape(B, N * feat_h * feat_w, 8)
        return pos, cone

    # -- head with memory (graph 3) --------------------------------------------------------------------
    def temporal_alignment(self, query_pos, tgt, reference_points, mem):
        lo, hi = self.pc_range[:3], self.pc_range[3:]
        temp_ref = (mem["reference_point"] - lo) / (hi - lo)
        temp_pos = self.query_embedding(pos2posemb3d(temp_ref, self.embed_dims // 2))
        temp_memory = mem["embedding"]
        B, Q = query_pos.shape[:2]
        eye = torch.eye(4, device=query_pos.device)[:3].flatten().view(1, 1, 12).expand(B, Q, 12)
        rec_motion = nerf_positional_encoding(torch.cat([torch.zeros_like(reference_points), eye], -1))
        tgt = self.ego_pose_memory(tgt, rec_motion)
        query_pos = self.ego_pose_pe(query_pos, rec_motion)
        mem_motion = nerf_positional_encoding(torch.cat(
            [mem["velo"], mem["timestamp"], mem["egopose"][..., :3, :].flatten(-2)], -1))
        temp_pos = self.ego_pose_pe(temp_pos, mem_motion)
        temp_memory = self.ego_pose_memory(temp_memory, mem_motion)
        query_pos = query_pos + self.time_embedding(pos2posemb1d(torch.zeros_like(reference_points[..., :1]),
                                                                 self.embed_dims))
        temp_pos = temp_pos + self.time_embedding(pos2posemb1d(mem["timestamp"], self.embed_dims))
        p = self.num_propagated
        tgt = torch.cat([tgt, temp_memory[:, :p]], 1)
        query_pos = torch.cat([query_pos, temp_pos[:, :p]], 1)
        reference_points = torch.cat([reference_points, temp_ref[:, :p]], 1)
        return tgt, query_pos, reference_points, temp_memory[:, p:], temp_pos[:, p:]

    def forward_head(self, x, pos_embed, cone, mem, dn_reference=None, dn_groups=1):
        """Image features + position embedding + memory (current ego frame) -> cls, boxes, last decoder output.

        ``dn_reference (B, E, 3)`` (training only, StreamPETR's query denoising ``prepare_for_dn``): noised
        ground-truth centres as E extra queries after the learned ones, in ``dn_groups`` equal groups; the
        self-attention mask hides them from the other queries and each group from the others. The deployed
        graphs never pass it."""
        B, N, C, H, W = x.shape
        memory = x.permute(0, 1, 3, 4, 2).reshape(B, N * H * W, C)
        memory = self.memory_embed(memory)
        memory = self.spatial_alignment(memory, cone)
        pos_embed = self.featurized_pe(pos_embed, memory)
        reference_points = self.reference_points.weight.unsqueeze(0).expand(B, -1, -1)
        attn_mask = None
        if dn_reference is not None:
            reference_points = torch.cat([reference_points, dn_reference], 1)
            E, Q = dn_reference.shape[1], self.num_query
            total = Q + E + self.num_propagated
            attn_mask = torch.zeros(total, total + self.memory_len - self.num_propagated, dtype=torch.bool)
            attn_mask[:Q, Q:Q + E] = True
            attn_mask[Q + E:total, Q:Q + E] = True
            group = torch.arange(E) // max(1, E // dn_groups)
            attn_mask[Q:Q + E, Q:Q + E] = group[:, None] != group[None, :]
        query_pos = self.query_embedding(pos2posemb3d(reference_points, self.embed_dims // 2))
        tgt = torch.zeros_like(query_pos)
        tgt, query_pos, reference_points, temp_memory, temp_pos = self.temporal_alignment(
            query_pos, tgt, reference_points, mem)
        outs_dec = self.transformer(memory, tgt, query_pos, pos_embed, temp_memory, temp_pos, attn_mask=attn_mask)
        reference = inverse_sigmoid(reference_points)
        cls = self.cls_branches[0](outs_dec)
        tmp = self.reg_branches[0](outs_dec)
        lo, hi = self.pc_range[:3], self.pc_range[3:]
        xyz = (tmp[..., :3] + reference).sigmoid() * (hi - lo) + lo
        bbox = torch.cat([xyz, tmp[..., 3:]], -1)
        return cls, bbox, outs_dec

    def update_memory(self, cls, bbox, outs_dec, mem, ego_pose):
        """Push the top-k queries of this frame to the front of the queue, in the global frame (AWML's
        ``_post_update_memory``). Returns the five post-memory tensors, ``topk + memory_len`` long."""
        B = cls.shape[1]
        score = cls[-1].sigmoid().max(-1, keepdim=True).values  # (B, Q, 1)
        _, idx = torch.topk(score, self.topk_proposals, dim=1)  # (B, k, 1)
        rec_emb = topk_gather(outs_dec[-1], idx)
        rec_ref = topk_gather(bbox[-1][..., :3], idx)
        rec_velo = topk_gather(bbox[-1][..., -2:], idx)
        rec_ts = torch.zeros_like(rec_ref[..., :1])
        rec_pose = torch.eye(4, device=cls.device).view(1, 1, 4, 4).expand(B, self.topk_proposals, 4, 4)
        emb = torch.cat([rec_emb, mem["embedding"]], 1)
        ref = torch.cat([rec_ref, mem["reference_point"]], 1)
        ts = torch.cat([rec_ts, mem["timestamp"]], 1)
        pose = torch.cat([rec_pose, mem["egopose"]], 1)
        velo = torch.cat([rec_velo, mem["velo"]], 1)
        ref = transform_reference_points(ref, ego_pose)
        pose = ego_pose.unsqueeze(1) @ pose
        return emb, ref, ts, pose, velo


def memory_to_ego(mem, ego_pose_inv, memory_len):
    """AWML's memory update before the head: the queue (global frame) into the current ego frame."""
    return {"embedding": mem["embedding"][:, :memory_len],
            "reference_point": transform_reference_points(mem["reference_point"], ego_pose_inv)[:, :memory_len],
            "timestamp": mem["timestamp"][:, :memory_len],
            "egopose": (ego_pose_inv.unsqueeze(1) @ mem["egopose"])[:, :memory_len],
            "velo": mem["velo"][:, :memory_len]}


class ExtractImgFeat(nn.Module):
    """Graph ``extract_img_feat``: ``img (1, N, 3, H, W)`` -> ``img_feats (1, N, C, h, w)``."""

    def __init__(self, img_backbone, img_neck):
        super().__init__()
        self.img_backbone, self.img_neck = img_backbone, img_neck

    def forward(self, img):
        B, N = img.shape[:2]
        f = self.img_neck(self.img_backbone(img.flatten(0, 1)))
        return f.view(B, N, *f.shape[1:])


class PositionEmbedding(nn.Module):
    """Graph ``position_embedding``: ``img_metas_pad, intrinsics, img2lidar`` -> ``pos_embed, cone``."""

    def __init__(self, head, feat_h, feat_w):
        super().__init__()
        self.head, self.feat_h, self.feat_w = head, feat_h, feat_w

    def forward(self, img_metas_pad, intrinsics, img2lidar):
        return self.head.position_embeding(img_metas_pad, intrinsics, img2lidar, self.feat_h, self.feat_w)


class PtsHeadMemory(nn.Module):
    """Graph ``pts_head_memory`` (AWML's TrtPtsHeadContainer): memory update, head, memory update."""

    def __init__(self, head):
        super().__init__()
        self.head = head

    def forward(self, x, pos_embed, cone, data_ego_pose, data_ego_pose_inv, pre_memory_embedding,
                pre_memory_reference_point, pre_memory_timestamp, pre_memory_egopose, pre_memory_velo):
        head = self.head
        mem = memory_to_ego({"embedding": pre_memory_embedding, "reference_point": pre_memory_reference_point,
                             "timestamp": pre_memory_timestamp, "egopose": pre_memory_egopose,
                             "velo": pre_memory_velo}, data_ego_pose_inv, head.memory_len)
        cls, bbox, outs_dec = head.forward_head(x, pos_embed, cone, mem)
        post = head.update_memory(cls, bbox, outs_dec, mem, data_ego_pose)
        return (cls, bbox) + post


class StreamPETR(nn.Module):
    """AWML's Petr3D with a StreamPETRHead; ``img_size`` (H, W) and the backbone stride fix the feature map."""

    def __init__(self, num_classes=3, num_cameras=5, img_size=(64, 112), backbone_channels=(16, 32, 64), stem=16,
                 backbone_strides=None, embed_dims=64, **head):
        super().__init__()
        self.num_cameras, self.img_size = num_cameras, tuple(img_size)
        self.img_backbone = SmallResNet(backbone_channels, stem, backbone_strides)
        self.img_neck = nn.Conv2d(backbone_channels[-1], embed_dims, 1)
        self.stride = self.img_backbone.stride
        self.feat_h, self.feat_w = -(-img_size[0] // self.stride), -(-img_size[1] // self.stride)
        self.pts_bbox_head = StreamPETRHead(num_classes=num_classes, in_channels=embed_dims, embed_dims=embed_dims,
                                            **head)

    def _wrap(self, module):
        module.training = self.training  # a fresh module says True: export's mode restore would train the parts
        return module

    @property
    def extract_img_feat(self) -> ExtractImgFeat:
        return self._wrap(ExtractImgFeat(self.img_backbone, self.img_neck))

    @property
    def position_embedding(self) -> PositionEmbedding:
        return self._wrap(PositionEmbedding(self.pts_bbox_head, self.feat_h, self.feat_w))

    @property
    def pts_head_memory(self) -> PtsHeadMemory:
        return self._wrap(PtsHeadMemory(self.pts_bbox_head))

    def empty_memory(self, batch=1, device=None):
        """The queue at a sequence start (Autoware resets it to zeros), in the graph's dtypes."""
        h = self.pts_bbox_head
        m = h.memory_len
        return {"embedding": torch.zeros(batch, m, h.embed_dims, device=device),
                "reference_point": torch.zeros(batch, m, 3, device=device),
                "timestamp": torch.zeros(batch, m, 1, device=device),
                "egopose": torch.zeros(batch, m, 4, 4, device=device),
                "velo": torch.zeros(batch, m, 2, device=device)}

    def forward(self, *args):
        raise RuntimeError("StreamPETR is deployed as three graphs: extract_img_feat, position_embedding, "
                           "pts_head_memory (see pipeline.StreamPETRPipeline)")


def build_model(**kwargs):
    """The family's ``model.builder``; kwargs as ``StreamPETR``'s (head kwargs pass through)."""
    torch.manual_seed(0)
    return StreamPETR(**kwargs).eval()
