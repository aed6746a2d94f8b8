# Deploy spec for AWML's YOLOX_opt-ELAN, given with its model config (the published file sets the network):
#   pytest --deploy-config=tests/models/yolox/elan_deploy.py --deploy-model-config=<AWML>/projects/YOLOX_opt_elan/\
#       configs/bdd100k/YOLOX_opt-S-DynamicRecognition/yolox-s-opt-elan_960x960_300e_bdd100k.py
# No trained ELAN weights are shipped: random weights (seed 0) unless --deploy-checkpoint is given, so accuracy
# is off; export, verification and latency run. 128x128 on the synthetic road split (make data); AWML's
# 960x960 by --deploy-cfg-options data.kwargs.input_size=960 and the model_inputs shapes.
_base_ = ['../../../deploy_specs/_base_/yolox.py']

family = 'yolox'

export = dict(work_dir='../../../work_dirs/yolox_opt_elan')

onnx_config = dict(save_file='yolox_opt_elan.onnx')

backend_config = dict(
    model_inputs=[dict(name='images', min_shape=(1, 3, 128, 128), opt_shape=(1, 3, 128, 128),
                       max_shape=(2, 3, 128, 128), dtype='float32')],
)

data = dict(kwargs=dict(ann_file='../../../data/synthetic/yolox_road/annotations_val.json', input_size=128))

evaluation = dict(enabled=False)  # random weights: no accuracy to assert

precision = dict(policies=['auto'])

benchmark = dict(warmup=2, rounds=10, batch_sizes=[1])

verification = dict(num_samples=1)
