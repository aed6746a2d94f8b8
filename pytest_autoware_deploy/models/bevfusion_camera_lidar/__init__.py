"""BEVFusion camera+lidar (AWML ``projects/BEVFusion`` BEVFusion-CL, Autoware ``autoware_bevfusion``).

Two ONNX graphs, as AWML exports them: ``image_backbone`` (``imgs`` uint8 -> Swin-T + GeneralizedLSSFPN ->
``image_feats``) and ``main_body`` (voxels, the host-precomputed camera geometry and ``image_feats`` ->
``bbox_pred, score, label_pred``; custom ops ``autoware::GetIndicePairsImplicitGemm`` / ``ImplicitGemm`` for the
sparse encoder and ``autoware::QuickCumsumCuda`` for the BEV pooling, run in ONNX Runtime through
``models/bevfusion/ort_ops.py``). The model code lives with the lidar-only variant (``models/bevfusion``:
``model_camera.py``, ``camera.py``, ``bev_pool.py``, ``camera_geometry.py``). Importing this package is cheap.
"""

_PKG = "pytest_autoware_deploy.models.bevfusion_camera_lidar"

FAMILY = {
    "builder": "pytest_autoware_deploy.models.bevfusion.model_camera:build_model",
    "loader": f"{_PKG}.dataset:load_samples",
    "evaluator": "detection3d",
    "host": f"{_PKG}.pipeline:BEVFusionCameraLidarPipeline",
    "synthetic": f"{_PKG}.synthetic:write_demo_split",
}
