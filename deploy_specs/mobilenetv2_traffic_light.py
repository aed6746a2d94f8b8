# MobileNetv2 car traffic-light classifier (AWML projects/MobileNetv2, Autoware traffic_light_classifier) on the
# bundled synthetic crops, pytorch + onnxruntime on CPU, every precision policy:
#   make data && pytest --deploy-config=deploy_specs/mobilenetv2_traffic_light.py
# Demo size: 64x64 input and widen_factor 0.5 (the shipped checkpoint, models/mobilenetv2_traffic_light/train.py);
# AWML's 224x224 full-width model is mobilenetv2_traffic_light_full.py. Classes as AWML's tlr_classifier_car.py.
_classes = ['green', 'left,red', 'left,red,straight', 'red', 'red,right', 'red,straight', 'unknown', 'yellow',
            'red,up_left', 'red,right,straight', 'red,up_right']

family = 'mobilenetv2_traffic_light'

export = dict(mode='onnx', verify=True, device='cpu', work_dir='../work_dirs/mobilenetv2_traffic_light')

runtime_io = dict(sample_idx=0)

# AWML's deploy config names ('input' -> 'output', class probabilities); AWML builds fixed batch 1/4/6,
# here the batch is dynamic. opset 17 (AWML: 11) because int8 per-channel Q/DQ needs >= 13.
onnx_config = dict(
    opset_version=17,
    input_names=['input'],
    output_names=['output'],
    save_file='traffic_light_classifier_mobilenetv2.onnx',
    dynamic_axes={'input': {0: 'batch'}, 'output': {0: 'batch'}},
)

backend_config = dict(
    common_config=dict(precision_policy='auto', max_workspace_size=1 << 30),
    model_inputs=[dict(name='input', min_shape=(1, 3, 64, 64), opt_shape=(1, 3, 64, 64),
                       max_shape=(6, 3, 64, 64), dtype='float32')],
)

model = dict(
    kwargs=dict(num_classes=11, widen_factor=0.5),
    checkpoint='../pytest_autoware_deploy/models/mobilenetv2_traffic_light/checkpoints/mobilenetv2_w05_64.pth',
)

data = dict(kwargs=dict(ann_file='../data/synthetic/mobilenetv2_traffic_light/annotations_val.json', input_size=64))

evaluation = dict(
    enabled=True,
    num_samples=-1,
    models_to_evaluate=['pytorch', 'onnx'],
    evaluator='classification',
    kwargs=dict(class_names=_classes),
    thresholds=dict(min_accuracy=0.9, max_drop=0.005),
)

verification = dict(num_samples=2, atol=1e-4, rtol=1e-3, reference='pytorch')

precision = dict(policies=['auto', 'fp32_tf32', 'fp16', 'int8'])

benchmark = dict(warmup=5, rounds=30)
