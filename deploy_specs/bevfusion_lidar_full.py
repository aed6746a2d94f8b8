# AWML's BEVFusion-L (projects/BEVFusion configs/t4dataset/BEVFusion-L/bevfusion_lidar_voxel_second_secfpn_*_120m
# on default_lidar_second_secfpn_120m + default_lidar_intensity_120m: +-122.4 m, 0.17 x 0.17 x 0.2 m voxels,
# sparse grid 1440 x 1440 x 41, basic-block sparse encoder (16,16,32)/(32,32,64)/(64,64,128)/(128,128),
# SECOND 128/256 + SECONDFPN 256/256, BEVFusionHead with 500 proposals, out_size_factor 8 -> 180 x 180 BEV, five
# T4 classes, max 10 points per voxel, 160000 test voxels) for GPU runs, with the TensorRT profile of AWML's
# bevfusion_main_body_lidar_only(_intensity)_tensorrt_dynamic.py (1 / 64000 / 256000 voxels of 10 x 5):
#   pytest --deploy-config=deploy_specs/bevfusion_lidar_full.py --deploy-device cuda:0
# No trained full-size checkpoint ships; --deploy-checkpoint takes an AWML one (mmdet3d/spconv 2 names and
# filter layout). Random weights: verification and latency are meaningful, accuracy is not (thresholds off).
# ONNX Runtime runs the sparse convolutions through the Python reference kernels (models/bevfusion/ort_ops.py)
# on the CPU, so its latency here measures the reference, not a deployment; TensorRT needs Autoware's plugins.
_base_ = ['./bevfusion_lidar.py']
_classes = ['car', 'truck', 'bus', 'bicycle', 'pedestrian']
_range = [-122.4, -122.4, -3.0, 122.4, 122.4, 5.0]
_voxel = [0.17, 0.17, 0.2]

export = dict(device='cuda:0', work_dir='../work_dirs/bevfusion_lidar_full')

onnx_config = dict(save_file='bevfusion_lidar_full.onnx')

model = dict(
    kwargs=dict(num_classes=5, in_channels=5, voxel_size=_voxel, point_cloud_range=_range,
                sparse_shape=[1440, 1440, 41], base_channels=16, output_channels=128,
                encoder_channels=[[16, 16, 32], [32, 32, 64], [64, 64, 128], [128, 128]],
                encoder_paddings=[[0, 0, 1], [0, 0, 1], [0, 0, [1, 1, 0]], [0, 0]], block_type='basicblock',
                backbone_channels=[128, 256], layer_nums=[5, 5], layer_strides=[1, 2], neck_channels=[256, 256],
                upsample_strides=[1, 2], out_size_factor=8, num_proposals=500, hidden_channel=128, num_heads=8,
                ffn_channels=256, num_decoder_layers=1,
                pooling_class_indices=[0, 1, 2, 3]),  # dense_heatmap_pooling_classes: car, truck, bus, bicycle
    checkpoint=None,
)

pipeline = dict(
    kwargs=dict(voxel_size=_voxel, point_cloud_range=_range, max_points=10, max_voxels=160000,
                use_dims=[0, 1, 2, 3, 4], out_size_factor=8, score_threshold=0.1),
    stages=[
        dict(name='main_body', module='main_body', input_names=['voxels', 'coors', 'num_points_per_voxel'],
             output_names=['bbox_pred', 'score', 'label_pred'],
             dynamic_axes={'voxels': {0: 'voxels_num'}, 'coors': {0: 'voxels_num'},
                           'num_points_per_voxel': {0: 'voxels_num'}},
             model_inputs=[dict(name='voxels', min_shape=[1, 10, 5], opt_shape=[64000, 10, 5],
                                max_shape=[256000, 10, 5], dtype='float32'),
                           dict(name='coors', min_shape=[1, 3], opt_shape=[64000, 3], max_shape=[256000, 3],
                                dtype='int32'),
                           dict(name='num_points_per_voxel', min_shape=[1], opt_shape=[64000], max_shape=[256000],
                                dtype='int32')],
             # random weights make the in-graph top-K a set of near-ties: checked end to end (matched boxes) only
             verify=False),
    ],
)

data = dict(kwargs=dict(classes=_classes))

evaluation = dict(num_samples=2, kwargs=dict(class_names=_classes), thresholds=dict(min_accuracy=None, max_drop=None))

verification = dict(num_samples=1, atol=1e-3, rtol=1e-2)

# the reference kernels hand every output back through Python lists (onnxruntime-extensions' PyOp protocol):
# at ~100k voxels a frame one ONNX Runtime inference is slow (not measured here), so few frames and rounds; fp16 is measured on
# the demo (bevfusion_lidar.py), TensorRT's plugins would run the full size
precision = dict(policies=['auto'])
benchmark = dict(warmup=1, rounds=3)
