# CenterPoint (pillars, AWML projects/CenterPoint; Autoware lidar_centerpoint) on the bundled synthetic lidar
# scenes, pytorch + onnxruntime on CPU, deployed as two ONNX stages with host code between them:
#   make data-lidar && pytest --deploy-config=deploy_specs/centerpoint.py
# Demo size: +-32 m at 0.32 m pillars (200x200 canvas), narrow SECOND/SECONDFPN/CenterHead (the shipped
# checkpoint, models/centerpoint/train.py); AWML's 121 m model is centerpoint_full.py.
_base_ = ['./_base_/centerpoint.py']
_range = [-32.0, -32.0, -3.0, 32.0, 32.0, 5.0]
_voxel = [0.32, 0.32, 8.0]

model = dict(
    kwargs=dict(num_classes=3, in_channels=4, pfn_channels=[16, 16], voxel_size=_voxel, point_cloud_range=_range,
                backbone_channels=[16, 32, 64], layer_nums=[1, 2, 2], layer_strides=[1, 2, 2],
                neck_channels=[32, 32, 32], upsample_strides=[0.5, 1, 2], share_conv_channel=32, init_bias=-2.19),
    checkpoint='../pytest_autoware_deploy/models/centerpoint/checkpoints/centerpoint_pillar032_demo.pth',
)

pipeline = dict(
    kwargs=dict(voxel_size=_voxel, point_cloud_range=_range, max_points=20, max_voxels=30000, use_dims=[0, 1, 2, 3],
                out_size_factor=2, score_threshold=0.1, max_num=200, nms_radius=1.0, post_max_size=100),
)

evaluation = dict(thresholds=dict(min_accuracy=0.5, max_drop=0.01))
