# AWML's CenterPoint-ConvNeXtPC base model (pillar_020_convnext_standard_secfpn_4xb8_121m_base: +-121.6 m,
# 0.2 m pillars, a 1216x1216 canvas, ConvNeXt_PC in_channels 32, out_channels 32/192/192/192/192, depths
# 3/3/2/1/1, out_indices 2/3/4, layer scale 1.0, SECONDFPN 192x3 -> 128x3 upsample 1/2/4, out_size_factor 4,
# max_voxels 60000 at test, five T4 classes) for GPU runs:
#   pytest --deploy-config=deploy_specs/centerpoint_convnextpc_full.py --deploy-device cuda:0
# No trained full-size checkpoint ships; give an AWML one with --deploy-checkpoint (mmpretrain/mmdet3d parameter
# names). Without one the weights are random: verification and latency are meaningful, accuracy is not.
# AWML's pillar encoder there is BackwardPillarFeatureNet (no z voxel centre, 9 features); this spec keeps
# PillarFeatureNet's 10 (same cost to within a channel). AWML's model config itself builds the 9-feature encoder:
#   autoware-deploy DEPLOY_CFG projects/CenterPoint/configs/t4dataset/CenterPoint-ConvNeXtPC/<config>.py CKPT
_base_ = ['./_base_/centerpoint.py']
_classes = ['car', 'truck', 'bus', 'bicycle', 'pedestrian']
_range = [-121.6, -121.6, -3.0, 121.6, 121.6, 5.0]
_voxel = [0.2, 0.2, 8.0]

export = dict(device='cuda:0', work_dir='../work_dirs/centerpoint_convnextpc_full')
onnx_config = dict(save_file='centerpoint_convnextpc_full.onnx')

model = dict(kwargs=dict(num_classes=5, in_channels=4, pfn_channels=[32, 32], voxel_size=_voxel,
                         point_cloud_range=_range, neck_channels=[128, 128, 128], upsample_strides=[1, 2, 4],
                         share_conv_channel=64, init_bias=-4.595,
                         convnext=dict(out_channels=[32, 192, 192, 192, 192], depths=[3, 3, 2, 1, 1],
                                       out_indices=[2, 3, 4], layer_scale_init_value=1.0)))

pipeline = dict(
    kwargs=dict(voxel_size=_voxel, point_cloud_range=_range, max_points=32, max_voxels=60000, use_dims=[0, 1, 2, 3],
                out_size_factor=4, score_threshold=0.1, max_num=500, nms_radius=1.0, post_max_size=100),
    stages=[
        dict(name='pts_voxel_encoder', module='pts_voxel_encoder',
             input_names=['input_features'], output_names=['pillar_features'],
             dynamic_axes={'input_features': {0: 'num_voxels'}, 'pillar_features': {0: 'num_voxels'}},
             model_inputs=[dict(name='input_features', min_shape=[1000, 32, 10], opt_shape=[20000, 32, 10],
                                max_shape=[60000, 32, 10], dtype='float32')]),
        dict(name='pts_backbone_neck_head', module='pts_backbone_neck_head',
             input_names=['spatial_features'], output_names=['heatmap', 'reg', 'height', 'dim', 'rot', 'vel'],
             dynamic_axes=None),
    ],
)

data = dict(kwargs=dict(classes=_classes))

evaluation = dict(num_samples=10, kwargs=dict(class_names=_classes),
                  thresholds=dict(min_accuracy=None, max_drop=None))

verification = dict(num_samples=1, atol=1e-3, rtol=1e-2)
