"""The OpenMMLab ``type=`` names this family deploys, and what its spec takes from an AWML model config.

AWML's ``mobilenet-v2_tlr_*_t4dataset.py``: ``ImageClassifier(backbone=MobileNetV2(widen_factor=1.0),
neck=GlobalAveragePooling, head=LinearClsHead(in_channels=1280, num_classes=N))``; the graph ends in a
softmax (mmdeploy's classifier export, what Autoware's traffic_light_classifier reads).
"""

from __future__ import annotations

from ..mm_registry import MMType

_PARTS = "pytest_autoware_deploy.models.mmpretrain_parts"

MM_TYPES = {
    "ImageClassifier": MMType(f"{__name__}:build_classifier", children=("backbone", "neck", "head"),
                              family="mobilenetv2_traffic_light", when=(("backbone.type", "MobileNetV2"),),
                              spec=f"{__name__}:spec_sections"),
    "MobileNetV2": MMType(f"{__name__}:build_mobilenet_v2"),
    "GlobalAveragePooling": MMType(f"{_PARTS}:build_global_average_pooling"),
    "LinearClsHead": MMType(f"{_PARTS}:build_linear_cls_head"),
}


def build_classifier(backbone, head, neck=None, _key="model"):
    from ..mmpretrain_parts import build_image_classifier

    return build_image_classifier(backbone, head, neck, _key=_key, softmax=True)


def build_mobilenet_v2(widen_factor=1.0, out_indices=(7,), conv_cfg=None, norm_cfg=None, act_cfg=None):
    from .model import MobileNetV2

    if tuple(out_indices) != (7,):
        raise ValueError(f"out_indices={tuple(out_indices)}: only the last stage (7,) feeds the classifier here")
    if act_cfg not in (None, {}) and act_cfg.get("type") != "ReLU6":
        raise ValueError(f"act_cfg {act_cfg!r}: only ReLU6 (mmpretrain's default) is implemented here")
    return MobileNetV2(widen_factor)


def _resize_scale(cfg):
    for step in cfg.get("test_pipeline") or []:
        if isinstance(step, dict) and step.get("type") == "Resize" and isinstance(step.get("scale"), int):
            return step["scale"]
    return None


def spec_sections(mc) -> dict:
    cfg = mc.cfg
    kwargs = {}
    size = _resize_scale(cfg)
    if size:
        kwargs["input_size"] = size
    dataset = (cfg.get("test_dataloader") or {}).get("dataset") or {}
    if dataset.get("ann_file"):
        kwargs["ann_file"] = dataset["ann_file"]
    out = {"onnx_config": {"input_names": ["input"], "output_names": ["output"],
                           "dynamic_axes": {"input": {0: "batch_size"}, "output": {0: "batch_size"}}},
           "data": {"kwargs": kwargs}}
    if cfg.get("classes"):
        out["evaluation"] = {"kwargs": {"class_names": list(cfg["classes"])}}
    return out
