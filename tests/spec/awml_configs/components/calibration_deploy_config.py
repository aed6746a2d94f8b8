# Generation 4 (tier4/AWML PR #115 @ f2e5a9455f229b747d9b15fb6c72b0eb8848a732, deployment/ package) for
# CalibrationStatusClassification. PR #115 publishes a deploy config for CenterPoint only; this file is that
# config's layout (deployment/projects/centerpoint/config/deploy_config.py) with one component, named and sized
# as the CalibrationStatusClassification configs of generations 2 and 3, and only the keys the PR's schema
# (deployment/configs/schema.py, base.py) reads.
checkpoint_path = "work_dirs/calibration_classifier/best_accuracy_top1_epoch_28.pth"

deploy_log_path = "deployment.log"

devices = dict(
    cpu="cpu",
    cuda="cuda:0",
)

_DEPLOY_WORK_DIR = "work_dirs/calibration_classifier_deployment"
_WORK_DIR = _DEPLOY_WORK_DIR.rstrip("/")
_ONNX_DIR = f"{_WORK_DIR}/onnx"
_TENSORRT_DIR = f"{_WORK_DIR}/tensorrt"

export = dict(
    mode="both",
    work_dir=_DEPLOY_WORK_DIR,
    onnx_path=_ONNX_DIR,
)

components = dict(
    model=dict(
        onnx_file="end2end.onnx",
        engine_file="end2end.engine",
        io=dict(
            inputs=[
                dict(name="input", dtype="float32"),
            ],
            outputs=[
                dict(name="output", dtype="float32"),
            ],
            dynamic_axes={
                "input": {0: "batch_size", 2: "height", 3: "width"},
                "output": {0: "batch_size"},
            },
        ),
        tensorrt_profile=dict(
            input=dict(
                min_shape=[1, 5, 1080, 1920],
                opt_shape=[1, 5, 1860, 2880],
                max_shape=[1, 5, 2160, 3840],
            ),
        ),
    ),
)

runtime_io = dict(
    info_file="calibration_info/t4dataset_gen2_base_infos_test.pkl",
    sample_idx=0,
)

onnx_config = dict(
    opset_version=16,
    do_constant_folding=True,
    export_params=True,
    keep_initializers_as_inputs=False,
    simplify=False,
)

tensorrt_config = dict(
    precision_policy="fp16",
    max_workspace_size=1 << 30,
)

evaluation = dict(
    enabled=True,
    num_samples=1,
    verbose=True,
    backends=dict(
        pytorch=dict(
            enabled=True,
            device=devices["cuda"],
        ),
        onnx=dict(
            enabled=True,
            device=devices["cuda"],
            model_dir=_ONNX_DIR,
        ),
        tensorrt=dict(
            enabled=True,
            device=devices["cuda"],
            engine_dir=_TENSORRT_DIR,
        ),
    ),
)

verification = dict(
    enabled=True,
    tolerance=1e-1,
    num_verify_samples=1,
    devices=devices,
    scenarios=dict(
        both=[
            dict(ref_backend="pytorch", ref_device="cpu", test_backend="onnx", test_device="cpu"),
            dict(ref_backend="onnx", ref_device="cuda", test_backend="tensorrt", test_device="cuda"),
        ],
        onnx=[
            dict(ref_backend="pytorch", ref_device="cpu", test_backend="onnx", test_device="cpu"),
        ],
        trt=[
            dict(ref_backend="onnx", ref_device="cuda", test_backend="tensorrt", test_device="cuda"),
        ],
        none=[],
    ),
)
