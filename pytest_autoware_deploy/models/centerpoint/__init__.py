"""CenterPoint (AWML ``projects/CenterPoint``, Autoware ``lidar_centerpoint``): the pillar variant.

Deployed as Autoware does, in two ONNX files with host code between them: voxelization and pillar
decoration -> ``pts_voxel_encoder`` -> pillar scatter -> ``pts_backbone_neck_head`` (SECOND +
SECONDFPN + CenterHead) -> decoding and circle NMS. Importing this package is cheap (no torch).
"""

_PKG = "pytest_autoware_deploy.models.centerpoint"

FAMILY = {
    "builder": f"{_PKG}.model:build_model",
    "loader": "pytest_autoware_deploy.models.lidar_common.dataset:load_samples",
    "evaluator": "detection3d",
    "host": f"{_PKG}.pipeline:CenterPointPipeline",
    "mm_types": f"{_PKG}.mm_types:MM_TYPES",  # OpenMMLab type= names it deploys (models/mm_registry.py)
    "synthetic": "pytest_autoware_deploy.models.lidar_common.synthetic:small_split",  # (out_dir, frames) -> (spec key, path): a small split for tests/CI
}
