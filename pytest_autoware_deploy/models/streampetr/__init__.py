"""StreamPETR (AWML ``projects/StreamPETR``, Autoware ``autoware_camera_streampetr``): multi-camera 3D
detection with a temporal object-query memory carried from frame to frame.

Deployed as AWML exports it and Autoware runs it: three ONNX graphs (``extract_img_feat``,
``position_embedding``, ``pts_head_memory``) with the host code between them owning the memory queue
(reset at a sequence start, each frame's ``post_memory_*`` fed back as the next ``pre_memory_*``).
Importing this package is cheap (no torch).
"""

_PKG = "pytest_autoware_deploy.models.streampetr"

FAMILY = {
    "builder": f"{_PKG}.model:build_model",
    "loader": f"{_PKG}.dataset:load_samples",
    "evaluator": "detection3d",
    "host": f"{_PKG}.pipeline:StreamPETRPipeline",
    "synthetic": f"{_PKG}.synthetic:small_split",  # (out_dir, frames) -> (spec key, path): a small split for tests/CI
}
