# AWML's MobileNetv2 traffic-light classifier at full size for GPU runs: 224x224, widen_factor 1.0, 11 classes:
#   pytest --deploy-config=deploy_specs/mobilenetv2_traffic_light_full.py --deploy-device cuda:0
# No trained checkpoint ships: give yours with --deploy-checkpoint (an AWML epoch_*.pth loads). Without one the
# weights are random: verification and latency mean something, accuracy does not (thresholds off).
_base_ = ['./mobilenetv2_traffic_light.py']

export = dict(work_dir='../work_dirs/mobilenetv2_traffic_light_full')

backend_config = dict(
    model_inputs=[dict(name='input', min_shape=(1, 3, 224, 224), opt_shape=(1, 3, 224, 224),
                       max_shape=(6, 3, 224, 224), dtype='float32')],
)

model = dict(kwargs=dict(widen_factor=1.0), checkpoint=None)

data = dict(kwargs=dict(input_size=224))

evaluation = dict(thresholds=dict(min_accuracy=None, max_drop=None))

verification = dict(num_samples=1)

benchmark = dict(warmup=10, rounds=50)
