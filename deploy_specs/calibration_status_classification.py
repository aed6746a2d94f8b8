# CalibrationStatusClassification on the bundled synthetic dataset, pytorch + onnxruntime on CPU.
#   make data && pytest --deploy-config=deploy_specs/calibration_status_classification.py
# Demo resolution 120x192 and a ResNet18 of base width 16 (the shipped checkpoint); the model and
# the 5-channel input are AWML's. The full-size variant is calibration_status_classification_full.py.
_base_ = ['./_base_/calibration_status_classification.py']

model = dict(
    kwargs=dict(base_channels=16),
    checkpoint='../pytest_autoware_deploy/models/calibration_status_classification/checkpoints/resnet18_w16_120x192.pth',
)

backend_config = dict(
    model_inputs=[dict(name='input', min_shape=(1, 5, 120, 192), opt_shape=(1, 5, 120, 192),
                       max_shape=(4, 5, 120, 192), dtype='float32')],
)
