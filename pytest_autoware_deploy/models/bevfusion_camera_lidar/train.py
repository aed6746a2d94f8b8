"""Train the bundled demo BEVFusion-CL deterministically on the synthetic camera+lidar frames (CPU, minutes).

    nice -n 10 python -m pytest_autoware_deploy.models.bevfusion_camera_lidar.train

The lidar branch, SECOND, SECONDFPN and the head start from the shipped BEVFusion-L demo (same shapes: the fuser
outputs the lidar BEV's 128 channels); the Swin backbone, neck, DepthLSSTransform and ConvFuser start from scratch.
The recipe is BEVFusion-L's (``bevfusion/train.py``: gaussian focal heatmap loss, TransFusion's query losses),
without augmentation (flips would have to move the cameras too). The PyTorch BEV mAP on the val split is printed.
"""

from __future__ import annotations

import argparse
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
    from ..bevfusion.train import fit
    from .pipeline import BEVFusionCameraLidarPipeline

    torch.manual_seed(seed)
    torch.set_num_threads(threads)
    frames = training_samples(data)
    host = BEVFusionCameraLidarPipeline(**{**DEMO_HOST, "host_device": "numpy"})
    model = build_model(**DEMO_MODEL)
    print("warm start: %d of %d lidar-demo tensors" % warm_start(model), flush=True)

    def frame_bev(body, frame, rng):  # no augmentation: a flip would have to move the cameras too
        inp = frame["inputs"]
        feed = host.preprocess(inp["points"])
        feed.update(host.geometry(inp["cam2img"], inp["lidar2cam"]))
        args = [torch.from_numpy(np.ascontiguousarray(v)) for v in feed.values()]
        img_feats = model.image_backbone(torch.from_numpy(inp["imgs"]))
        return body.bev(*args, img_feats), frame["target"]["boxes_3d"], frame["target"]["labels"]

    return fit(model, frames, frame_bev, out, epochs, batch, lr, seed, max_minutes)


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
