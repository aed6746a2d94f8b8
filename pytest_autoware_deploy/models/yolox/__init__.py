"""YOLOX (AWML ``projects/YOLOX``, ``projects/YOLOX_opt``): mmdet's CSPDarknet + PAFPN + decoupled head.

Two registered families share this folder's model, COCO loader and post-processing:
``yolox`` (road objects; YOLOX-S at 640 on COCO in AWML) and ``yolox_opt_traffic_light``
(YOLOX_opt-S-TrafficLight, the traffic-light fine detector at 416x416). Importing this package
is cheap (no torch): the registry loads it while parsing specs.
"""

_PKG = "pytest_autoware_deploy.models.yolox"

FAMILY = {
    "builder": f"{_PKG}.model:build_model",
    "loader": f"{_PKG}.dataset:load_samples",
    "evaluator": "detection2d",
    "mm_types": f"{_PKG}.mm_types:MM_TYPES",  # OpenMMLab type= names it deploys (models/mm_registry.py)
    "synthetic": f"{_PKG}.synthetic:small_road_split",  # (out_dir, frames) -> (spec key, path): a small split for tests/CI
}
# Same model and data code; the family names say which AWML project a spec stands for.
FAMILY_OPT = dict(FAMILY, synthetic=f"{_PKG}.synthetic:small_traffic_light_split")
