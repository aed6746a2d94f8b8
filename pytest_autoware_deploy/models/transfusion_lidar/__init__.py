"""TransFusion-L (AWML ``projects/TransFusion``, Autoware ``lidar_transfusion``): lidar-only TransFusion.

Deployed as Autoware does: voxelization on the host, then ONE ONNX graph (mmdeploy's end2end export
AWML ships) from ``voxels / num_points / coors`` through pillar decoration, PillarFeatureNet, the
pillar scatter, SECOND, SECONDFPN and the query-based TransFusionHead to ``cls_score0 / bbox_pred0 /
dir_cls_pred0``, then box decoding on the host. Importing this package is cheap (no torch).
"""

_PKG = "pytest_autoware_deploy.models.transfusion_lidar"

FAMILY = {
    "builder": f"{_PKG}.model:build_model",
    "loader": "pytest_autoware_deploy.models.lidar_common.dataset:load_samples",
    "evaluator": "detection3d",
    "host": f"{_PKG}.pipeline:TransFusionPipeline",
    "mm_types": f"{_PKG}.mm_types:MM_TYPES",  # OpenMMLab type= names it deploys (models/mm_registry.py)
    "synthetic": "pytest_autoware_deploy.models.lidar_common.synthetic:small_split",  # (out_dir, frames) -> (spec key, path): a small split for tests/CI
}
