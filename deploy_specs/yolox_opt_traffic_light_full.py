# YOLOX_opt-S-TrafficLight at AWML's size for GPU runs: 416x416, YOLOX-S (deepen 0.33, widen 0.5), 3 classes:
#   pytest --deploy-config=deploy_specs/yolox_opt_traffic_light_full.py --deploy-device cuda:0
# No trained full-size checkpoint ships: give yours with --deploy-checkpoint (an AWML epoch_*.pth loads).
# Without one the weights are random: verification and latency mean something, accuracy does not
# (thresholds off). The synthetic val images are letterboxed up to 416 by the loader.
_base_ = ['./yolox_opt_traffic_light.py']

export = dict(work_dir='../work_dirs/yolox_opt_traffic_light_full')

backend_config = dict(
    model_inputs=[dict(name='images', min_shape=(1, 3, 416, 416), opt_shape=(1, 3, 416, 416),
                       max_shape=(6, 3, 416, 416), dtype='float32')],
)

model = dict(kwargs=dict(widen_factor=0.5), checkpoint=None)

data = dict(kwargs=dict(input_size=416))

evaluation = dict(thresholds=dict(min_accuracy=None, max_drop=None))

verification = dict(num_samples=1)

benchmark = dict(warmup=10, rounds=50)
