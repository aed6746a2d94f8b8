"""BEVFusion lidar-only (AWML ``projects/BEVFusion`` BEVFusion-L, Autoware ``autoware_bevfusion``).

Deployed as Autoware does: hard voxelization on the host (``voxels (M, 10, C)``, ``coors (M, 3)`` as
``[z, y, x]``, ``num_points_per_voxel (M,)``), then ONE ONNX graph (AWML's ``main_body`` export: voxel mean,
``BEVFusionSparseEncoder`` with AWML's sparse-convolution custom ops ``autoware::GetIndicePairsImplicitGemm``
/ ``autoware::ImplicitGemm``, SECOND, SECONDFPN, BEVFusionHead with a fixed-K TopK) to ``bbox_pred (10, K)``,
``score (K,)``, ``label_pred (K,)``, then box decoding on the host. ONNX Runtime runs that graph through
the reference kernels of ``ort_ops.py``. Importing this package is cheap (no torch).
"""

_PKG = "pytest_autoware_deploy.models.bevfusion"

FAMILY = {
    "builder": f"{_PKG}.model:build_model",
    "loader": "pytest_autoware_deploy.models.lidar_common.dataset:load_samples",
    "evaluator": "detection3d",
    "host": f"{_PKG}.pipeline:BEVFusionLidarPipeline",
    "synthetic": f"{_PKG}.synthetic:write_demo_split",
}
