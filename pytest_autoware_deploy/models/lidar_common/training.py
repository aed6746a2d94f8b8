"""Training pieces shared by the demo CenterPoint and TransFusion-L scripts (mmdet3d's recipes, reduced).

``augment``: random flips and a rotation of the sweep and its boxes (mmdet3d's RandomFlip3D and
GlobalRotScaleTrans without scaling). ``centre_targets``: CenterHead's gaussian heatmaps (radius from
``gaussian_radius`` at overlap 0.1, at least ``min_radius`` cells) and each object's centre cell and
regression target. ``gaussian_focal_loss``: mmdet's GaussianFocalLoss on logits.
"""

from __future__ import annotations

import time

import numpy as np

from .boxes import draw_gaussian, gaussian_radius


def augment(points, boxes, rng):
    """Random flips about x and y and a rotation about z, applied to the sweep and its boxes alike."""
    points, boxes = points.copy(), boxes.copy()
    if rng.random() < 0.5:
        points[:, 1] *= -1
        boxes[:, 1] *= -1
        boxes[:, 6] *= -1
        boxes[:, 8] *= -1
    if rng.random() < 0.5:
        points[:, 0] *= -1
        boxes[:, 0] *= -1
        boxes[:, 6] = np.pi - boxes[:, 6]
        boxes[:, 7] *= -1
    a = rng.uniform(-np.pi / 4, np.pi / 4)
    c, s = np.cos(a), np.sin(a)
    rot = np.array([[c, -s], [s, c]], np.float32)
    points[:, :2] = points[:, :2] @ rot.T
    boxes[:, :2] = boxes[:, :2] @ rot.T
    boxes[:, 7:9] = boxes[:, 7:9] @ rot.T
    boxes[:, 6] += a
    return points, boxes


def centre_targets(boxes, labels, num_classes, point_cloud_range, voxel_size, grid_xy, out_size_factor,
                   min_radius=2, overlap=0.1):
    """Heatmap ``(C, H, W)`` and, per object inside the grid: flat cell index, label and the target
    ``[cx, cy (cells, continuous), z_centre, log l, log w, log h, sin yaw, cos yaw, vx, vy]``."""
    nx, ny = grid_xy[0] // out_size_factor, grid_xy[1] // out_size_factor
    cell = np.array(voxel_size[:2]) * out_size_factor
    heat = np.zeros((num_classes, ny, nx), np.float32)
    inds, labs, regs = [], [], []
    for box, label in zip(boxes, labels):
        l, w, h = box[3:6]
        cx, cy = (box[0] - point_cloud_range[0]) / cell[0], (box[1] - point_cloud_range[1]) / cell[1]
        ix, iy = int(cx), int(cy)
        if not (0 <= ix < nx and 0 <= iy < ny):
            continue
        radius = max(min_radius, int(gaussian_radius(w / cell[1], l / cell[0], overlap)))
        draw_gaussian(heat[label], ix, iy, radius)
        inds.append(iy * nx + ix)
        labs.append(int(label))
        regs.append([cx, cy, box[2] + h / 2, np.log(l), np.log(w), np.log(h), np.sin(box[6]), np.cos(box[6]),
                     box[7], box[8]])
    return heat, np.asarray(inds, np.int64), np.asarray(labs, np.int64), np.asarray(regs, np.float64).reshape(-1, 10)


def gaussian_focal_loss(logits, target):
    """mmdet's GaussianFocalLoss (alpha 2, gamma 4) on sigmoid(logits), normalised by the positives."""
    import torch

    pred = torch.clamp(logits.sigmoid(), 1e-4, 1 - 1e-4)
    pos = target.eq(1).float()
    loss = -(torch.log(pred) * (1 - pred) ** 2 * pos + torch.log(1 - pred) * pred ** 2 * (1 - target) ** 4 * (1 - pos))
    return loss.sum() / max(float(pos.sum()), 1.0)


CODE_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.2, 0.2)


def training_frames(data, classes):
    """The training split's samples in memory (both splits are generated first when missing)."""
    from pathlib import Path

    from .dataset import LidarSamples
    from .synthetic import SEEDS, SPLITS, write_split

    data = Path(data)
    for split in ("train", "val"):
        if not (data / f"info_{split}.pkl").is_file():
            write_split(data, split, SPLITS[split], SEEDS[split])
    ds = LidarSamples(data / "info_train.pkl", classes=list(classes))
    return [ds[i] for i in range(len(ds))]


def optimizer(model, lr, steps):
    """AdamW (weight decay 0.01, as AWML) with a one-cycle schedule over ``steps``."""
    import torch

    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.01)
    return opt, torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.3)


def step(model, opt, sched, loss):
    import torch

    opt.zero_grad()
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 35)
    opt.step()
    sched.step()


def save_half(model, out, start):
    """Store the state dict in float16 (the shipped checkpoints; measured after that rounding)."""
    from pathlib import Path

    import torch

    model.eval()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}, out)
    print(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB) after {time.time() - start:.0f} s")
