"""Train the bundled demo CenterPoint deterministically on the synthetic lidar scenes (CPU, minutes).

    python -m pytest_autoware_deploy.models.centerpoint.train --data data/synthetic/lidar \
        --out pytest_autoware_deploy/models/centerpoint/checkpoints/centerpoint_pillar032_demo.pth

mmdet3d's CenterHead training, in short: gaussian heatmaps (radius from ``gaussian_radius``,
overlap 0.1, at least 2 cells), gaussian focal loss, L1 on offset / height / log-size / sin-cos /
velocity at each object's centre cell (code weights 1 and 0.2 for velocity, loss weight 0.25),
AdamW with a one-cycle schedule, random flips and rotations of the sweep. The shipped checkpoint
was produced by this script with its defaults; the PyTorch BEV mAP on the val split is printed.
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
from .pipeline import CenterPointPipeline

DEMO_MODEL = dict(num_classes=3, in_channels=4, pfn_channels=(16, 16), voxel_size=(0.32, 0.32, 8.0),
                  point_cloud_range=(-32.0, -32.0, -3.0, 32.0, 32.0, 5.0), backbone_channels=(16, 32, 64),
                  layer_nums=(1, 2, 2), layer_strides=(1, 2, 2), neck_channels=(32, 32, 32),
                  upsample_strides=(0.5, 1, 2), share_conv_channel=32, init_bias=-2.19)
STAGE_OUTPUTS = {"pts_voxel_encoder": ["pillar_features"],
                 "pts_backbone_neck_head": ["heatmap", "reg", "height", "dim", "rot", "vel"]}
DEMO_HOST = dict(voxel_size=(0.32, 0.32, 8.0), point_cloud_range=(-32.0, -32.0, -3.0, 32.0, 32.0, 5.0),
                 max_points=20, max_voxels=30000, use_dims=(0, 1, 2, 3), out_size_factor=2, score_threshold=0.1,
                 max_num=200, nms_radius=1.0, post_max_size=100)


def losses(outs, heat_t, inds, regs, batch_of):
    import torch

    heatmap, reg, height, dim, rot, vel = outs
    l_heat = gaussian_focal_loss(heatmap, heat_t)
    if not len(inds):
        return l_heat, l_heat.detach() * 0
    pred_reg = torch.cat([reg, height, dim, rot, vel], 1)  # (B, 10, H, W)
    b, c = pred_reg.shape[:2]
    flat = pred_reg.view(b, c, -1)
    got = flat[batch_of, :, inds]  # (n, 10)
    weights = torch.tensor(CODE_WEIGHTS)
    l_box = (torch.abs(got - regs) * weights).sum() / max(len(inds), 1) * 0.25
    return l_heat, l_box


def train(data, out, epochs=24, batch=4, lr=2e-3, threads=1, seed=0, model_kwargs=None, host_kwargs=None):
    """``model_kwargs`` / ``host_kwargs`` default to the demo's (train_convnextpc.py passes its own)."""
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    frames = training_frames(data, CLASSES)
    host_kwargs = host_kwargs or DEMO_HOST
    host = CenterPointPipeline(**host_kwargs)
    osf = host_kwargs["out_size_factor"]
    model = build_model(**(model_kwargs or DEMO_MODEL))
    enc, head = model.pts_voxel_encoder, model.pts_backbone_neck_head
    opt, sched = optimizer(model, lr, epochs * (len(frames) // batch))
    rng = np.random.default_rng(seed)
    start = time.time()
    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(frames))
        tot = np.zeros(2)
        for s in range(len(frames) // batch):
            canvases, heats, all_inds, all_regs, batch_of = [], [], [], [], []
            feats_l, coors_l = [], []
            for b, i in enumerate(order[s * batch:(s + 1) * batch]):
                pts, boxes = augment(frames[i]["inputs"]["points"], frames[i]["target"]["boxes_3d"], rng)
                feats, coors = host.preprocess(pts)
                feats_l.append(feats)
                coors_l.append(coors)
                heat, inds, _, regs = centre_targets(boxes, frames[i]["target"]["labels"], len(CLASSES), host.pcr,
                                                     host.voxel_size, (host.nx, host.ny), osf)
                regs[:, :2] -= np.floor(regs[:, :2])  # CenterHead regresses the offset inside the centre cell
                heats.append(heat)
                all_inds.append(inds)
                all_regs.append(regs.astype(np.float32))
                batch_of.append(np.full(len(inds), b))
            pillars = enc(torch.from_numpy(np.concatenate(feats_l))).squeeze(1)
            c = pillars.shape[1]
            start_v = 0
            for coors in coors_l:
                idx = torch.from_numpy(coors[:, 2].astype(np.int64) * host.nx + coors[:, 3])
                canvas = torch.zeros(c, host.ny * host.nx).index_copy(1, idx, pillars[start_v:start_v + len(coors)].t())
                canvases.append(canvas.view(c, host.ny, host.nx))
                start_v += len(coors)
            outs = head(torch.stack(canvases))
            l_heat, l_box = losses(outs, torch.from_numpy(np.stack(heats)), torch.from_numpy(np.concatenate(all_inds)),
                                   torch.from_numpy(np.concatenate(all_regs)), torch.from_numpy(np.concatenate(batch_of)))
            step(model, opt, sched, l_heat + l_box)
            tot += [float(l_heat), float(l_box)]
        n = len(frames) // batch
        print(f"epoch {epoch + 1}/{epochs}: heatmap {tot[0] / n:.3f} box {tot[1] / n:.3f} ({time.time() - start:.0f} s)",
              flush=True)
    save_half(model, out, start)
    return model


def main(argv=None):
    from ..lidar_common.torch_stage import evaluate_pipeline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/synthetic/lidar")
    ap.add_argument("--out", default=str(Path(__file__).parent / "checkpoints" / "centerpoint_pillar032_demo.pth"))
    ap.add_argument("--epochs", type=int, default=24)
    args = ap.parse_args(argv)
    model = train(args.data, args.out, epochs=args.epochs)
    res = evaluate_pipeline(model, CenterPointPipeline(**DEMO_HOST), STAGE_OUTPUTS, Path(args.data) / "info_val.pkl",
                            CLASSES)
    print({k: v for k, v in res.items() if not k.startswith("per_class")})
    print(res["per_class_detail"])


if __name__ == "__main__":
    main()
