# Swin-T camera backbone as a component spec (issue 14, SwinTransformer row): AWML BEVFusion's image-backbone
# ONNX -- 'imgs' uint8 [N,3,H,W], normalization inside the graph, mmdet SwinTransformer + GeneralizedLSSFPN,
# 'image_feats' [N,C,H/8,W/8] -- on synthetic camera frames, pytorch + onnxruntime on CPU:
#   make data && pytest --deploy-config=deploy_specs/swin.py
# Demo size (the shipped checkpoint, models/swin/train.py): 32x64 frames, embed 16, depths 2,2,2,2,
# heads 1,2,4,8, window 4, neck 32 channels. AWML's Swin-T at 384x768 x 6 cameras is swin_full.py.
# Accuracy = a fixed linear probe (global max pool + linear, trained with the backbone) on each backend's
# image_feats: 6 shape classes, chance 1/6 (models/swin/evaluator.py).
family = 'swin'

export = dict(mode='onnx', verify=True, device='cpu', work_dir='../work_dirs/swin')

runtime_io = dict(sample_idx=0)

# AWML's configs/deploy/bevfusion_camera_backbone_tensorrt_dynamic.py: names, opset 17, only the camera count
# dynamic. Its dynamic_axes name only 'imgs'; 'image_feats' follows it here so the output's batch is declared.
onnx_config = dict(
    opset_version=17,
    input_names=['imgs'],
    output_names=['image_feats'],
    save_file='bevfusion_image_backbone.onnx',
    dynamic_axes={'imgs': {0: 'num_imgs'}, 'image_feats': {0: 'num_imgs'}},
    export_params=True,
    keep_initializers_as_inputs=False,
)

backend_config = dict(
    common_config=dict(precision_policy='auto', max_workspace_size=1 << 30),
    model_inputs=[dict(name='imgs', min_shape=(1, 3, 32, 64), opt_shape=(6, 3, 32, 64),
                       max_shape=(6, 3, 32, 64), dtype='uint8')],
)

model = dict(
    kwargs=dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 4, 8), window_size=4, out_channels=32),
    checkpoint='../pytest_autoware_deploy/models/swin/checkpoints/swin_demo.pth',
)

data = dict(kwargs=dict(ann_file='../data/synthetic/swin/annotations_val.json', image_size=(32, 64)))

evaluation = dict(
    enabled=True,
    num_samples=120,  # the first 120 val frames (20 per class): the demo stays around a minute on 2 CPU cores
    models_to_evaluate=['pytorch', 'onnx'],
    kwargs=dict(probe_file='../pytest_autoware_deploy/models/swin/checkpoints/swin_demo_probe.npz'),
    thresholds=dict(min_accuracy=0.9, max_drop=0.01),
)

verification = dict(num_samples=2, atol=1e-4, rtol=1e-3, reference='pytorch')

# fp16: the project's sensitive ops (LayerNormalization, Softmax, Erf, ... stay fp32) plus the input
# normalisation (Sub, Div): in fp16 the uint8 -> float Cast would feed an fp16 rounding that ONNX Runtime folds
# away (exact for 0..255), which leaves the CPU's fp16 emulation unable to prove it measures fp16 arithmetic.
precision = dict(
    policies=['auto', 'fp16'],
    fp16=dict(op_block_list=['BatchNormalization', 'LayerNormalization', 'InstanceNormalization',
                             'GroupNormalization', 'Softmax', 'LogSoftmax', 'ReduceMean', 'ReduceSum',
                             'ReduceSumSquare', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum',
                             'ReduceLogSumExp', 'Exp', 'Log', 'Pow', 'Sqrt', 'Reciprocal', 'Erf', 'CumSum', 'Einsum',
                             'TopK', 'NonMaxSuppression', 'RoiAlign', 'Sub', 'Div']),
)

benchmark = dict(warmup=3, rounds=10)
