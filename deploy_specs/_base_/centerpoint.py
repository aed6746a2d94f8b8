# Shared settings of the CenterPoint specs: Autoware's lidar_centerpoint deployment, two ONNX stages with
# voxelization, the pillar scatter and decoding on the host (models/centerpoint/pipeline.py).
_base_ = ['./lidar_detection.py']
family = 'centerpoint'
_classes = ['car', 'bicycle', 'pedestrian']

export = dict(mode='onnx', verify=True, device='cpu', work_dir='../work_dirs/centerpoint')

# make data-lidar: the synthetic T4-format val split (60 sweeps)
runtime_io = dict(info_pkl='../data/synthetic/lidar/info_val.pkl', sample_idx=0)

# The pipeline's own inputs and final outputs (boxes_3d: x, y, z_bottom, l, w, h, yaw, vx, vy).
onnx_config = dict(opset_version=17, do_constant_folding=True, input_names=['points'],
                   output_names=['boxes_3d', 'scores', 'labels'], save_file='centerpoint.onnx')

backend_config = dict(common_config=dict(precision_policy='auto', max_workspace_size=1 << 30))

pipeline = dict(
    kwargs=dict(),
    stages=[
        # AWML CenterPointONNX.save_onnx: pts_voxel_encoder.onnx (input_features -> pillar_features (V, 1, C))
        dict(name='pts_voxel_encoder', module='pts_voxel_encoder',
             input_names=['input_features'], output_names=['pillar_features'],
             dynamic_axes={'input_features': {0: 'num_voxels'}, 'pillar_features': {0: 'num_voxels'}},
             # TensorRT's profile for the dynamic voxel axis (demo: 20 points x 10 features, up to max_voxels
             # 30000, ~4.5k voxels a frame); centerpoint_full.py declares its own stages
             model_inputs=[dict(name='input_features', min_shape=[1, 20, 10], opt_shape=[5000, 20, 10],
                                max_shape=[30000, 20, 10], dtype='float32')]),
        # ... and pts_backbone_neck_head.onnx (spatial_features -> the six raw head maps)
        dict(name='pts_backbone_neck_head', module='pts_backbone_neck_head',
             input_names=['spatial_features'], output_names=['heatmap', 'reg', 'height', 'dim', 'rot', 'vel'],
             dynamic_axes=None),
    ],
)

data = dict(kwargs=dict(classes=_classes))

evaluation = dict(
    enabled=True, num_samples=-1, models_to_evaluate=['pytorch', 'onnx'],
    evaluator='detection3d', kwargs=dict(class_names=_classes, primary_metric='mAP'),
)

# fp16 measured on CPU (demo, 2 frames): centre 4e-4 m, size 1.6e-3 m, yaw 6e-3 rad, score 6e-4, all 48 matched;
# mAP 0.8564 = fp32: the shared fp16 box tolerances of lidar_detection.py hold
