# Shared settings of the CalibrationStatusClassification specs (AWML's deploy config keys).
family = 'calibration_status_classification'

export = dict(
    mode='onnx',            # 'onnx', 'trt', 'both', 'none'
    verify=True,
    device='cpu',           # --deploy-device cuda:0 on a GPU machine
    work_dir='../work_dirs/calibration_status_classification',
)

runtime_io = dict(
    info_pkl='../data/synthetic/calibration_status_classification/info_val.pkl',
    sample_idx=0,
)

onnx_config = dict(
    opset_version=16,
    do_constant_folding=True,
    input_names=['input'],
    output_names=['output'],
    save_file='calibration_status_classification.onnx',
    export_params=True,
    dynamic_axes={'input': {0: 'batch_size', 2: 'height', 3: 'width'}, 'output': {0: 'batch_size'}},
    keep_initializers_as_inputs=False,
)

backend_config = dict(
    common_config=dict(precision_policy='auto', max_workspace_size=1 << 30),
)

model = dict(kwargs=dict(in_channels=5, num_classes=2, depth=18, base_channels=64))

data = dict(kwargs=dict(miscalibration_probability=0.5, seed=0))

evaluation = dict(
    enabled=True,
    num_samples=-1,
    verbose=False,
    models_to_evaluate=['pytorch', 'onnx'],
    evaluator='classification',
    kwargs=dict(class_names=['miscalibrated', 'calibrated']),
    thresholds=dict(min_accuracy=0.9, max_drop=0.005),
)

verification = dict(num_samples=3, atol=1e-4, rtol=1e-3, reference='pytorch')

benchmark = dict(warmup=5, rounds=30)
