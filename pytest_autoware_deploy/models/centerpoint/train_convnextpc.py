"""Train the bundled demo CenterPoint-ConvNeXtPC (AWML's ConvNeXt_PC backbone) on the synthetic lidar scenes.

    nice -n 10 python -m pytest_autoware_deploy.models.centerpoint.train_convnextpc --data data/synthetic/lidar

Same recipe as ``train.py`` (CenterHead targets and losses, AdamW one-cycle, flips and rotations), with
AWML's CenterPoint-ConvNeXtPC layout scaled down: no stem, five stages (depths 2/1/1/1/1), outputs of
stages 2, 3, 4 (strides 4, 8, 16) brought to stride 4 by SECONDFPN (upsample 1/2/4), ``out_size_factor`` 4.
The canvas must divide by 16 (four stride-2 downsamplings): 0.4 m pillars over +-32 m, 160x160.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..lidar_common.synthetic import CLASSES

_RANGE = (-32.0, -32.0, -3.0, 32.0, 32.0, 5.0)
_VOXEL = (0.4, 0.4, 8.0)
CONVNEXT = dict(out_channels=[16, 32, 48, 48, 48], depths=[2, 1, 1, 1, 1], out_indices=[2, 3, 4],
                layer_scale_init_value=1.0)
DEMO_MODEL = dict(num_classes=3, in_channels=4, pfn_channels=(16, 16), voxel_size=_VOXEL, point_cloud_range=_RANGE,
                  neck_channels=(32, 32, 32), upsample_strides=(1, 2, 4), share_conv_channel=32, init_bias=-2.19,
                  convnext=CONVNEXT)
DEMO_HOST = dict(voxel_size=_VOXEL, point_cloud_range=_RANGE, max_points=20, max_voxels=30000, use_dims=(0, 1, 2, 3),
                 out_size_factor=4, score_threshold=0.1, max_num=200, nms_radius=1.0, post_max_size=100)
CHECKPOINT = Path(__file__).parent / "checkpoints" / "centerpoint_convnextpc_pillar040_demo.pth"


def main(argv=None):
    from ..lidar_common.torch_stage import evaluate_pipeline
    from .pipeline import CenterPointPipeline
    from .train import STAGE_OUTPUTS, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/synthetic/lidar")
    ap.add_argument("--out", default=str(CHECKPOINT))
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    model = train(args.data, args.out, epochs=args.epochs, lr=3e-3, threads=args.threads, model_kwargs=DEMO_MODEL,
                  host_kwargs=DEMO_HOST)
    res = evaluate_pipeline(model, CenterPointPipeline(**DEMO_HOST), STAGE_OUTPUTS, Path(args.data) / "info_val.pkl",
                            CLASSES)
    print({k: v for k, v in res.items() if not k.startswith("per_class")})
    print(res["per_class_detail"])


if __name__ == "__main__":
    main()
