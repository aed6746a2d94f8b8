"""Train the bundled demo TransFusion-L deterministically on the synthetic lidar scenes (CPU, minutes).

    python -m pytest_autoware_deploy.models.transfusion_lidar.train --data data/synthetic/lidar

mmdet3d's TransFusionHead training, reduced: gaussian focal loss on the dense heatmap; every ground
truth is assigned one query by a *greedy* minimum-cost matching (cost 0.15 class + 0.25 BEV L1 centre,
as the config's FocalLossCost / BBoxBEVL1Cost; mmdet3d solves it with scipy's Hungarian solver, not
installed here), sigmoid focal loss on the queries' class logits and L1 on centre / height / log-size /
sin-cos / velocity of the assigned ones. The shipped checkpoint was produced by this script with its
defaults; the PyTorch BEV mAP on the val split is printed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..lidar_common.synthetic import CLASSES
from ..lidar_common.training import (CODE_WEIGHTS, augment, centre_targets, gaussian_focal_loss, optimizer,
                                     save_half, step, training_frames)
from .model import build_model
from .pipeline import TransFusionPipeline

_RANGE = (-32.0, -32.0, -3.0, 32.0, 32.0, 5.0)
DEMO_MODEL = dict(num_classes=3, in_channels=4, pfn_channels=(16, 16), voxel_size=(0.32, 0.32, 8.0),
                  point_cloud_range=_RANGE, backbone_channels=(16, 32, 64), layer_nums=(1, 2, 2),
                  layer_strides=(1, 2, 2), neck_channels=(32, 32, 32), upsample_strides=(0.5, 1, 2), out_size_factor=2,
                  num_proposals=50, hidden_channel=32, num_heads=4, ffn_channels=64, num_decoder_layers=1)
DEMO_HOST = dict(voxel_size=(0.32, 0.32, 8.0), point_cloud_range=_RANGE, max_points=20, max_voxels=30000,
                 use_dims=(0, 1, 2, 3), out_size_factor=2, score_threshold=0.1)


def greedy_assign(cost):
    """One query per ground truth (columns), cheapest pairs first: ``[(query, gt), ...]``."""
    pairs, used_q, used_g = [], set(), set()
    for flat in np.argsort(cost, axis=None, kind="stable"):
        q, g = divmod(int(flat), cost.shape[1])
        if q not in used_q and g not in used_g:
            pairs.append((q, g))
            used_q.add(q)
            used_g.add(g)
            if len(used_g) == cost.shape[1]:
                break
    return pairs


def query_losses(res, targets):
    """Focal loss on query classes and L1 on the assigned queries' boxes; ``targets`` per frame (labels, regs)."""
    import torch

    logits = res["heatmap"]  # (B, C, P)
    pred_box = torch.cat([res["center"], res["height"], res["dim"], res["rot"], res["vel"]], 1)  # (B, 10, P)
    cls_t = torch.zeros_like(logits)
    b_idx, q_idx, reg_t = [], [], []
    for b, (labels, regs) in enumerate(targets):
        if not len(labels):
            continue
        with torch.no_grad():
            p = logits[b].sigmoid().T.numpy()  # (P, C)
            cls_cost = -np.log(np.clip(p[:, labels], 1e-6, 1)) * 0.75 * (1 - p[:, labels]) ** 2
            centre = pred_box[b, :2].T.numpy()
            cost = 0.15 * cls_cost + 0.25 * np.abs(centre[:, None, :] - regs[None, :, :2]).sum(-1)
        for q, g in greedy_assign(cost):
            cls_t[b, labels[g], q] = 1.0
            b_idx.append(b)
            q_idx.append(q)
            reg_t.append(regs[g])
    num = max(len(q_idx), 1)
    prob = logits.sigmoid()
    ce = torch.nn.functional.binary_cross_entropy_with_logits(logits, cls_t, reduction="none")
    p_t = prob * cls_t + (1 - prob) * (1 - cls_t)
    alpha = 0.25 * cls_t + 0.75 * (1 - cls_t)
    l_cls = (alpha * (1 - p_t) ** 2 * ce).sum() / num
    if not q_idx:
        return l_cls, l_cls.detach() * 0
    got = pred_box[torch.tensor(b_idx), :, torch.tensor(q_idx)]  # (n, 10)
    l_box = (torch.abs(got - torch.from_numpy(np.stack(reg_t))) * torch.tensor(CODE_WEIGHTS)).sum() / num * 0.25
    return l_cls, l_box


def train(data, out, epochs=20, batch=4, lr=2e-3, threads=1, seed=0):
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    frames = training_frames(data, CLASSES)
    host = TransFusionPipeline(**DEMO_HOST)
    model = build_model(**DEMO_MODEL)
    osf = DEMO_MODEL["out_size_factor"]
    opt, sched = optimizer(model, lr, epochs * (len(frames) // batch))
    rng = np.random.default_rng(seed)
    start = time.time()
    for epoch in range(epochs):
        model.train()
        e2e = model.end2end
        order = rng.permutation(len(frames))
        tot = np.zeros(3)
        for s in range(len(frames) // batch):
            feats, heats, targets = [], [], []
            for i in order[s * batch:(s + 1) * batch]:
                pts, boxes = augment(frames[i]["inputs"]["points"], frames[i]["target"]["boxes_3d"], rng)
                vox = host.preprocess(pts)
                feats.append(e2e.bev(*[torch.from_numpy(v) for v in vox.values()])[0])
                heat, _, labels, regs = centre_targets(boxes, frames[i]["target"]["labels"], len(CLASSES), _RANGE,
                                                       DEMO_HOST["voxel_size"], (model.nx, model.ny), osf)
                heats.append(heat)
                targets.append((labels, regs.astype(np.float32)))
            res = model.pts_bbox_head.forward_dict([torch.cat(feats)])
            l_heat = gaussian_focal_loss(res["dense_heatmap"], torch.from_numpy(np.stack(heats)))
            l_cls, l_box = query_losses(res, targets)
            step(model, opt, sched, l_heat + l_cls + l_box)
            tot += [float(l_heat), float(l_cls), float(l_box)]
        n = len(frames) // batch
        print(f"epoch {epoch + 1}/{epochs}: heatmap {tot[0] / n:.3f} cls {tot[1] / n:.3f} box {tot[2] / n:.3f} "
              f"({time.time() - start:.0f} s)", flush=True)
    save_half(model, out, start)
    return model


def main(argv=None):
    from ..lidar_common.torch_stage import evaluate_pipeline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/synthetic/lidar")
    ap.add_argument("--out", default=str(Path(__file__).parent / "checkpoints" / "transfusion_l_pillar032_demo.pth"))
    ap.add_argument("--epochs", type=int, default=20)
    args = ap.parse_args(argv)
    model = train(args.data, args.out, epochs=args.epochs)
    res = evaluate_pipeline(model, TransFusionPipeline(**DEMO_HOST), {"end2end": ["cls_score0", "bbox_pred0",
                                                                                  "dir_cls_pred0"]},
                            Path(args.data) / "info_val.pkl", CLASSES)
    print({k: v for k, v in res.items() if not k.startswith("per_class")})
    print(res["per_class_detail"])


if __name__ == "__main__":
    main()
