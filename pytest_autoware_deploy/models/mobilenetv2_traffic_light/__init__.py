"""MobileNetv2 traffic-light classifier (AWML ``projects/MobileNetv2``, car lights, 11 classes).

Registered as the ``mobilenetv2_traffic_light`` family; evaluation reuses the core
``classification`` evaluator. Importing this package is cheap (no torch).
"""

_PKG = "pytest_autoware_deploy.models.mobilenetv2_traffic_light"

FAMILY = {
    "builder": f"{_PKG}.model:build_model",
    "loader": f"{_PKG}.dataset:load_samples",
    "evaluator": "classification",
    "mm_types": f"{_PKG}.mm_types:MM_TYPES",  # OpenMMLab type= names it deploys (models/mm_registry.py)
    "synthetic": f"{_PKG}.synthetic:small_split",  # (out_dir, frames) -> (spec key, path): a small split for tests/CI
}
