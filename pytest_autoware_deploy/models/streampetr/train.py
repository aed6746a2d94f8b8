"""Train the demo StreamPETR on the synthetic camera sequences (deterministic, one CPU thread).

Streaming training as StreamPETR does it: each step runs a scene's frames in order, the memory queue
of one frame (detached) is the next frame's, reset at the scene start. Loss: focal loss on the class
scores and L1 on the box code, with the assignment simplified for a CPU budget of minutes: every ground
truth box takes the query whose reference point (the learned ``reference_points`` and the propagated
memory entries alike) lies nearest in the bird's-eye view, within ``assign_radius`` metres, instead of
StreamPETR's Hungarian matching (which needs many epochs to converge). Images are fed through the same
``dataset.StreamPETRSamples`` and the memory through the same graph modules the deployment exports.

    python -m pytest_autoware_deploy.models.streampetr.train --data data/synthetic/streampetr \
        --out pytest_autoware_deploy/models/streampetr/checkpoints/streampetr_demo.pth
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .dataset import StreamPETRSamples
from .model import build_model, memory_to_ego

DEMO = dict(num_classes=3, num_cameras=5, img_size=[64, 112], backbone_channels=[16, 32, 64], stem=16,
            backbone_strides=[2, 2, 1], embed_dims=64, num_query=64, memory_len=128, topk_proposals=32, num_propagated=32, num_layers=2, num_heads=4,
            ffn_dims=128, depth_num=16, depth_start=1.0, depth_max=30.0, pc_range=[-20.0, -20.0, -2.0, 20.0, 20.0, 4.0])
CLASSES = ["car", "bicycle", "pedestrian"]


def _frame_tensors(inputs, origin_inv, t0):
    pose = origin_inv @ inputs["ego2global"][0]
    img2lidar = np.linalg.inv(inputs["lidar2img"].astype(np.float64)).astype(np.float32)
    return dict(img=torch.from_numpy(inputs["img"]), intrinsics=torch.from_numpy(inputs["intrinsics"]),
                img2lidar=torch.from_numpy(img2lidar), pose=torch.from_numpy(pose[None].astype(np.float32)),
                pose_inv=torch.from_numpy(np.linalg.inv(pose)[None].astype(np.float32)),
                t=float(inputs["timestamp"][0]) - t0)


def _targets(target, num_classes):
    b = target["boxes_3d"]
    code = np.zeros((len(b), 10), np.float32)
    code[:, 0:2] = b[:, 0:2]
    code[:, 2] = b[:, 2] + b[:, 5] / 2
    code[:, 3:6] = np.log(b[:, 3:6])
    code[:, 6], code[:, 7] = np.sin(b[:, 6]), np.cos(b[:, 6])
    code[:, 8:10] = b[:, 7:9]
    return torch.from_numpy(code), torch.from_numpy(target["labels"])


def frame_loss(cls, bbox, ref_xy, gt_code, gt_labels, num_classes, radius):
    """Focal + L1; cls (L, 1, Q, C), bbox (L, 1, Q, 10), ref_xy (Q, 2) metres. One-to-one greedy matching on
    the last layer's predictions (centre distance / radius + the class cost), every ground truth matched."""
    Q = cls.shape[2]
    target_cls = torch.zeros(Q, num_classes)
    assigned = torch.full((Q,), -1, dtype=torch.long)
    if len(gt_labels):
        with torch.no_grad():
            pred_xy = bbox[-1, 0, :, :2]
            prob = cls[-1, 0].sigmoid()[:, gt_labels].T  # (G, Q)
            cost = torch.cdist(gt_code[:, :2], pred_xy) / radius - prob
            cost = cost + 0.1 * torch.cdist(gt_code[:, :2], ref_xy) / radius
            taken_g = torch.zeros(len(gt_labels), dtype=torch.bool)
            for flat in torch.argsort(cost.flatten()):
                g, q = int(flat) // Q, int(flat) % Q
                if taken_g[g] or assigned[q] >= 0:
                    continue
                assigned[q], taken_g[g] = g, True
                target_cls[q, gt_labels[g]] = 1.0
                if taken_g.all():
                    break
    pos = assigned >= 0
    loss = 0.0
    weights = torch.tensor([1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.2, 0.2])
    for lvl in range(cls.shape[0]):
        loss = loss + torchvision_focal(cls[lvl, 0], target_cls) / max(1, int(pos.sum()))
        if pos.any():
            loss = loss + (weights * (bbox[lvl, 0][pos] - gt_code[assigned[pos]]).abs()).sum() / int(pos.sum())
    return loss


def dn_loss(cls, bbox, gt_code, gt_labels, num_classes):
    """Denoising queries: query i reconstructs ground truth i (class and box)."""
    G = len(gt_labels)
    target = F.one_hot(gt_labels, num_classes).float()
    weights = torch.tensor([1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.5, 0.2, 0.2])
    loss = 0.0
    for lvl in range(cls.shape[0]):
        loss = loss + torchvision_focal(cls[lvl, 0], target) / G
        loss = loss + (weights * (bbox[lvl, 0] - gt_code).abs()).sum() / G
    return loss


def torchvision_focal(logits, targets, alpha=0.25, gamma=2.0):
    p = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    pt = p * targets + (1 - p) * (1 - targets)
    return (ce * (1 - pt) ** gamma * (alpha * targets + (1 - alpha) * (1 - targets))).sum()


def train(data, out, epochs=10, lr=2e-3, seed=0, radius=4.0, dn_noise=1.0, log=print):
    torch.manual_seed(seed)
    torch.set_num_threads(1)
    samples = StreamPETRSamples(Path(data) / "info_train.pkl", classes=CLASSES)
    model = build_model(**DEMO).train()
    head = model.pts_bbox_head
    with torch.no_grad():  # reference points start on a bird's-eye-view grid (jittered), so every object has a near query
        n = head.num_query
        side = int(np.ceil(np.sqrt(n)))
        g = (torch.stack(torch.meshgrid(torch.arange(side), torch.arange(side), indexing="ij"), -1).reshape(-1, 2)[:n]
             .float() + 0.5) / side
        head.reference_points.weight[:, :2] = g + (torch.rand(n, 2) - 0.5) * 0.5 / side
        head.reference_points.weight[:, 2] = 0.3
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    seqs = samples.sequences()
    total = epochs * len(samples)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=total, pct_start=0.1)
    rng = np.random.default_rng(seed)
    cache = {}
    start = time.time()
    lo, hi = head.pc_range[:3], head.pc_range[3:]
    for epoch in range(epochs):
        losses = []
        for s in rng.permutation(len(seqs)):
            frames = seqs[s]
            mem = model.empty_memory()
            first = samples.entries[frames[0]]
            origin_inv = np.linalg.inv(np.asarray(first["ego2global"], np.float64))
            t0 = float(first["timestamp"])
            mem_ts = mem["timestamp"].double()
            for j in frames:
                if j not in cache:
                    cache[j] = samples[j]
                smp = cache[j]
                ft = _frame_tensors(smp["inputs"], origin_inv, t0)
                feats = model.extract_img_feat(ft["img"])
                pos, cone = model.position_embedding(torch.tensor([*ft["img"].shape[-2:], 3], dtype=torch.float32),
                                                     ft["intrinsics"], ft["img2lidar"])
                mem["timestamp"] = (mem_ts + ft["t"]).float()
                m_ego = memory_to_ego(mem, ft["pose_inv"], head.memory_len)
                gt_code, gt_labels = _targets(smp["target"], head.num_classes)
                G, Q = len(gt_labels), head.num_query
                dn = None
                if G:  # query denoising: GT centres moved up to dn_noise metres, each must give back its box
                    centre = gt_code[:, :3] + torch.cat([(torch.rand(G, 2) * 2 - 1) * dn_noise, torch.zeros(G, 1)], 1)
                    dn = ((centre - lo) / (hi - lo)).clamp(0.01, 0.99).unsqueeze(0)
                cls, bbox, outs_dec = head.forward_head(feats, pos, cone, m_ego, dn_reference=dn)
                keep = torch.cat([torch.arange(Q), torch.arange(Q + G, cls.shape[2])])
                ref = torch.cat([head.reference_points.weight, ((m_ego["reference_point"][0, :head.num_propagated] - lo)
                                                                / (hi - lo))], 0)
                ref_xy = (ref[:, :2].clamp(0, 1) * (hi - lo)[:2] + lo[:2]).detach()
                loss = frame_loss(cls[:, :, keep], bbox[:, :, keep], ref_xy, gt_code, gt_labels, head.num_classes,
                                  radius)
                if G:
                    loss = loss + dn_loss(cls[:, :, Q:Q + G], bbox[:, :, Q:Q + G], gt_code, gt_labels, head.num_classes)
                cls, bbox, outs_dec = cls[:, :, keep], bbox[:, :, keep], outs_dec[:, :, keep]
                opt.zero_grad()
                loss.backward()  # the memory is detached between frames: one step per frame (streaming training)
                torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
                opt.step()
                sched.step()
                losses.append(loss.item())
                post = head.update_memory(cls, bbox, outs_dec, m_ego, ft["pose"])
                mem = {k: v.detach()[:, :head.memory_len] for k, v in
                       zip(("embedding", "reference_point", "timestamp", "egopose", "velo"), post)}
                mem_ts = mem["timestamp"].double() - ft["t"]
        log(f"epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f} ({time.time() - start:.0f} s)")
    model.eval()
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
    ap.add_argument("--out", default=str(Path(__file__).parent / "checkpoints" / "streampetr_demo.pth"))
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--lr", type=float, default=2e-3)
    args = ap.parse_args(argv)
    print(train(args.data, args.out, epochs=args.epochs, lr=args.lr, log=lambda m: print(m, flush=True)))


if __name__ == "__main__":
    main()
