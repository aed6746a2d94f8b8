# AWML's TransFusion-L (transfusion_lidar_pillar_second_secfpn_1xb1_90m-768grid: +-92.16 m, 0.24 m pillars,
# 768x768 canvas, out_size_factor 4, 500 queries, five T4 classes) for GPU runs, with the TensorRT profile of
# AWML's deploy config (transfusion_lidar_tensorrt_dynamic-20x5.py: 5000 / 30000 / 60000 voxels of 20 x 5):
#   pytest --deploy-config=deploy_specs/transfusion_lidar_full.py --deploy-device cuda:0
# No trained full-size checkpoint ships; --deploy-checkpoint takes an AWML one (mmdet3d parameter names).
# Random weights: verification and latency are meaningful, accuracy is not (thresholds off).
_base_ = ['./transfusion_lidar.py']
_classes = ['car', 'truck', 'bus', 'bicycle', 'pedestrian']
_range = [-92.16, -92.16, -3.0, 92.16, 92.16, 7.0]
_voxel = [0.24, 0.24, 10.0]

export = dict(device='cuda:0', work_dir='../work_dirs/transfusion_lidar_full')

model = dict(
    kwargs=dict(num_classes=5, in_channels=5, pfn_channels=[64, 64], voxel_size=_voxel, point_cloud_range=_range,
                backbone_channels=[64, 128, 256], layer_nums=[3, 5, 5], layer_strides=[2, 2, 2],
                neck_channels=[128, 128, 128], upsample_strides=[0.5, 1, 2], out_size_factor=4, num_proposals=500,
                hidden_channel=128, num_heads=8, ffn_channels=256, num_decoder_layers=1),
    checkpoint=None,
)

pipeline = dict(
    kwargs=dict(voxel_size=_voxel, point_cloud_range=_range, max_points=20, max_voxels=60000,
                use_dims=[0, 1, 2, 3, 4], out_size_factor=4, score_threshold=0.1),
    stages=[
        dict(name='end2end', module='end2end', input_names=['voxels', 'num_points', 'coors'],
             output_names=['cls_score0', 'bbox_pred0', 'dir_cls_pred0'],
             dynamic_axes={'voxels': {0: 'voxels_num'}, 'num_points': {0: 'voxels_num'}, 'coors': {0: 'voxels_num'}},
             model_inputs=[dict(name='voxels', min_shape=[5000, 20, 5], opt_shape=[30000, 20, 5],
                                max_shape=[60000, 20, 5], dtype='float32'),
                           dict(name='num_points', min_shape=[5000], opt_shape=[30000], max_shape=[60000],
                                dtype='int32'),
                           dict(name='coors', min_shape=[5000, 4], opt_shape=[30000, 4], max_shape=[60000, 4],
                                dtype='int32')],
             # random weights make the in-graph top-K of queries a set of near-ties: raw per-query tensors of two
             # backends need not line up, so this stage is checked end to end (decoded, matched boxes) only
             verify=False),
    ],
)

data = dict(kwargs=dict(classes=_classes))

evaluation = dict(num_samples=10, kwargs=dict(class_names=_classes), thresholds=dict(min_accuracy=None, max_drop=None))

verification = dict(num_samples=1, atol=1e-3, rtol=1e-2)
