"""The OpenMMLab ``type=`` names this family deploys, and what its spec takes from an AWML model config.

AWML's ``resnet18_5ch_*.py``: ``mmpretrain.ImageClassifier(backbone=ResNet(depth=18, in_channels=5),
neck=GlobalAveragePooling, head=LinearClsHead(num_classes=2))``, any ResNet depth; the graph outputs logits.
The test pipeline's ``CalibrationClassificationTransform`` gives the loader's settings (``max_depth``,
``dilation_size``, ``miscalibration_probability``, ``data_root``) and the test dataloader the info file.
"""

from __future__ import annotations

from ..mm_registry import MMType
from .transform import CLASS_NAMES

_PARTS = "pytest_autoware_deploy.models.mmpretrain_parts"
_TRAINING = frozenset({"topk", "cal_acc", "zero_init_residual", "drop_path_rate", "neck_cfg"})

MM_TYPES = {
    "ImageClassifier": MMType(f"{_PARTS}:build_image_classifier", children=("backbone", "neck", "head"),
                              family="calibration_status_classification", when=(("backbone.type", "ResNet"),),
                              spec=f"{__name__}:spec_sections"),
    "ResNet": MMType(f"{_PARTS}:build_resnet"),
    "GlobalAveragePooling": MMType(f"{_PARTS}:build_global_average_pooling"),
    "LinearClsHead": MMType(f"{_PARTS}:build_linear_cls_head"),
}


def _transform(cfg):
    """The test (else val) pipeline's CalibrationClassificationTransform, or {}."""
    for loader in ("test_dataloader", "val_dataloader"):
        pipeline = (((cfg.get(loader) or {}).get("dataset") or {}).get("pipeline")) or []
        for step in pipeline:
            if isinstance(step, dict) and str(step.get("type", "")).endswith("CalibrationClassificationTransform"):
                return step
    return {}


def _info_file(cfg):
    dataset = (cfg.get("test_dataloader") or {}).get("dataset") or {}
    ann = dataset.get("ann_file")
    if not ann:
        return None
    root = dataset.get("data_root")
    return ann if ann.startswith("/") or not root else f"{root.rstrip('/')}/{ann}"


def spec_sections(mc) -> dict:
    """Native spec sections read from the model config ``mc`` (``mc.cfg`` is the whole config dict)."""
    t = _transform(mc.cfg)
    kwargs = {}
    for src, dst in (("max_depth", "lidar_range"), ("dilation_size", "dilation_size"),
                     ("miscalibration_probability", "miscalibration_probability"), ("data_root", "data_root")):
        if t.get(src) is not None:
            kwargs[dst] = t[src]
    out = {
        "onnx_config": {"input_names": ["input"], "output_names": ["output"],
                        "dynamic_axes": {"input": {0: "batch_size", 2: "height", 3: "width"},
                                         "output": {0: "batch_size"}}},
        "data": {"kwargs": kwargs},
        "evaluation": {"kwargs": {"class_names": list(CLASS_NAMES)}},
    }
    info = _info_file(mc.cfg)
    if info:
        out["runtime_io"] = {"info_pkl": info}
    return out
