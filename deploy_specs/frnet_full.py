# AWML's FRNet for T4 OT128 (projects/FRNet/configs/t4dataset/frnet_1xb8_t4dataset-ot128-seg.py over
# configs/model/frnet.py: a 128 x 1024 frustum image between -25 and +15 degrees, FrustumFeatureEncoder
# 64/128/256/256 + compression 16, FRNetBackbone ResNet-34 of 128 channels with HSwish, fuse 256/128, FRHead
# 128/256/128/64, 27 classes, ignore_index 26) with AWML's deploy config (configs/deploy/t4dataset/
# frnet_tensorrt_dynamic.py: opset 16, output pred_probs, TensorRT profiles N 5000/60000/160000 points,
# M 3000/30000/60000 frustums), for GPU runs:
#   pytest --deploy-config=deploy_specs/frnet_full.py --deploy-backends=pytorch,onnx@cuda:0,tensorrt@cuda:0
# No trained full-size checkpoint ships; give an AWML one with --deploy-checkpoint (mmdet3d parameter names).
# Without one the weights are random: verification and latency are meaningful, accuracy is not (thresholds off).
# Data: the synthetic labelled sweeps (32 rings, ~25k points) mapped onto the 128-row OT128 grid; pass a T4
# lidarseg info file with --deploy-cfg-options runtime_io.info_pkl=... for real sweeps.
_base_ = ['./frnet.py']
_classes = ['drivable_surface', 'other_flat_surface', 'sidewalk', 'manmade', 'vegetation', 'car', 'bus',
            'emergency_vehicle', 'train', 'truck', 'tractor_unit', 'semi_trailer', 'construction_vehicle',
            'forklift', 'kart', 'motorcycle', 'bicycle', 'pedestrian', 'personal_mobility', 'animal',
            'pushable_pullable', 'traffic_cone', 'stroller', 'debris', 'other_stuff', 'noise', 'unknown']

export = dict(device='cuda:0', work_dir='../work_dirs/frnet_full')
onnx_config = dict(opset_version=16, save_file='frnet_full.onnx')

model = dict(
    kwargs=dict(num_classes=27, in_channels=4, feat_channels=[64, 128, 256, 256], feat_compression=16,
                output_shape=[128, 1024], depth=34, stem_channels=128, out_channels=[128, 128, 128, 128],
                fuse_channels=[256, 128], middle_channels=[128, 256, 128, 64], channels=64, act='HSwish',
                output='pred_probs'),
    checkpoint=None,
)

pipeline = dict(
    kwargs=dict(H=128, W=1024, fov_up=15.0, fov_down=-25.0),
    stages=[
        dict(name='frnet', module='end2end', input_names=['points', 'coors', 'voxel_coors', 'inverse_map'],
             output_names=['pred_probs'],
             dynamic_axes={'points': {0: 'num_points'}, 'coors': {0: 'num_points'},
                           'voxel_coors': {0: 'num_unique_coors'}, 'inverse_map': {0: 'num_points'},
                           'pred_probs': {0: 'num_points'}},
             model_inputs=[dict(name='points', min_shape=[5000, 4], opt_shape=[60000, 4], max_shape=[160000, 4],
                                dtype='float32'),
                           dict(name='coors', min_shape=[5000, 3], opt_shape=[60000, 3], max_shape=[160000, 3],
                                dtype='int64'),
                           dict(name='voxel_coors', min_shape=[3000, 3], opt_shape=[30000, 3],
                                max_shape=[60000, 3], dtype='int64'),
                           dict(name='inverse_map', min_shape=[5000], opt_shape=[60000], max_shape=[160000],
                                dtype='int64')]),
    ],
)

evaluation = dict(num_samples=4, kwargs=dict(class_names=_classes, ignore_index=26),
                  thresholds=dict(min_accuracy=None, max_drop=None))

verification = dict(num_samples=1)
