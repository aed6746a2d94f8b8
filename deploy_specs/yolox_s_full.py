# YOLOX-S as AWML's projects/YOLOX/configs/yolox_s_8xb8-300e_coco.py builds it, for GPU runs: 640x640,
# deepen 0.33 / widen 0.5, the 80 COCO classes:
#   pytest --deploy-config=deploy_specs/yolox_s_full.py --deploy-device cuda:0
# No trained checkpoint ships: give yours with --deploy-checkpoint. Without one the weights are random:
# verification and latency mean something, accuracy does not (thresholds off). The synthetic road images'
# categories are COCO names, mapped onto the 80 classes by name (mmdet's metainfo classes).
_base_ = ['./yolox.py']
_classes = [
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light',
    'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee',
    'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
    'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
    'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch',
    'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone',
    'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hair drier', 'toothbrush']

export = dict(work_dir='../work_dirs/yolox_s_full')

onnx_config = dict(save_file='yolox_s.onnx')

backend_config = dict(
    model_inputs=[dict(name='images', min_shape=(1, 3, 640, 640), opt_shape=(1, 3, 640, 640),
                       max_shape=(4, 3, 640, 640), dtype='float32')],
)

model = dict(kwargs=dict(num_classes=80, widen_factor=0.5), checkpoint=None)

data = dict(kwargs=dict(input_size=640, classes=_classes))

evaluation = dict(kwargs=dict(class_names=_classes), thresholds=dict(min_accuracy=None, max_drop=None))

verification = dict(num_samples=1)

benchmark = dict(warmup=10, rounds=50)
