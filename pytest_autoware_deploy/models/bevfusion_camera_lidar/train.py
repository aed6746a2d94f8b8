"""Train the bundled demo BEVFusion-CL deterministically on the synthetic camera+lidar frames (CPU, minutes).

    nice -n 10 python -m pytest_autoware_deploy.models.bevfusion_camera_lidar.train

The lidar branch, SECOND, SECONDFPN and the head start from the shipped BEVFusion-L demo (same shapes: the fuser
outputs the lidar BEV's 128 channels); the Swin backbone, neck, DepthLSSTransform and ConvFuser start from scratch.
The recipe is BEVFusion-L's (``bevfusion/train.py``: gaussian focal heatmap loss, TransFusion's query losses),
without augmentation (flips would have to move the cameras too). The PyTorch BEV mAP on the val split is printed.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from ..bevfusion.train import DEMO_HOST as LIDAR_HOST
from ..bevfusion.train import DEMO_MODEL as LIDAR_MODEL
from ..lidar_common.synthetic import CLASSES
from .synthetic import IMAGE_SIZE, SEEDS, SPLITS, write_split

_CKPT_DIR = Path(__file__).parents[1] / "bevfusion" / "checkpoints"
LIDAR_CKPT = _CKPT_DIR / "bevfusion_lidar_voxel032_demo.pth"
CKPT = _CKPT_DIR / "bevfusion_camera_lidar_demo.pth"
_FEATURE_SIZE = (IMAGE_SIZE[0] // 8, IMAGE_SIZE[1] // 8)
_BOUNDS = dict(xbound=(-32.0, 32.0, 0.64), ybound=(-32.0, 32.0, 0.64), zbound=(-10.0, 10.0, 20.0),
               dbound=(1.0, 33.0, 1.0))
# BEVFusion-L's demo plus AWML's camera branch, reduced: Swin (embed 16, depths 2,2,2,2, window 4) on 64x128
# images, a 32-channel neck (stride 8: 8x16 features), 32 depth bins of 1 m, 16 camera BEV channels on a 0.64 m
# grid (100 x 100, downsample 2 -> the lidar BEV's 50 x 50), ConvFuser 16 + 128 -> 128
DEMO_MODEL = dict(LIDAR_MODEL, image_size=IMAGE_SIZE, feature_size=_FEATURE_SIZE, embed_dims=16, depths=(2, 2, 2, 2),
                  swin_num_heads=(1, 2, 4, 8), window_size=4, img_neck_channels=32, vtransform_channels=16,
                  vtransform_downsample=2, fuser_channels=128, **_BOUNDS)
DEMO_HOST = dict(LIDAR_HOST, image_size=IMAGE_SIZE, feature_size=_FEATURE_SIZE, **_BOUNDS)


def training_samples(data):
    from .dataset import load_samples

    data = Path(data)
    for split in ("train", "val"):
        if not (data / f"info_{split}.pkl").is_file():
            write_split(data, split, SPLITS[split], SEEDS[split])
    train = load_samples(data / "info_train.pkl", classes=CLASSES)
    return [train[i] for i in range(len(train))]


def warm_start(model, path=LIDAR_CKPT):
    """Load the lidar demo's tensors whose names and shapes match (the lidar branch, backbone, neck, head)."""
    import torch

    own = model.state_dict()
    src = {k: v.float() for k, v in torch.load(path, weights_only=True).items()}
    take = {k: v for k, v in src.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(take, strict=False)
    return len(take), len(src)


def train(data, out, epochs=2, batch=4, lr=2e-3, threads=1, seed=0, max_minutes=None):
    import torch

    from ..bevfusion.model_camera import build_model
    from ..lidar_common.training import centre_targets, gaussian_focal_loss, optimizer, save_half, step
    from ..transfusion_lidar.train import query_losses
    from .pipeline import BEVFusionCameraLidarPipeline

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    frames = training_samples(data)
    host = BEVFusionCameraLidarPipeline(**{**DEMO_HOST, "host_device": "numpy"})
    model = build_model(**DEMO_MODEL)
    print("warm start: %d of %d lidar-demo tensors" % warm_start(model), flush=True)
    osf, grid = DEMO_MODEL["out_size_factor"], DEMO_MODEL["sparse_shape"][:2]
    rng_, voxel = DEMO_MODEL["point_cloud_range"], DEMO_MODEL["voxel_size"]
    opt, sched = optimizer(model, lr, epochs * (len(frames) // batch))
    rng = np.random.default_rng(seed)
    start = time.time()
    for epoch in range(epochs):
        model.train()
        body, backbone = model.main_body, model.image_backbone
        order = rng.permutation(len(frames))
        tot = np.zeros(3)
        for s in range(len(frames) // batch):
            feats, heats, targets = [], [], []
            for i in order[s * batch:(s + 1) * batch]:
                inp, tgt = frames[i]["inputs"], frames[i]["target"]
                feed = host.preprocess(inp["points"])
                feed.update(host.geometry(inp["cam2img"], inp["lidar2cam"]))
                args = [torch.from_numpy(np.ascontiguousarray(v)) for v in feed.values()]
                img_feats = backbone(torch.from_numpy(inp["imgs"]))
                feats.append(body.bev(*args, img_feats)[0])
                heat, _, labels, regs = centre_targets(tgt["boxes_3d"], tgt["labels"], len(CLASSES), rng_, voxel,
                                                       grid, osf)
                heats.append(heat.transpose(0, 2, 1))  # (C, y, x) -> BEVFusion's (C, x, y)
                targets.append((labels, regs.astype(np.float32)))
            res = model.bbox_head.forward_dict([torch.cat(feats)])
            l_heat = gaussian_focal_loss(res["dense_heatmap"], torch.from_numpy(np.ascontiguousarray(np.stack(heats))))
            l_cls, l_box = query_losses(res, targets)
            step(model, opt, sched, l_heat + l_cls + l_box)
            tot += [float(l_heat), float(l_cls), float(l_box)]
            if (s + 1) % 10 == 0:
                print(f"  step {s + 1}: heatmap {float(l_heat):.3f} cls {float(l_cls):.3f} box {float(l_box):.3f} "
                      f"({time.time() - start:.0f} s)", flush=True)
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


def main(argv=None):
    from ..bevfusion.model import OUTPUT_NAMES
    from ..lidar_common.torch_stage import evaluate_pipeline
    from .dataset import load_samples
    from .pipeline import BEVFusionCameraLidarPipeline

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/synthetic/bevfusion_camera_lidar")
    ap.add_argument("--out", default=str(CKPT))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--max-minutes", type=float, default=None)
    args = ap.parse_args(argv)
    model = train(args.data, args.out, epochs=args.epochs, max_minutes=args.max_minutes)
    model.eval()
    res = evaluate_pipeline(model, BEVFusionCameraLidarPipeline(**DEMO_HOST),
                            {"image_backbone": ["image_feats"], "main_body": list(OUTPUT_NAMES)},
                            Path(args.data) / "info_val.pkl", CLASSES, loader=load_samples)
    print({k: v for k, v in res.items() if not k.startswith("per_class")})
    print(res["per_class_detail"])


if __name__ == "__main__":
    main()
