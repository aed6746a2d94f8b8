"""Train the demo StreamPETR on the synthetic camera sequences (deterministic, one CPU thread).

Streaming training as StreamPETR does it: each step runs a scene's frames in order, the memory queue
of one frame (detached) is the next frame's, reset at the scene start. Loss: focal loss on the class
scores and L1 on the box code (StreamPETR's weights, every decoder layer), with the assignment simplified for
a CPU budget of minutes: every ground truth box takes the free query whose predicted centre is nearest in the
bird's-eye view minus its class probability (greedy, instead of StreamPETR's Hungarian matching), plus
StreamPETR's query denoising. Images are fed through the same ``dataset.StreamPETRSamples`` and the memory
through the same graph modules the deployment exports.

What makes a DETR-style head learn in minutes here (measured, README): without it the decoder's outputs do not
depend on the image (val mAP ~0.005 after 15 epochs; denoising queries 0.8 m from their box stay 0.8 m away).
The cross-attention is the only place where a query's position meets the image, and a query cannot tell an object
in its cell from one at another depth on the same ray. So, training-only (the deployed graphs and parameters are
AWML's):

- the backbone is first trained alone on the 2D auxiliary task (``AuxHead``: centre heatmap + depth per cell);
- ``align_geometry``: the queries' positional embedding attends to the cells a 3D point projects into;
- an attention loss: every denoising query's cross-attention (mean over heads, every layer) puts its mass on the
  cells its box covers (``object_cells``), and so does every learned query matched to a box; depth negatives,
  points on the camera ray through each box at 0.6 / 0.8 / 1.25 / 1.6 times its distance (``ray_negatives``:
  they project into the box's cells but are not on it), are background and keep their attention off those cells:
  the attention must read the image content (depth), not only the ray;
- ``spatial_alignment``'s MLN weights start random (not zero), so the values the queries read carry their ray;
- the 144 reference points start on a 12 x 12 grid on the ground.

    python -m pytest_autoware_deploy.models.streampetr.synthetic --out data/synthetic/streampetr --splits train val
    python -m pytest_autoware_deploy.models.streampetr.train --val data/synthetic/streampetr/info_val.pkl
"""

from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from ..transfusion_lidar.train import greedy_assign
from .dataset import StreamPETRSamples
from .model import build_model, memory_to_ego, nerf_positional_encoding, pos2posemb3d

DEMO = dict(num_classes=3, num_cameras=5, img_size=[64, 112], backbone_channels=[16, 32, 64], stem=16,
            backbone_strides=[2, 2, 1], embed_dims=64, num_query=144, memory_len=128, topk_proposals=32,
            num_propagated=32, num_layers=2, num_heads=4, ffn_dims=128, depth_num=16, depth_start=1.0, depth_max=30.0, pc_range=[-20.0, -20.0, -2.0, 20.0, 20.0, 4.0])
CLASSES = ["car", "bicycle", "pedestrian"]
CHECKPOINT = Path(__file__).parent / "checkpoints" / "streampetr_demo.pth"
DEMO_HOST = dict(memory_len=128, embed_dims=64, pc_range=DEMO["pc_range"], max_num=60, score_threshold=0.1,
                 nms_radius=1.0, post_max_size=60)


def _frame_tensors(inputs, origin_inv, t0):
    pose = origin_inv @ inputs["ego2global"][0]
    img2lidar = np.linalg.inv(inputs["lidar2img"].astype(np.float64)).astype(np.float32)
    return dict(img=torch.from_numpy(inputs["img"]), intrinsics=torch.from_numpy(inputs["intrinsics"]),
                img2lidar=torch.from_numpy(img2lidar), pose=torch.from_numpy(pose[None].astype(np.float32)),
                pose_inv=torch.from_numpy(np.linalg.inv(pose)[None].astype(np.float32)),
                t=float(inputs["timestamp"][0]) - t0)


class AuxHead(torch.nn.Module):
    """Training-only 2D auxiliary head on the image features (StreamPETR's ``img_roi_head`` / FocalHead, reduced to
    what matters here): per feature cell, a class heatmap of the projected 3D box centres and their depth. It teaches
    the backbone where objects are and how far, which the decoder's cross-attention then only has to look up; not
    part of the deployed model (its weights are not saved)."""

    def __init__(self, channels, num_classes):
        super().__init__()
        self.cls = torch.nn.Sequential(torch.nn.Conv2d(channels, channels, 3, padding=1), torch.nn.ReLU(),
                                       torch.nn.Conv2d(channels, num_classes, 1))
        self.depth = torch.nn.Sequential(torch.nn.Conv2d(channels, channels, 3, padding=1), torch.nn.ReLU(),
                                         torch.nn.Conv2d(channels, 1, 1))
        torch.nn.init.constant_(self.cls[-1].bias, -2.19)

    def loss(self, feats, lidar2img, gt_code, gt_labels, img_hw):
        """feats (1, N, C, h, w); lidar2img (1, N, 4, 4); box centres projected into every camera."""
        x = feats[0]
        N, C, h, w = x.shape
        cls, depth = self.cls(x), self.depth(x)[:, 0]
        target = torch.zeros_like(cls)
        loss_depth, n = 0.0, 0
        if len(gt_labels):
            centre = torch.cat([gt_code[:, :3], torch.ones(len(gt_code), 1)], 1)
            uvd = torch.einsum("nij,gj->ngi", lidar2img[0].double(), centre.double()).float()  # (N, G, 4)
            d = uvd[..., 2]
            col = (uvd[..., 0] / d.clamp(min=1e-3) * w / img_hw[1]).floor().long()
            row = (uvd[..., 1] / d.clamp(min=1e-3) * h / img_hw[0]).floor().long()
            ok = (d > 0.5) & (col >= 0) & (col < w) & (row >= 0) & (row < h)
            cam, g = ok.nonzero(as_tuple=True)
            target[cam, gt_labels[g], row[cam, g], col[cam, g]] = 1.0
            if len(cam):
                loss_depth = (depth[cam, row[cam, g], col[cam, g]] - d[cam, g] / 10.0).abs().sum()
                n = len(cam)
        return (focal_loss(cls, target) + loss_depth) / max(1, n)


def align_geometry(model, inputs, steps=300, lr=3e-3, batch=256, seed=0, log=print):
    """Warm start of the decoder's geometry (before the detection training): for random 3D points, the query
    position embedding of the point (``query_embedding`` -> ``ego_pose_pe``) should attend, in every decoder
    layer's cross-attention (``in_proj`` q/k, per head), to the image cells whose ray passes through it (the
    cells it projects into, from ``position_encoder``'s ``pos_embed``). A DETR-style head otherwise has to
    discover that correspondence from box losses alone, which a CPU budget of minutes does not allow; here it
    is a classification over the feature cells that converges in seconds. Returns the last top-1 hit rate."""
    head = model.pts_bbox_head
    gen = torch.Generator().manual_seed(seed)
    lidar2img = torch.from_numpy(inputs["lidar2img"][0].astype(np.float64))
    img2lidar = torch.from_numpy(np.linalg.inv(inputs["lidar2img"].astype(np.float64)).astype(np.float32))
    H, W = inputs["img"].shape[-2:]
    fh, fw, N = model.feat_h, model.feat_w, lidar2img.shape[0]
    lo, hi = head.pc_range[:3], head.pc_range[3:]
    params = [*head.position_encoder.parameters(), *head.query_embedding.parameters(), *head.ego_pose_pe.parameters(),
              *[lay.attentions[1]["attn"].in_proj_weight for lay in head.transformer.decoder.layers],
              *[lay.attentions[1]["attn"].in_proj_bias for lay in head.transformer.decoder.layers]]
    opt = torch.optim.Adam(params, lr=lr)
    hit = 0.0
    for step in range(steps):
        r = torch.rand(batch * 2, 1, generator=gen) * (hi[0] - 3.0) + 3.0
        a = torch.rand(batch * 2, 1, generator=gen) * 2 * math.pi
        z = torch.rand(batch * 2, 1, generator=gen) * 2.0
        pts = torch.cat([r * torch.cos(a), r * torch.sin(a), z], 1)
        uvd = torch.einsum("nij,pj->pni", lidar2img, torch.cat([pts, torch.ones(len(pts), 1)], 1).double())
        d = uvd[..., 2]
        col = (uvd[..., 0] / d.clamp(min=1e-3) * fw / W).floor()
        row = (uvd[..., 1] / d.clamp(min=1e-3) * fh / H).floor()
        ok = (d > 0.5) & (col >= 0) & (col < fw) & (row >= 0) & (row < fh)  # (P, N)
        keep = ok.any(1).nonzero()[:batch, 0]
        pts, ok, row, col = pts[keep], ok[keep], row[keep].long(), col[keep].long()
        target = torch.zeros(len(pts), N, fh, fw)
        p_idx, n_idx = ok.nonzero(as_tuple=True)
        target[p_idx, n_idx, row[p_idx, n_idx], col[p_idx, n_idx]] = 1.0
        target = (target / target.sum((1, 2, 3), keepdim=True)).flatten(1)
        pos, _ = model.position_embedding(torch.tensor([H, W, 3.0]), torch.from_numpy(inputs["intrinsics"]), img2lidar)
        q = head.query_embedding(pos2posemb3d(((pts - lo) / (hi - lo))[None], head.embed_dims // 2))
        eye = torch.eye(4)[:3].flatten().view(1, 1, 12).expand(1, len(pts), 12)
        q = head.ego_pose_pe(q, nerf_positional_encoding(torch.cat([torch.zeros(1, len(pts), 3), eye], -1)))
        loss = 0.0
        for lay in head.transformer.decoder.layers:
            attn = lay.attentions[1]["attn"]
            E, nh = attn.embed_dim, attn.num_heads
            wq, wk = attn.in_proj_weight[:E], attn.in_proj_weight[E:2 * E]
            bq, bk = attn.in_proj_bias[:E], attn.in_proj_bias[E:2 * E]
            qh = (q[0] @ wq.T + bq).view(len(pts), nh, -1).transpose(0, 1)  # (heads, P, dh)
            kh = (pos[0] @ wk.T + bk).view(pos.shape[1], nh, -1).transpose(0, 1)  # (heads, cells, dh)
            logits = qh @ kh.transpose(1, 2) / math.sqrt(qh.shape[-1])
            loss = loss - (target[None] * logits.log_softmax(-1)).sum(-1).mean()
            hit = float((target.gather(1, logits.mean(0).argmax(-1, keepdim=True)) > 0).float().mean())
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0 or step == steps - 1:
            log(f"geometry warm start {step}/{steps}: loss {loss.item():.3f}, top-1 cell hit rate {hit:.2f}")
    return hit


def _targets(target, num_classes):
    b = target["boxes_3d"]
    code = np.zeros((len(b), 10), np.float32)
    code[:, 0:2] = b[:, 0:2]
    code[:, 2] = b[:, 2] + b[:, 5] / 2
    code[:, 3:6] = np.log(b[:, 3:6])
    code[:, 6], code[:, 7] = np.sin(b[:, 6]), np.cos(b[:, 6])
    code[:, 8:10] = b[:, 7:9]
    return torch.from_numpy(code), torch.from_numpy(target["labels"])


BOX_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2)  # StreamPETR's code_weights
CLS_WEIGHT, BBOX_WEIGHT = 2.0, 0.25  # StreamPETR's loss_cls / loss_bbox weights


def set_loss(cls, bbox, target_cls, assigned, gt_code):
    """Focal loss on every query's classes + L1 on the assigned queries' box codes, StreamPETR's weights, every
    decoder layer; normalised by the positives. ``assigned (Q,)``: the ground truth of each query or -1."""
    pos = assigned >= 0
    n = max(1, int(pos.sum()))
    w = torch.tensor(BOX_WEIGHTS)
    loss = 0.0
    for lvl in range(cls.shape[0]):
        loss = loss + CLS_WEIGHT * focal_loss(cls[lvl, 0], target_cls) / n
        if pos.any():
            loss = loss + BBOX_WEIGHT * (w * (bbox[lvl, 0][pos] - gt_code[assigned[pos]]).abs()).sum() / n
    return loss


def frame_loss(cls, bbox, gt_code, gt_labels, num_classes, radius, return_assigned=False):
    """cls (L, 1, Q, C), bbox (L, 1, Q, 10): one-to-one matching on the last layer (BEV centre distance / radius
    minus the class probability, StreamPETR's HungarianAssigner3D costs, solved greedily), then ``set_loss``."""
    Q = cls.shape[2]
    target_cls = torch.zeros(Q, num_classes)
    assigned = torch.full((Q,), -1, dtype=torch.long)
    if len(gt_labels):
        with torch.no_grad():
            prob = cls[-1, 0].sigmoid()[:, gt_labels].T  # (G, Q)
            cost = torch.cdist(gt_code[:, :2], bbox[-1, 0, :, :2]) / radius - prob
        for q, g in greedy_assign(cost.T.numpy()):
            assigned[q] = g
        pos = assigned >= 0
        target_cls[pos, gt_labels[assigned[pos]]] = 1.0
    loss = set_loss(cls, bbox, target_cls, assigned, gt_code)
    return (loss, assigned) if return_assigned else loss


def dn_queries(gt_code, groups, min_noise, split, generator=None):
    """StreamPETR's ``prepare_for_dn``: ``groups`` copies of the ground-truth centres, each moved by up to its
    half size (at least ``min_noise`` metres) per axis; a copy moved by more than ``split`` of that (norm of the
    relative offsets) is a negative (background, no box). Returns centres (groups*G, 3), gt index (-1 = negative)."""
    G = len(gt_code)
    half = torch.maximum(torch.exp(gt_code[:, 3:6]) / 2, torch.tensor(float(min_noise)))
    rel = torch.rand(groups, G, 3, generator=generator) * 2 - 1
    centre = (gt_code[None, :, :3] + rel * half[None]).reshape(-1, 3)
    idx = torch.arange(G).repeat(groups)
    idx[rel.reshape(-1, 3).norm(dim=1) > split] = -1
    return centre, idx


def object_cells(gt_code, lidar2img, feat_hw, img_hw):
    """(G, N*h*w) bool: the feature cells (in ``pts_head_memory``'s memory order: camera, row, column) that each
    ground-truth box covers, from the 2D hull box of its 8 projected corners, in every camera that sees it."""
    G, N = len(gt_code), lidar2img.shape[0]
    fh, fw = feat_hw
    out = torch.zeros(G, N, fh, fw, dtype=torch.bool)
    if not G:
        return out.flatten(1)
    c, lwh = gt_code[:, :3].double(), torch.exp(gt_code[:, 3:6]).double()
    yaw = torch.atan2(gt_code[:, 6], gt_code[:, 7]).double()
    sx = torch.tensor([1, 1, -1, -1, 1, 1, -1, -1], dtype=torch.float64)
    sy = torch.tensor([1, -1, -1, 1, 1, -1, -1, 1], dtype=torch.float64)
    sz = torch.tensor([-1, -1, -1, -1, 1, 1, 1, 1], dtype=torch.float64)
    dx, dy, dz = sx * lwh[:, :1] / 2, sy * lwh[:, 1:2] / 2, sz * lwh[:, 2:3] / 2
    cs, sn = torch.cos(yaw)[:, None], torch.sin(yaw)[:, None]
    pts = torch.stack([c[:, :1] + cs * dx - sn * dy, c[:, 1:2] + sn * dx + cs * dy, c[:, 2:3] + dz,
                       torch.ones_like(dx)], -1)  # (G, 8, 4)
    uvd = torch.einsum("nij,gkj->ngki", lidar2img.double(), pts)  # (N, G, 8, 4)
    d = uvd[..., 2]
    u = uvd[..., 0] / d.clamp(min=1e-3) * fw / img_hw[1]
    v = uvd[..., 1] / d.clamp(min=1e-3) * fh / img_hw[0]
    front = (d > 0.3).all(-1)  # (N, G)
    u0, u1 = u.min(-1).values.floor().clamp(0, fw - 1), u.max(-1).values.floor().clamp(0, fw - 1)
    v0, v1 = v.min(-1).values.floor().clamp(0, fh - 1), v.max(-1).values.floor().clamp(0, fh - 1)
    inside = front & (u.max(-1).values >= 0) & (u.min(-1).values < fw) & (v.max(-1).values >= 0) & (v.min(-1).values < fh)
    cols, rows = torch.arange(fw, dtype=torch.float64), torch.arange(fh, dtype=torch.float64)
    for n in range(N):
        for g in inside[n].nonzero()[:, 0].tolist():
            out[g, n] = ((rows[:, None] >= v0[n, g]) & (rows[:, None] <= v1[n, g])
                         & (cols[None] >= u0[n, g]) & (cols[None] <= u1[n, g]))
    return out.flatten(1)


def ray_negatives(gt_code, lidar2img, img_hw, scales=(0.6, 1.6)):
    """Points on the ray from the camera that sees each box best (its centre nearest that camera's optical axis)
    through the box centre, at ``scales`` times the centre's distance from the camera: they project into the box's
    cells but lie in front of or behind it. Denoising negatives: they teach the decoder depth (a query must not
    fire on an object its cell sees at another depth). Returns (len(scales)*G, 3) centres and the gt index each
    belongs to."""
    G = len(gt_code)
    inv = torch.linalg.inv(lidar2img.double())  # (N, 4, 4)
    cam = inv[:, :3, 3] / inv[:, 3, 3:4]  # camera centres: inv @ (0, 0, 0, 1)
    c = gt_code[:, :3].double()
    uvd = torch.einsum("nij,gj->ngi", lidar2img.double(), torch.cat([c, torch.ones(G, 1, dtype=torch.float64)], 1))
    centre = torch.tensor([img_hw[1] / 2, img_hw[0] / 2], dtype=torch.float64)
    axis_off = (uvd[..., :2] / uvd[..., 2:3].clamp(min=1e-3) - centre).norm(dim=-1) + 1e9 * (uvd[..., 2] <= 0.3)
    best = axis_off.argmin(0)
    origin = cam[best]  # (G, 3)
    pts = torch.cat([origin + s * (c - origin) for s in scales]).float()
    return pts, torch.arange(G).repeat(len(scales))


def focal_loss(logits, targets, alpha=0.25, gamma=2.0):
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    pt = p * targets + (1 - p) * (1 - targets)
    return (ce * (1 - pt) ** gamma * (alpha * targets + (1 - alpha) * (1 - targets))).sum()


def evaluate(model, info_pkl, host_kwargs=None) -> dict:
    """The demo's detection metrics (``Detection3DEvaluator``) of ``model`` in PyTorch through the deployed host
    (``pipeline.StreamPETRPipeline``: memory carried, reset per scene) over an info file."""
    from ...evaluate.detection3d import Detection3DEvaluator
    from .pipeline import MEMORY, StreamPETRPipeline

    host = StreamPETRPipeline(**(host_kwargs or DEMO_HOST))
    model.eval()
    stages = {"extract_img_feat": (model.extract_img_feat, ["img_feats"]),
              "position_embedding": (model.position_embedding, ["pos_embed", "cone"]),
              "pts_head_memory": (model.pts_head_memory, ["all_cls_scores", "all_bbox_preds"]
                                  + [f"post_memory_{k}" for k in MEMORY])}

    def call(name, feed):
        module, names = stages[name]
        with torch.no_grad():
            out = module(*[torch.from_numpy(np.asarray(v)) for v in feed.values()])
        return {k: v.numpy() for k, v in zip(names, out if isinstance(out, tuple) else (out,))}

    samples = StreamPETRSamples(info_pkl, classes=CLASSES)
    ev = Detection3DEvaluator(CLASSES)
    for i in range(len(samples)):
        s = samples[i]
        ev.update(host.run(s["inputs"], call), s["target"])
    return ev.compute()


def train(data, out, epochs=28, lr=2e-3, seed=0, radius=4.0, dn_groups=4, dn_min_noise=1.0, dn_split=1.0,
          aux_weight=1.0, align_steps=300, attn_weight=1.0, matched_attn=True, ray_scales=(0.6, 0.8, 1.25, 1.6), sa_init=1.0,
          pretrain_epochs=2,
          model_kwargs=None, device="cpu", minutes=None, log=print, val=None):
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    dev = torch.device(device)
    deadline = time.time() + 60 * minutes if minutes else None
    samples = StreamPETRSamples(Path(data) / "info_train.pkl", classes=CLASSES)
    model = build_model(**(model_kwargs or DEMO)).train()
    head = model.pts_bbox_head
    with torch.no_grad():  # reference points start on a bird's-eye-view grid (jittered) on the ground
        n = head.num_query
        side = int(np.ceil(np.sqrt(n)))
        g = (torch.stack(torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij"), -1).reshape(-1, 2)[:n]
             .float() + 0.5) / side
        head.reference_points.weight[:, :2] = g + (torch.rand(n, 2) - 0.5) * 0.5 / side
        lo, hi = head.pc_range[:3], head.pc_range[3:]
        head.reference_points.weight[:, 2] = float((0.0 - lo[2]) / (hi[2] - lo[2]))
        if sa_init:  # the image features (the cross-attention's values) carry their cell's ray from the start
            for lin in (head.spatial_alignment.gamma, head.spatial_alignment.beta):
                torch.nn.init.normal_(lin.weight, std=sa_init / math.sqrt(lin.in_features))
    aux = AuxHead(head.embed_dims, head.num_classes) if aux_weight else None
    cache = {}

    def sample(j):
        if j not in cache:
            cache[j] = samples[j]
        return cache[j]

    seqs = samples.sequences()
    start = time.time()
    if pretrain_epochs and aux is not None:  # the backbone first learns where objects are (the 2D auxiliary task)
        ps = [*model.img_backbone.parameters(), *model.img_neck.parameters(), *aux.parameters()]
        opt = torch.optim.AdamW(ps, lr=2e-3, weight_decay=1e-4)
        prng = np.random.default_rng(seed + 1)
        for ep in range(pretrain_epochs):
            ls = []
            for j in prng.permutation(len(samples)):
                smp = sample(int(j))
                feats = model.extract_img_feat(torch.from_numpy(smp["inputs"]["img"]))
                gt_code, gt_labels = _targets(smp["target"], head.num_classes)
                loss = aux.loss(feats, torch.from_numpy(smp["inputs"]["lidar2img"]), gt_code, gt_labels,
                                smp["inputs"]["img"].shape[-2:])
                opt.zero_grad()
                loss.backward()
                opt.step()
                ls.append(loss.item())
            log(f"backbone pretraining {ep + 1}/{pretrain_epochs}: 2D auxiliary loss {np.mean(ls):.3f} "
                f"({time.time() - start:.0f} s)")
    if align_steps:
        align_geometry(model, sample(0)["inputs"], steps=align_steps, log=log)
    layers = head.transformer.decoder.layers
    for lay in layers:
        lay.keep_attn = bool(attn_weight)
    model.to(dev)  # the 2D auxiliary head stays on the CPU with the losses (the features come to it)
    params = list(model.parameters()) + (list(aux.parameters()) if aux else [])
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    total = epochs * len(samples)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.1)
    rng = np.random.default_rng(seed)
    lo, hi = head.pc_range[:3], head.pc_range[3:]
    img_meta = None
    history = []
    for epoch in range(epochs):
        model.train()
        losses, match_losses, dn_losses, attn_losses, dn_err = [], [], [], [], []
        for s in rng.permutation(len(seqs)):
            frames = seqs[s]
            mem = model.empty_memory(device=dev)
            first = samples.entries[frames[0]]
            origin_inv = np.linalg.inv(np.asarray(first["ego2global"], np.float64))
            t0 = float(first["timestamp"])
            mem_ts = mem["timestamp"].double()
            for j in frames:
                smp = sample(j)
                ft = {k: (v.to(dev) if torch.is_tensor(v) else v)
                      for k, v in _frame_tensors(smp["inputs"], origin_inv, t0).items()}
                img_hw = tuple(ft["img"].shape[-2:])
                if img_meta is None:
                    img_meta = torch.tensor([*img_hw, 3], dtype=torch.float32, device=dev)
                feats = model.extract_img_feat(ft["img"])
                pos, cone = model.position_embedding(img_meta, ft["intrinsics"], ft["img2lidar"])
                mem["timestamp"] = (mem_ts + ft["t"]).float()
                m_ego = memory_to_ego(mem, ft["pose_inv"], head.memory_len)
                gt_code, gt_labels = _targets(smp["target"], head.num_classes)
                lidar2img = torch.from_numpy(smp["inputs"]["lidar2img"])
                Q = head.num_query
                dn, E = None, 0
                if len(gt_labels):
                    centre, dn_gt = dn_queries(gt_code, dn_groups, dn_min_noise, dn_split)
                    groups = dn_groups
                    if ray_scales:  # one more group: depth negatives on the camera rays through the boxes
                        neg, neg_gt = ray_negatives(gt_code, lidar2img[0], img_hw, ray_scales)
                        centre = torch.cat([centre, neg])
                        groups = dn_groups + len(ray_scales)
                    else:
                        neg_gt = torch.zeros(0, dtype=torch.long)
                    dn = ((centre - lo.cpu()) / (hi - lo).cpu()).clamp(0.01, 0.99).unsqueeze(0).to(dev)
                    E = len(centre)
                    dn_target = torch.cat([dn_gt, torch.full_like(neg_gt, -1)])  # class/box target, -1: none
                    dn_owner = torch.cat([dn_gt, neg_gt])  # the box each dn query belongs to
                    dn_pos = torch.cat([dn_gt >= 0, torch.zeros(len(neg_gt), dtype=torch.bool)])
                    dn_ray = torch.cat([torch.zeros(len(dn_gt), dtype=torch.bool), torch.ones(len(neg_gt), dtype=torch.bool)])
                cls, bbox, outs_dec = head.forward_head(feats, pos, cone, m_ego, dn_reference=dn,
                                                        dn_groups=groups if E else 1)
                cls, bbox = cls.cpu(), bbox.cpu()
                keep = torch.cat([torch.arange(Q), torch.arange(Q + E, cls.shape[2])])
                loss, assigned = frame_loss(cls[:, :, keep], bbox[:, :, keep], gt_code, gt_labels, head.num_classes,
                                            radius, return_assigned=True)
                match_losses.append(loss.item())
                if aux is not None:
                    loss = loss + aux_weight * aux.loss(feats.cpu(), lidar2img,
                                                        gt_code, gt_labels, img_hw)
                if E:
                    target = torch.zeros(E, head.num_classes)
                    target[dn_target >= 0, gt_labels[dn_target[dn_target >= 0]]] = 1.0
                    dl = set_loss(cls[:, :, Q:Q + E], bbox[:, :, Q:Q + E], target, dn_target, gt_code)
                    dn_losses.append(dl.item())
                    loss = loss + dl
                    with torch.no_grad():
                        p = dn_target >= 0
                        dn_err.append(float((bbox[-1, 0, Q:Q + E][p, :2] - gt_code[dn_target[p], :2]).norm(dim=1).mean()))
                    if attn_weight:
                        # the cross-attention of the dn queries on their box's cells, of the depth negatives off them,
                        # and (``matched_attn``) of the learned queries matched to a box on its cells
                        box_cells = object_cells(gt_code, lidar2img[0], (model.feat_h, model.feat_w), img_hw)
                        rows = torch.arange(Q, Q + E)
                        owner, positive, sel = dn_owner, dn_pos, dn_pos | dn_ray
                        if matched_attn:
                            m = (assigned >= 0).nonzero()[:, 0]
                            rows = torch.cat([rows, keep[m]])
                            owner = torch.cat([owner, assigned[m]])
                            positive = torch.cat([positive, torch.ones(len(m), dtype=torch.bool)])
                            sel = torch.cat([sel, torch.ones(len(m), dtype=torch.bool)])
                        cells = box_cells[owner].float()
                        has = (cells.sum(-1) > 0) & sel
                        al = 0.0
                        for lay in layers:
                            a = lay.last_attn[0, rows].cpu()  # (rows, cells), mean over heads
                            mass = (a * cells).sum(-1).clamp(1e-6, 1 - 1e-6)
                            term = torch.where(positive, -mass.log(), -(1 - mass).log())
                            al = al + (term * has).sum() / max(1, int(has.sum()))
                        attn_losses.append(float(al.detach()))
                        loss = loss + attn_weight * al
                cls, bbox, outs_dec = cls[:, :, keep], bbox[:, :, keep], outs_dec[:, :, keep]
                opt.zero_grad()
                loss.backward()  # the memory is detached between frames: one step per frame (streaming training)
                torch.nn.utils.clip_grad_norm_(params, 10.0)
                opt.step()
                sched.step()
                losses.append(loss.item())
                post = head.update_memory(cls.to(dev), bbox.to(dev), outs_dec, m_ego, ft["pose"])
                mem = {k: v.detach()[:, :head.memory_len] for k, v in
                       zip(("embedding", "reference_point", "timestamp", "egopose", "velo"), post)}
                mem_ts = mem["timestamp"].double() - ft["t"]
        msg = (f"epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f} (matched queries {np.mean(match_losses):.3f}, "
               f"denoising {np.mean(dn_losses):.3f}, attention {np.mean(attn_losses) if attn_losses else 0:.3f}, "
               f"dn centre error {np.mean(dn_err):.2f} m; {time.time() - start:.0f} s)")
        if val:
            r = evaluate(model.cpu(), val)
            model.to(dev)
            history.append(r["mAP"])
            msg += f", val mAP {r['mAP']:.4f} (" + ", ".join(
                f"AP@{t:g}m {np.mean([d[f'AP@{t:g}m'] for d in r['per_class_detail'].values() if d]):.3f}"
                for t in (0.5, 1, 2, 4)) + ")"
        log(msg)
        if deadline and time.time() > deadline:
            log(f"time budget of {minutes} min spent after epoch {epoch + 1}")
            break
    for lay in layers:
        lay.keep_attn, lay.last_attn = False, None
    model.cpu().eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    tmp = out.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(out)
    return out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/synthetic/streampetr")
    ap.add_argument("--out", default=str(CHECKPOINT))
    ap.add_argument("--epochs", type=int, default=28)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--aux-weight", type=float, default=1.0, help="2D auxiliary loss weight (0: none)")
    ap.add_argument("--align-steps", type=int, default=300, help="geometry warm-start steps (0: none)")
    ap.add_argument("--attn-weight", type=float, default=1.0, help="denoising queries' attention loss (0: none)")
    ap.add_argument("--matched-attn", type=int, default=1, help="attention loss on the matched learned queries too")
    ap.add_argument("--ray-scales", type=float, nargs="*", default=[0.6, 0.8, 1.25, 1.6],
                    help="depth negatives on the camera ray at these multiples of the box distance (none: off)")
    ap.add_argument("--sa-init", type=float, default=1.0, help="spatial_alignment MLN weight init std (0: zeros)")
    ap.add_argument("--pretrain-epochs", type=int, default=2, help="backbone + 2D auxiliary head epochs first")
    ap.add_argument("--num-query", type=int, default=None, help="override the demo's num_query")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--minutes", type=float, default=None, help="stop after the epoch that passes this budget")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--val", default=None, help="an info file evaluated (mAP) after every epoch")
    args = ap.parse_args(argv)
    kwargs = dict(DEMO, **({"num_query": args.num_query} if args.num_query else {}))
    print(train(args.data, args.out, epochs=args.epochs, lr=args.lr, aux_weight=args.aux_weight,
                align_steps=args.align_steps, attn_weight=args.attn_weight,
                matched_attn=bool(args.matched_attn), ray_scales=tuple(args.ray_scales),
                sa_init=args.sa_init, pretrain_epochs=args.pretrain_epochs, model_kwargs=kwargs, device=args.device,
                minutes=args.minutes, seed=args.seed, val=args.val, log=lambda m: print(m, flush=True)))


if __name__ == "__main__":
    main()
