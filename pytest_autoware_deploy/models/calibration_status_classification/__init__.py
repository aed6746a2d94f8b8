"""CalibrationStatusClassification (AWML): is the lidar-camera calibration of a frame still right?

A ResNet18 over 5 channels (RGB + lidar depth + intensity projected into the image) with two
classes. Registered as the ``calibration_status_classification`` family; importing this package
is cheap (no torch) because the registry loads it while parsing specs.
"""

_PKG = "pytest_autoware_deploy.models.calibration_status_classification"

FAMILY = {
    "builder": f"{_PKG}.model:build_model",
    "loader": f"{_PKG}.dataset:load_samples",
    "evaluator": "classification",
    "mm_types": f"{_PKG}.mm_types:MM_TYPES",  # OpenMMLab type= names it deploys (models/mm_registry.py)
    "synthetic": f"{_PKG}.synthetic:small_split",  # (out_dir, frames) -> (spec key, path): a small split for tests/CI
}
