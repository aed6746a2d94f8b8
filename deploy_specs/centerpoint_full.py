# AWML's CenterPoint base model (second_secfpn_8xb16_121m_base_amp: +-122.4 m, 0.24 m pillars, a 1020x1020
# canvas, out_size_factor 2, five T4 classes) for GPU runs:
#   pytest --deploy-config=deploy_specs/centerpoint_full.py --deploy-device cuda:0
# No trained full-size checkpoint ships; give an AWML one with --deploy-checkpoint (mmdet3d parameter names).
# Without one the weights are random: verification and latency are meaningful, accuracy is not (thresholds off).
_base_ = ['./_base_/centerpoint.py']
_classes = ['car', 'truck', 'bus', 'bicycle', 'pedestrian']
_range = [-122.4, -122.4, -3.0, 122.4, 122.4, 5.0]
_voxel = [0.24, 0.24, 8.0]

export = dict(device='cuda:0', work_dir='../work_dirs/centerpoint_full')

model = dict(kwargs=dict(num_classes=5, in_channels=4, pfn_channels=[32, 32], voxel_size=_voxel,
                         point_cloud_range=_range, backbone_channels=[64, 128, 256], layer_nums=[3, 5, 5],
                         layer_strides=[1, 2, 2], neck_channels=[128, 128, 128], upsample_strides=[0.5, 1, 2],
                         share_conv_channel=64, init_bias=-4.595))

pipeline = dict(
    kwargs=dict(voxel_size=_voxel, point_cloud_range=_range, max_points=32, max_voxels=96000, use_dims=[0, 1, 2, 3],
                out_size_factor=2, score_threshold=0.1, max_num=500, nms_radius=1.0, post_max_size=100),
    stages=[
        dict(name='pts_voxel_encoder', module='pts_voxel_encoder',
             input_names=['input_features'], output_names=['pillar_features'],
             dynamic_axes={'input_features': {0: 'num_voxels'}, 'pillar_features': {0: 'num_voxels'}},
             model_inputs=[dict(name='input_features', min_shape=[1000, 32, 10], opt_shape=[20000, 32, 10],
                                max_shape=[96000, 32, 10], dtype='float32')]),
        dict(name='pts_backbone_neck_head', module='pts_backbone_neck_head',
             input_names=['spatial_features'], output_names=['heatmap', 'reg', 'height', 'dim', 'rot', 'vel'],
             dynamic_axes=None),
    ],
)

data = dict(kwargs=dict(classes=_classes))

evaluation = dict(num_samples=10, kwargs=dict(class_names=_classes),
                  thresholds=dict(min_accuracy=None, max_drop=None))

verification = dict(num_samples=1, atol=1e-3, rtol=1e-2)
