"""Train a small YOLOX deterministically on the synthetic COCO data (CPU, minutes).

    python -m pytest_autoware_deploy.models.yolox.train --scene traffic_light \
        --data data/synthetic/yolox_traffic_light --out checkpoints/yolox_opt_tl_w0125_128.pth

The loss is YOLOX's (mmdet ``YOLOXHead.loss_by_feat``): SimOTA assignment (candidates inside the
box or within 2.5 strides of its centre, cost = class BCE + 3 x -log IoU, dynamic k from the top-10
IoUs), objectness BCE over all anchors, IoU-aware class BCE and 5 x (1 - IoU^2) on the positives.
Mosaic/MixUp are left out (small images, few epochs): random flips and brightness jitter only.
The checkpoint is saved in float16 (half the bytes; loading casts back to float32) and the
reported mAP is measured after that rounding. Deterministic: one thread, fixed seeds.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..coco import ensure_splits, ship_float16
from .dataset import CocoDetectionSamples
from .model import build_model, grid_priors
from .synthetic import SCENES, SEEDS, SPLITS, write_split


def flat_predictions(levels, strides):
    """Per image rows over all levels: decoded x1y1x2y2 boxes, class logits, objectness logit, priors."""
    import torch

    boxes, cls_l, obj_l, priors = [], [], [], []
    for (cls, reg, obj), s in zip(levels, strides):
        b, c, h, w = cls.shape
        grid = grid_priors(h, w, s) * s
        reg = reg.flatten(2).permute(0, 2, 1)
        xy = reg[..., :2] * s + grid
        wh = torch.exp(reg[..., 2:].clamp(max=10)) * s
        boxes.append(torch.cat((xy - wh / 2, xy + wh / 2), -1))
        cls_l.append(cls.flatten(2).permute(0, 2, 1))
        obj_l.append(obj.flatten(2).permute(0, 2, 1)[..., 0])
        priors.append(torch.cat((grid, torch.full((h * w, 1), float(s))), 1))
    return torch.cat(boxes, 1), torch.cat(cls_l, 1), torch.cat(obj_l, 1), torch.cat(priors, 0)


def box_iou(a, b):
    import torch

    lt = torch.maximum(a[:, None, :2], b[None, :, :2])
    rb = torch.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = (rb - lt).clamp(min=0).prod(-1)
    area_a = (a[:, 2:] - a[:, :2]).clamp(min=0).prod(-1)
    area_b = (b[:, 2:] - b[:, :2]).clamp(min=0).prod(-1)
    return inter / (area_a[:, None] + area_b[None] - inter + 1e-9)


def simota(priors, boxes, cls_logits, obj_logits, gt_boxes, gt_labels, num_classes, radius=2.5):
    """Returns (foreground mask (A,), matched gt index per foreground anchor)."""
    import torch
    import torch.nn.functional as F

    a = len(priors)
    fg = torch.zeros(a, dtype=torch.bool)
    if len(gt_boxes) == 0:
        return fg, torch.zeros(0, dtype=torch.long)
    px, py, ps = priors[:, 0], priors[:, 1], priors[:, 2]
    in_box = ((px[None] > gt_boxes[:, 0:1]) & (px[None] < gt_boxes[:, 2:3]) &
              (py[None] > gt_boxes[:, 1:2]) & (py[None] < gt_boxes[:, 3:4]))
    cx, cy = (gt_boxes[:, 0:1] + gt_boxes[:, 2:3]) / 2, (gt_boxes[:, 1:2] + gt_boxes[:, 3:4]) / 2
    in_ctr = ((px[None] - cx).abs() < radius * ps[None]) & ((py[None] - cy).abs() < radius * ps[None])
    valid = (in_box | in_ctr).any(0)
    if not valid.any():
        return fg, torch.zeros(0, dtype=torch.long)
    vidx = torch.where(valid)[0]
    ious = box_iou(gt_boxes, boxes[vidx])
    scores = (cls_logits[vidx].sigmoid() * obj_logits[vidx, None].sigmoid()).sqrt()
    onehot = F.one_hot(gt_labels, num_classes).float()
    cls_cost = F.binary_cross_entropy(scores[None].expand(len(gt_boxes), -1, -1).clamp(1e-6, 1 - 1e-6),
                                      onehot[:, None].expand(-1, len(vidx), -1), reduction="none").sum(-1)
    cost = cls_cost + 3.0 * -torch.log(ious + 1e-8) + 1e5 * (~(in_box[:, vidx] & in_ctr[:, vidx])).float()
    k = torch.clamp(ious.topk(min(10, len(vidx)), 1).values.sum(1).int(), min=1)
    match = torch.zeros_like(cost, dtype=torch.bool)
    for g in range(len(gt_boxes)):
        match[g, cost[g].topk(int(k[g]), largest=False).indices] = True
    multi = match.sum(0) > 1
    if multi.any():
        best = cost[:, multi].argmin(0)
        match[:, multi] = False
        match[best, torch.where(multi)[0]] = True
    assigned = match.any(0)
    fg[vidx[assigned]] = True
    return fg, match[:, assigned].float().argmax(0)


def yolox_loss(model, x, targets, num_classes):
    import torch
    import torch.nn.functional as F

    boxes, cls_l, obj_l, priors = flat_predictions(model.forward_raw(x), model.bbox_head.strides)
    obj_t = torch.zeros_like(obj_l)
    cls_terms, box_terms, n_fg = [], [], 0
    for b, (gt_boxes, gt_labels) in enumerate(targets):
        with torch.no_grad():
            fg, gt_idx = simota(priors, boxes[b].detach(), cls_l[b].detach(), obj_l[b].detach(), gt_boxes,
                                gt_labels, num_classes)
        if fg.any():
            obj_t[b, fg] = 1.0
            iou = box_iou(boxes[b, fg], gt_boxes[gt_idx]).diagonal()
            cls_t = F.one_hot(gt_labels[gt_idx], num_classes).float() * iou.detach()[:, None]
            cls_terms.append(F.binary_cross_entropy_with_logits(cls_l[b, fg], cls_t, reduction="sum"))
            box_terms.append((1 - iou ** 2).sum())
            n_fg += int(fg.sum())
    n = max(n_fg, 1)
    loss = F.binary_cross_entropy_with_logits(obj_l, obj_t, reduction="sum") / n
    if cls_terms:
        loss = loss + torch.stack(cls_terms).sum() / n + 5.0 * torch.stack(box_terms).sum() / n
    return loss


def _batch(ds, idx, rng, augment):
    import torch

    xs, targets = [], []
    for i in idx:
        s = ds[int(i)]
        x = s["inputs"][ds.input_name][0].copy()
        boxes = s["target"]["boxes"].copy()
        if augment:
            if rng.random() < 0.5:
                x = x[:, :, ::-1].copy()
                w = x.shape[2]
                boxes[:, [0, 2]] = w - boxes[:, [2, 0]]
            x = np.clip(x * rng.uniform(0.7, 1.3) + rng.uniform(-20, 20), 0, 255).astype(np.float32)
        xs.append(x)
        targets.append((torch.from_numpy(boxes).float(), torch.from_numpy(s["target"]["labels"])))
    return torch.from_numpy(np.stack(xs)), targets


def evaluate_map(model, ds, score_thr=0.01) -> dict:
    """COCO mAP of the model on ``ds`` through the same evaluator the plugin uses."""
    import torch

    from pytest_autoware_deploy.evaluate.detection2d import Detection2DEvaluator

    ev = Detection2DEvaluator(class_names=ds.class_names, score_thr=score_thr)
    model.eval()
    with torch.inference_mode():
        for i in range(len(ds)):
            s = ds[i]
            ev.update({"output": model(torch.from_numpy(s["inputs"][ds.input_name])).numpy()}, s["target"])
    return ev.compute()


def train(scene, data, out, epochs=30, batch=16, lr=4e-3, widen=0.125, deepen=0.33, size=128, threads=1):
    import torch

    torch.manual_seed(0)
    torch.set_num_threads(threads)
    data = Path(data)
    ensure_splits(data, lambda split: write_split(data, scene, split, SPLITS[split], SEEDS[split], size))
    train_ds = CocoDetectionSamples(data / "annotations_train.json", input_size=size)
    val_ds = CocoDetectionSamples(data / "annotations_val.json", input_size=size)
    num_classes = len(SCENES[scene])
    model = build_model(num_classes, deepen, widen)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=5e-4)
    steps = epochs * ((len(train_ds) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.15)
    rng = np.random.default_rng(0)
    for epoch in range(epochs):
        start, total = time.time(), 0.0
        model.train()
        order = rng.permutation(len(train_ds))
        for k in range(0, len(order), batch):
            x, targets = _batch(train_ds, order[k:k + batch], rng, augment=True)
            loss = yolox_loss(model, x, targets, num_classes)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 10.0)
            opt.step()
            sched.step()
            total += float(loss.detach())
        msg = f"[train] epoch {epoch + 1}/{epochs} loss {total / ((len(order) + batch - 1) // batch):.3f}"
        if (epoch + 1) % 10 == 0 or epoch + 1 == epochs:
            r = evaluate_map(model, val_ds)
            msg += f" val mAP {r['mAP']:.3f} AP50 {r['AP50']:.3f}"
        print(msg + f" ({time.time() - start:.0f}s)", flush=True)
    state = ship_float16(model)  # measure what ships: the float16-rounded weights
    result = evaluate_map(model, val_ds)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": state, "meta": {"scene": scene, "classes": list(SCENES[scene]), "widen_factor": widen,
                                             "deepen_factor": deepen, "input_size": size, "epochs": epochs,
                                             "val_mAP": result["mAP"], "val_AP50": result["AP50"]}}, out)
    print(f"[train] saved {out}: val mAP {result['mAP']:.4f} AP50 {result['AP50']:.4f} "
          f"per class {result['per_class']}", flush=True)
    return result


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scene", choices=sorted(SCENES), required=True)
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--epochs", type=int, default=30)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--widen", type=float, default=0.125)
    a = p.parse_args(argv)
    train(a.scene, a.data, a.out, epochs=a.epochs, size=a.size, widen=a.widen)


if __name__ == "__main__":
    main()
