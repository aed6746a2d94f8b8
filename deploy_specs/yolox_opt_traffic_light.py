# YOLOX_opt-S-TrafficLight (AWML projects/YOLOX_opt, Autoware traffic_light_fine_detector) on the bundled
# synthetic traffic-light crops, pytorch + onnxruntime on CPU, every precision policy:
#   make data && pytest --deploy-config=deploy_specs/yolox_opt_traffic_light.py
# Demo size: 128x128 input and widen_factor 0.125 (the shipped checkpoint, models/yolox/train.py);
# AWML's 416x416 YOLOX-S is yolox_opt_traffic_light_full.py. Classes as AWML's tlr_finedetector.py.
_base_ = ['./_base_/yolox.py']
_classes = ['BACKGROUND', 'traffic_light', 'pedestrian_traffic_light']

family = 'yolox_opt_traffic_light'

export = dict(work_dir='../work_dirs/yolox_opt_traffic_light')

onnx_config = dict(save_file='yolox_opt_s_traffic_light.onnx')

backend_config = dict(
    model_inputs=[dict(name='images', min_shape=(1, 3, 128, 128), opt_shape=(1, 3, 128, 128),
                       max_shape=(4, 3, 128, 128), dtype='float32')],
)

model = dict(
    kwargs=dict(num_classes=3, widen_factor=0.125),
    checkpoint='../pytest_autoware_deploy/models/yolox/checkpoints/yolox_opt_tl_w0125_128.pth',
)

data = dict(kwargs=dict(ann_file='../data/synthetic/yolox_traffic_light/annotations_val.json', input_size=128,
                        classes=_classes))

evaluation = dict(
    kwargs=dict(class_names=_classes),
    thresholds=dict(min_accuracy=0.7, max_drop=0.005),
)
