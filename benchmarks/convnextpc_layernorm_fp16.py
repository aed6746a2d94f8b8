"""How much fp16 LayerNorm costs CenterPoint-ConvNeXtPC: the known risk of its backbone, measured.

Every ConvNeXt block, downsampling and output of ``ConvNeXt_PC`` is a LayerNorm over the channels. Under
fp16 two things can go wrong: the variance ``mean((x - mean)^2)`` overflows fp16 (65504) once |x - mean|
passes 256, and the normalised values lose precision. This script hooks every LayerNorm of the second
stage (``pts_backbone_neck_head``) on real sweeps and reports, per LayerNorm, the largest |x - mean| and
variance seen (the overflow margin); then reruns the stage with every LayerNorm computed in fp16
arithmetic (decomposed: mean, centred square, mean, rsqrt, each rounded to fp16; the rest fp32), which is
what an fp16 engine computes when the LayerNorm is not kept in fp32, and compares the six head maps and
the decoded boxes with fp32.

    python benchmarks/convnextpc_layernorm_fp16.py [--full] [--frames 4] [--checkpoint CKPT]

``--full`` measures AWML's 121 m model (random weights unless --checkpoint) on the same sweeps.
"""

from __future__ import annotations

import argparse
import contextlib
import json

import numpy as np
import torch
import torch.nn.functional as F

from pytest_autoware_deploy.models.centerpoint.convnext_pc import LayerNorm2d
from pytest_autoware_deploy.models.centerpoint.model import build_model
from pytest_autoware_deploy.models.centerpoint.pipeline import CenterPointPipeline
from pytest_autoware_deploy.models.centerpoint.train import STAGE_OUTPUTS
from pytest_autoware_deploy.models.centerpoint.train_convnextpc import CHECKPOINT, DEMO_HOST, DEMO_MODEL
from pytest_autoware_deploy.models.lidar_common.dataset import LidarSamples
from pytest_autoware_deploy.models.lidar_common.torch_stage import torch_call_stage

FULL_MODEL = dict(num_classes=3, in_channels=4, pfn_channels=(32, 32), voxel_size=(0.2, 0.2, 8.0),
                  point_cloud_range=(-121.6, -121.6, -3.0, 121.6, 121.6, 5.0), neck_channels=(128, 128, 128),
                  upsample_strides=(1, 2, 4), share_conv_channel=64, init_bias=-4.595,
                  convnext=dict(out_channels=[32, 192, 192, 192, 192], depths=[3, 3, 2, 1, 1], out_indices=[2, 3, 4],
                                layer_scale_init_value=1.0))
FULL_HOST = dict(DEMO_HOST, voxel_size=(0.2, 0.2, 8.0), point_cloud_range=(-121.6, -121.6, -3.0, 121.6, 121.6, 5.0),
                 max_points=32, max_voxels=60000)


def _fp16_layer_norm(x, shape, weight, bias, eps):
    h = x.half()
    mean = h.mean(-1, keepdim=True)
    var = ((h - mean) ** 2).mean(-1, keepdim=True)
    y = (h - mean) * torch.rsqrt(var + torch.tensor(eps, dtype=torch.float16))
    return (y.float() * weight + bias) if weight is not None else y.float()


@contextlib.contextmanager
def layer_norms_in_fp16():
    orig = F.layer_norm
    F.layer_norm = _fp16_layer_norm
    try:
        yield
    finally:
        F.layer_norm = orig


def ln_ranges(model):
    stats, hooks = {}, []
    for name, mod in model.named_modules():
        if isinstance(mod, torch.nn.LayerNorm):
            def hook(m, inp, _out, name=name):
                x = inp[0].permute(0, 2, 3, 1) if isinstance(m, LayerNorm2d) else inp[0]
                c = x - x.mean(-1, keepdim=True)
                s = stats.setdefault(name, {"max_abs_centred": 0.0, "max_var": 0.0})
                s["max_abs_centred"] = max(s["max_abs_centred"], float(c.abs().max()))
                s["max_var"] = max(s["max_var"], float((c ** 2).mean(-1).max()))
            hooks.append(mod.register_forward_hook(hook))
    return stats, hooks


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="data/synthetic/lidar/info_val.pkl")
    ap.add_argument("--frames", type=int, default=4)
    ap.add_argument("--full", action="store_true")
    ap.add_argument("--checkpoint", default=None)
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    model = build_model(**(FULL_MODEL if args.full else DEMO_MODEL))
    ckpt = args.checkpoint or (None if args.full else str(CHECKPOINT))
    if ckpt:
        from pytest_autoware_deploy.export.pytorch_model import load_checkpoint
        load_checkpoint(model, ckpt)
    host = CenterPointPipeline(**(FULL_HOST if args.full else DEMO_HOST), host_device="numpy")
    call = torch_call_stage(model.eval(), STAGE_OUTPUTS)
    ds = LidarSamples(args.data, classes=["car", "bicycle", "pedestrian"])
    worst = {k: 0.0 for k in STAGE_OUTPUTS["pts_backbone_neck_head"]}
    boxes = {"fp32": 0, "fp16_ln": 0, "max_center_err_m": 0.0, "max_score_err": 0.0}
    stats = {}
    for i in range(min(args.frames, len(ds))):
        runs = {}
        for mode in ("fp32", "fp16_ln"):
            stage = {}

            def rec(name, feed, stage=stage):
                stage[name] = call(name, feed)
                return stage[name]
            frame_stats, hooks = ln_ranges(model) if mode == "fp32" else ({}, [])
            with layer_norms_in_fp16() if mode == "fp16_ln" else contextlib.nullcontext():
                runs[mode] = (host.run(ds[i]["inputs"], rec), stage)
            for h in hooks:
                h.remove()
            for k, v in frame_stats.items():
                s = stats.setdefault(k, {"max_abs_centred": 0.0, "max_var": 0.0})
                for kk in s:
                    s[kk] = max(s[kk], v[kk])
        (ref, rs), (got, gs) = runs["fp32"], runs["fp16_ln"]
        for k in worst:
            a, b = rs["pts_backbone_neck_head"][k], gs["pts_backbone_neck_head"][k]
            worst[k] = max(worst[k], float(np.abs(a - b).max()))
        boxes["fp32"] += len(ref["scores"])
        boxes["fp16_ln"] += len(got["scores"])
        if len(ref["scores"]) and len(got["scores"]):
            d = np.linalg.norm(ref["boxes_3d"][:, None, :2] - got["boxes_3d"][None, :, :2], axis=2)
            j = d.argmin(1)
            boxes["max_center_err_m"] = max(boxes["max_center_err_m"], float(d.min(1).max()))
            boxes["max_score_err"] = max(boxes["max_score_err"], float(np.abs(ref["scores"] - got["scores"][j]).max()))
    top = max(stats.values(), key=lambda s: s["max_var"]) if stats else {}
    print(json.dumps({"model": "full (AWML 121 m)" if args.full else "demo", "checkpoint": ckpt,
                      "layer_norms": len(stats), "frames": min(args.frames, len(ds)),
                      "largest_abs_centred": max((s["max_abs_centred"] for s in stats.values()), default=0.0),
                      "largest_variance": top.get("max_var", 0.0), "fp16_max": 65504.0,
                      "head_max_abs_err_fp16_ln": worst, "boxes": boxes}, indent=1))


if __name__ == "__main__":
    main()
