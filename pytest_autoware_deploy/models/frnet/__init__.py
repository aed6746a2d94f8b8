"""FRNet (AWML ``projects/FRNet``, Autoware ``autoware_lidar_frnet``): per-point lidar segmentation.

Deployed as AWML's deploy script and Autoware do: frustum grouping (range-image pixel per point, ``unique``)
on the host -> ONE ONNX graph ``points, coors, voxel_coors, inverse_map -> pred_probs`` (or ``seg_logit``)
-> argmax on the host. Importing this package is cheap (no torch).
"""

_PKG = "pytest_autoware_deploy.models.frnet"

FAMILY = {
    "builder": f"{_PKG}.model:build_model",
    "loader": f"{_PKG}.dataset:load_samples",
    "evaluator": "pytest_autoware_deploy.evaluate.segmentation3d:Segmentation3DEvaluator",
    "host": f"{_PKG}.pipeline:FRNetPipeline",
    "mm_types": f"{_PKG}.mm_types:MM_TYPES",  # OpenMMLab type= names it deploys (models/mm_registry.py)
    "synthetic": f"{_PKG}.synthetic:small_split",  # (out_dir, frames) -> (spec key, path)
}
