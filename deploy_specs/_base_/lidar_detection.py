# Verification, precision and timing shared by the lidar detection specs (CenterPoint, TransFusion-L).

verification = dict(
    num_samples=2, atol=1e-3, rtol=1e-3, reference='pytorch',
    # the final boxes are a set: matched by BEV centre distance (class-aware), not compared element-wise
    outputs=dict(boxes_3d=dict(compare='detections3d', covers=['scores', 'labels'],
                               decoder='pytest_autoware_deploy.verify.detections3d:detections_from_outputs',
                               match_dist=1.0, center_atol=0.05, size_atol=0.05, yaw_atol=0.05, score_atol=0.02,
                               max_unmatched=0, min_score=0.15,
                               policies=dict(fp16=dict(center_atol=0.05, size_atol=0.05, yaw_atol=0.05,
                                                       score_atol=0.02, max_unmatched=1)))),
)

# fp16 as an ONNX-level policy (TensorRT 11 has no FP16 flag): every stage gets its own fp16 graph
precision = dict(policies=['auto', 'fp16'])

benchmark = dict(warmup=2, rounds=10)

# Where the host code (voxelization, pillar decoration, scatter, heatmap top-K) runs: 'auto' = PyTorch on the
# GPU when torch sees one, else the numpy reference; 'numpy', 'torch' or a torch device force it
# (models/lidar_common/host_device.py). Both paths give bit-identical stage inputs and boxes.
pipeline = dict(kwargs=dict(host_device='auto'))
