# CenterPoint-ConvNeXtPC (AWML projects/CenterPoint/configs/t4dataset/CenterPoint-ConvNeXtPC, backbone
# projects/ConvNeXt_PC) on the bundled synthetic lidar scenes, pytorch + onnxruntime on CPU, deployed as
# CenterPoint's two ONNX stages (pts_voxel_encoder, pts_backbone_neck_head) with host code between them:
#   make data-lidar && pytest --deploy-config=deploy_specs/centerpoint_convnextpc.py
# Demo size: +-32 m at 0.4 m pillars (160x160: the canvas must divide by 16, four stride-2 downsamplings),
# ConvNeXt_PC without a stem, 5 stages (depths 2/1/1/1/1), outputs of stages 2/3/4, out_size_factor 4
# (the shipped checkpoint, models/centerpoint/train_convnextpc.py); AWML's 121 m model is
# centerpoint_convnextpc_full.py.
_base_ = ['./_base_/centerpoint.py']
_range = [-32.0, -32.0, -3.0, 32.0, 32.0, 5.0]
_voxel = [0.4, 0.4, 8.0]

export = dict(work_dir='../work_dirs/centerpoint_convnextpc')
onnx_config = dict(save_file='centerpoint_convnextpc.onnx')

model = dict(
    kwargs=dict(num_classes=3, in_channels=4, pfn_channels=[16, 16], voxel_size=_voxel, point_cloud_range=_range,
                neck_channels=[32, 32, 32], upsample_strides=[1, 2, 4], share_conv_channel=32, init_bias=-2.19,
                convnext=dict(out_channels=[16, 32, 48, 48, 48], depths=[2, 1, 1, 1, 1], out_indices=[2, 3, 4],
                              layer_scale_init_value=1.0)),
    checkpoint='../pytest_autoware_deploy/models/centerpoint/checkpoints/centerpoint_convnextpc_pillar040_demo.pth',
)

pipeline = dict(
    kwargs=dict(voxel_size=_voxel, point_cloud_range=_range, max_points=20, max_voxels=30000, use_dims=[0, 1, 2, 3],
                out_size_factor=4, score_threshold=0.1, max_num=200, nms_radius=1.0, post_max_size=100),
)

evaluation = dict(thresholds=dict(min_accuracy=0.5, max_drop=0.01))

# 'auto' on CUDA is TF32 (fp32_tf32): on the H100 (2026-11-25, 8 sweeps) one box's yaw moved 0.061 rad on
# onnx@cuda:0 (a yaw is atan2 of two regressed values; a box whose sin/cos are small turns by more for the same
# error); centres and sizes stayed within 0.05. The CPU keeps the base's 0.05.
verification = dict(outputs=dict(boxes_3d=dict(policies=dict(fp32_tf32=dict(yaw_atol=0.1)))))

# int8 (not in the default run), measured 2026-12-07 on the CPU (60 val sweeps): every node quantized, mAP 0.4513 vs
# 0.6209 (stage verification fails in the pillar encoder's first BatchNorm and the head). The islands search keeps
# the three nodes below in fp32 (the pillar encoder's first linear, the first ConvNeXt block's depthwise conv and
# LayerNorm): both stages then pass element-wise, but end to end int8 still loses 0.078 mAP (0.5433; boxes match
# 81%), over the 0.03 allowed: int8 of this backbone needs quantization-aware training, not more islands.
precision = dict(int8=dict(nodes_to_exclude=['/pfn_layers.0/linear/MatMul',
                                             '/backbone/stages.0/stages.0.0/depthwise_conv/Conv',
                                             '/backbone/stages.0/stages.0.0/norm/LayerNormalization']))
