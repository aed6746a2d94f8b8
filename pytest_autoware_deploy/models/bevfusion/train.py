"""Train the bundled demo BEVFusion-L deterministically on the synthetic lidar scenes (CPU, minutes).

    nice -n 10 python -m pytest_autoware_deploy.models.bevfusion.train --data data/synthetic/lidar

TransFusion-L's recipe (``transfusion_lidar/train.py``: gaussian focal loss on the dense heatmap, greedy
one-query-per-object matching with AWML's focal-cost/BEV-L1 weights, focal loss on the query classes, L1 on
the matched boxes) on BEVFusion's ``(x, y)`` BEV map: the heatmap targets are transposed to it. The sparse
encoder trains through ``sparse_conv.gather_conv`` (the same arithmetic the ONNX ops carry). The PyTorch
BEV mAP on the val split is printed; the shipped checkpoint was produced with the defaults.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..lidar_common.synthetic import CLASSES
from ..lidar_common.training import augment, centre_targets, gaussian_focal_loss, optimizer, save_half, step, \
    training_frames
from ..transfusion_lidar.train import query_losses
from .model import OUTPUT_NAMES, build_model
from .pipeline import BEVFusionLidarPipeline

_RANGE = (-32.0, -32.0, -3.0, 32.0, 32.0, 5.0)
_VOXEL = (0.32, 0.32, 0.25)
# AWML's structure (basic blocks, a strided SparseConv3d closing each stage but the last, conv_out (1, 1, 3)
# stride (1, 1, 2)), reduced to three stages of one block: 200 x 200 x 33 -> 50 x 50 BEV cells of 1.28 m
DEMO_MODEL = dict(num_classes=3, in_channels=4, voxel_size=_VOXEL, point_cloud_range=_RANGE,
                  sparse_shape=(200, 200, 33), base_channels=8, output_channels=32,
                  encoder_channels=((8, 16), (16, 32), (32,)), encoder_paddings=((0, 1), (0, 1), (0,)),
                  block_type="basicblock", backbone_channels=(32, 64), layer_nums=(1, 2), layer_strides=(1, 2),
                  neck_channels=(32, 32), upsample_strides=(1, 2), out_size_factor=4, num_proposals=50,
                  hidden_channel=32, num_heads=4, ffn_channels=64, num_decoder_layers=1)
DEMO_HOST = dict(voxel_size=_VOXEL, point_cloud_range=_RANGE, max_points=10, max_voxels=30000, use_dims=(0, 1, 2, 3),
                 out_size_factor=4, score_threshold=0.1)


def fit(model, frames, frame_bev, out, epochs=2, batch=4, lr=3e-3, seed=0, max_minutes=None):
    """The shared BEVFusion training loop. ``frame_bev(body, frame, rng) -> (bev (1, C, X, Y), boxes, labels)``
    gives one frame's BEV features (from ``model.main_body``'s ``bev``) and its (possibly augmented) targets."""
    import torch

    osf = model.out_size_factor
    grid = model.pts_middle_encoder.sparse_shape[:2]
    pcr, voxel = model.point_cloud_range, model.voxel_size
    num_classes = model.bbox_head.num_classes
    opt, sched = optimizer(model, lr, epochs * (len(frames) // batch))
    rng = np.random.default_rng(seed)
    start = time.time()
    for epoch in range(epochs):
        model.train()
        body = model.main_body
        order = rng.permutation(len(frames))
        tot = np.zeros(3)
        for s in range(len(frames) // batch):
            feats, heats, targets = [], [], []
            for i in order[s * batch:(s + 1) * batch]:
                bev, boxes, labels = frame_bev(body, frames[i], rng)
                feats.append(bev[0])
                heat, _, labels, regs = centre_targets(boxes, labels, num_classes, pcr, voxel, grid, osf)
                heats.append(heat.transpose(0, 2, 1))  # (C, y, x) -> BEVFusion's (C, x, y)
                targets.append((labels, regs.astype(np.float32)))
            res = model.bbox_head.forward_dict([torch.cat(feats)])
            l_heat = gaussian_focal_loss(res["dense_heatmap"], torch.from_numpy(np.ascontiguousarray(np.stack(heats))))
            l_cls, l_box = query_losses(res, targets)
            step(model, opt, sched, l_heat + l_cls + l_box)
            tot += [l_heat.item(), l_cls.item(), l_box.item()]
            if (s + 1) % 10 == 0:
                print(f"  step {s + 1}: heatmap {l_heat.item():.3f} cls {l_cls.item():.3f} box {l_box.item():.3f} "
                      f"({time.time() - start:.0f} s)", flush=True)
                save_half(model, out, start)
                model.train()
            if max_minutes and time.time() - start > 60 * max_minutes:
                break
        n = len(frames) // batch
        print(f"epoch {epoch + 1}/{epochs}: heatmap {tot[0] / n:.3f} cls {tot[1] / n:.3f} box {tot[2] / n:.3f} "
              f"({time.time() - start:.0f} s)", flush=True)
        save_half(model, out, start)
        if max_minutes and time.time() - start > 60 * max_minutes:
            print(f"stopped in epoch {epoch + 1} at step {s + 1}: --max-minutes {max_minutes} (wall clock)")
            break
    return model


def train(data, out, epochs=2, batch=4, lr=3e-3, threads=1, seed=0, max_minutes=None):
    import torch

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    frames = training_frames(data, CLASSES)
    host = BEVFusionLidarPipeline(**DEMO_HOST)
    model = build_model(**DEMO_MODEL)

    def frame_bev(body, frame, rng):
        pts, boxes = augment(frame["inputs"]["points"], frame["target"]["boxes_3d"], rng)
        vox = host.preprocess(pts)
        return body.bev(*[torch.from_numpy(v) for v in vox.values()]), boxes, frame["target"]["labels"]

    return fit(model, frames, frame_bev, out, epochs, batch, lr, seed, max_minutes)


def main(argv=None):
    from ..lidar_common.torch_stage import evaluate_pipeline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/synthetic/lidar")
    ap.add_argument("--out", default=str(Path(__file__).parent / "checkpoints" / "bevfusion_lidar_voxel032_demo.pth"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--max-minutes", type=float, default=None)
    args = ap.parse_args(argv)
    model = train(args.data, args.out, epochs=args.epochs, max_minutes=args.max_minutes)
    res = evaluate_pipeline(model, BEVFusionLidarPipeline(**DEMO_HOST), {"main_body": list(OUTPUT_NAMES)},
                            Path(args.data) / "info_val.pkl", CLASSES)
    print({k: v for k, v in res.items() if not k.startswith("per_class")})
    print(res["per_class_detail"])


if __name__ == "__main__":
    main()
