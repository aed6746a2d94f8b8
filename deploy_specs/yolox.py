# YOLOX (AWML projects/YOLOX, Autoware tensorrt_yolox) on the bundled synthetic road scenes (car, person,
# stop sign), pytorch + onnxruntime on CPU, every precision policy:
#   make data && pytest --deploy-config=deploy_specs/yolox.py
# Demo size: 128x128 input and widen_factor 0.125 (the shipped checkpoint, models/yolox/train.py --scene road);
# AWML's YOLOX-S at 640x640 with the 80 COCO classes is yolox_s_full.py.
_base_ = ['./_base_/yolox.py']
_classes = ['car', 'person', 'stop sign']

family = 'yolox'

export = dict(work_dir='../work_dirs/yolox')

onnx_config = dict(save_file='yolox_road.onnx')

backend_config = dict(
    model_inputs=[dict(name='images', min_shape=(1, 3, 128, 128), opt_shape=(1, 3, 128, 128),
                       max_shape=(4, 3, 128, 128), dtype='float32')],
)

model = dict(
    kwargs=dict(num_classes=3, widen_factor=0.125),
    checkpoint='../pytest_autoware_deploy/models/yolox/checkpoints/yolox_road_w0125_128.pth',
)

data = dict(kwargs=dict(ann_file='../data/synthetic/yolox_road/annotations_val.json', input_size=128,
                        classes=_classes))

evaluation = dict(
    kwargs=dict(class_names=_classes),
    thresholds=dict(min_accuracy=0.6, max_drop=0.005),
)
