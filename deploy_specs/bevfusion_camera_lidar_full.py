# AWML's BEVFusion-CL (projects/BEVFusion configs/t4dataset/BEVFusion-CL: the BEVFusion-L 120 m lidar branch of
# bevfusion_lidar_full.py plus mmdet Swin-T (embed 96, depths 2,2,6,2, window 7, out_indices 1,2,3),
# GeneralizedLSSFPN 192/384/768 -> 256, DepthLSSTransform 256 -> 80 channels (xbound/ybound +-122.4 m at 0.68 m,
# zbound -10..10 m in one cell, dbound 1..166.2 m at 1.4 m: 118 bins, downsample 2 -> 180 x 180), ConvFuser
# [80, 256] -> 256) at 384x768 images from T4's six cameras, random weights, for GPU runs:
#   python -m pytest_autoware_deploy.models.bevfusion_camera_lidar.synthetic --out data/synthetic/bevfusion_camera_lidar_full \
#       --frames 2 --height 384 --width 768 --cameras 6
#   pytest --deploy-config=deploy_specs/bevfusion_camera_lidar_full.py --deploy-device cuda:0
# No trained full-size checkpoint ships: verification and latency are meaningful, accuracy is not (thresholds off).
# ONNX Runtime runs the custom ops through the reference kernels (models/bevfusion/ort_ops.py) on the CPU, so its
# latency measures the reference, not a deployment; TensorRT needs Autoware's plugins (autoware_tensorrt_plugins).
_base_ = ['./bevfusion_camera_lidar.py']
_classes = ['car', 'truck', 'bus', 'bicycle', 'pedestrian']
_range = [-122.4, -122.4, -3.0, 122.4, 122.4, 5.0]
_voxel = [0.17, 0.17, 0.2]
_bounds = dict(xbound=[-122.4, 122.4, 0.68], ybound=[-122.4, 122.4, 0.68], zbound=[-10.0, 10.0, 20.0],
               dbound=[1.0, 166.2, 1.4])
_cams = 6
_frustum = _cams * 118 * 48 * 96

export = dict(device='cuda:0', work_dir='../work_dirs/bevfusion_camera_lidar_full')

runtime_io = dict(info_pkl='../data/synthetic/bevfusion_camera_lidar_full/info_val.pkl')

onnx_config = dict(save_file='bevfusion_camera_lidar_full.onnx')

model = dict(
    kwargs=dict(num_classes=5, in_channels=5, voxel_size=_voxel, point_cloud_range=_range,
                sparse_shape=[1440, 1440, 41], base_channels=16, output_channels=128,
                encoder_channels=[[16, 16, 32], [32, 32, 64], [64, 64, 128], [128, 128]],
                encoder_paddings=[[0, 0, 1], [0, 0, 1], [0, 0, [1, 1, 0]], [0, 0]], block_type='basicblock',
                backbone_channels=[128, 256], layer_nums=[5, 5], layer_strides=[1, 2], neck_channels=[256, 256],
                upsample_strides=[1, 2], out_size_factor=8, num_proposals=500, hidden_channel=128, num_heads=8,
                ffn_channels=256, num_decoder_layers=1, pooling_class_indices=[0, 1, 2, 3],
                image_size=[384, 768], feature_size=[48, 96], embed_dims=96, depths=[2, 2, 6, 2],
                swin_num_heads=[3, 6, 12, 24], window_size=7, img_neck_channels=256, vtransform_channels=80,
                vtransform_downsample=2, fuser_channels=256, **_bounds),
    checkpoint=None,
)

pipeline = dict(
    kwargs=dict(voxel_size=_voxel, point_cloud_range=_range, max_points=10, max_voxels=160000,
                use_dims=[0, 1, 2, 3, 4], out_size_factor=8, score_threshold=0.1, image_size=[384, 768],
                feature_size=[48, 96], **_bounds),
    stages=[
        dict(name='image_backbone', module='image_backbone', input_names=['imgs'], output_names=['image_feats'],
             dynamic_axes={'imgs': {0: 'num_imgs'}, 'image_feats': {0: 'num_imgs'}},
             model_inputs=[dict(name='imgs', min_shape=[1, 3, 384, 768], opt_shape=[_cams, 3, 384, 768],
                                max_shape=[_cams, 3, 384, 768], dtype='uint8')]),
        dict(name='main_body', module='main_body',
             input_names=['voxels', 'coors', 'num_points_per_voxel', 'lidar2image', 'img_aug_matrix', 'geom_feats',
                          'kept', 'ranks', 'indices', 'image_feats'],
             output_names=['bbox_pred', 'score', 'label_pred'],
             dynamic_axes={'voxels': {0: 'voxels_num'}, 'coors': {0: 'voxels_num'},
                           'num_points_per_voxel': {0: 'voxels_num'}, 'lidar2image': {0: 'num_imgs'},
                           'img_aug_matrix': {0: 'num_imgs'}, 'geom_feats': {0: 'num_kept'}, 'kept': {0: 'num_frustum'},
                           'ranks': {0: 'num_kept'}, 'indices': {0: 'num_kept'}, 'image_feats': {0: 'num_imgs'}},
             model_inputs=[dict(name='voxels', min_shape=[1, 10, 5], opt_shape=[64000, 10, 5],
                                max_shape=[256000, 10, 5], dtype='float32'),
                           dict(name='coors', min_shape=[1, 3], opt_shape=[64000, 3], max_shape=[256000, 3],
                                dtype='int32'),
                           dict(name='num_points_per_voxel', min_shape=[1], opt_shape=[64000], max_shape=[256000],
                                dtype='int32'),
                           dict(name='lidar2image', min_shape=[1, 4, 4], opt_shape=[_cams, 4, 4],
                                max_shape=[_cams, 4, 4], dtype='float32'),
                           dict(name='img_aug_matrix', min_shape=[1, 4, 4], opt_shape=[_cams, 4, 4],
                                max_shape=[_cams, 4, 4], dtype='float32'),
                           dict(name='geom_feats', min_shape=[1, 4], opt_shape=[_frustum // 2, 4],
                                max_shape=[_frustum, 4], dtype='int32'),
                           dict(name='kept', min_shape=[1], opt_shape=[_frustum], max_shape=[_frustum], dtype='bool'),
                           dict(name='ranks', min_shape=[1], opt_shape=[_frustum // 2], max_shape=[_frustum],
                                dtype='int64'),
                           dict(name='indices', min_shape=[1], opt_shape=[_frustum // 2], max_shape=[_frustum],
                                dtype='int64'),
                           dict(name='image_feats', min_shape=[1, 256, 48, 96], opt_shape=[_cams, 256, 48, 96],
                                max_shape=[_cams, 256, 48, 96], dtype='float32')],
             verify=False),
    ],
)

data = dict(kwargs=dict(classes=_classes))

evaluation = dict(num_samples=2, kwargs=dict(class_names=_classes), thresholds=dict(min_accuracy=None, max_drop=None))

verification = dict(num_samples=1, atol=1e-3, rtol=1e-2)

precision = dict(policies=['auto'])
benchmark = dict(warmup=1, rounds=3)
