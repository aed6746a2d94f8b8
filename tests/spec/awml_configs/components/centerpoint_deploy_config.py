# Mirror of a generation-4 deploy config (deployment/ package)
# tier4/AWML PR #115 @ f2e5a9455f229b747d9b15fb6c72b0eb8848a732, path deployment/projects/centerpoint/config/deploy_config.py
# Keys, nesting and values as published; nothing edited.
"""
CenterPoint Deployment Configuration
"""

# ============================================================================
# Checkpoint Path - Single source of truth for PyTorch model
# ============================================================================
checkpoint_path = "work_dirs/centerpoint/best_checkpoint.pth"

# Log file path (relative paths are under export.work_dir). Set to None to disable file logging.
deploy_log_path = "deployment.log"

# ============================================================================
# Device settings (shared by export, evaluation, verification)
# ============================================================================
devices = dict(
    cpu="cpu",
    cuda="cuda:0",
)

# Single literal for deployment output root (used before `export` exists).
_DEPLOY_WORK_DIR = "work_dirs/centerpoint_deployment"
_WORK_DIR = _DEPLOY_WORK_DIR.rstrip("/")
_ONNX_DIR = f"{_WORK_DIR}/onnx"
_TENSORRT_DIR = f"{_WORK_DIR}/tensorrt"

# ============================================================================
# Export Configuration
# mode: "onnx", "trt", "both", "none"
# work_dir: path to the deployment output root
# onnx_path: path to the ONNX output directory (if mode="trt" and ONNX already exists)
# ============================================================================
export = dict(
    mode="both",
    work_dir=_DEPLOY_WORK_DIR,
    onnx_path=_ONNX_DIR,
)


# ============================================================================
# Unified Component Configuration (Single Source of Truth)
#
# Component key is the unique identifier (used for config lookup, filenames, logs).
# Each component defines:
#   - onnx_file: Output ONNX filename
#   - engine_file: Output TensorRT engine filename
#   - io: Input/output specification for ONNX export
#   - tensorrt_profile: TensorRT optimization profile (min/opt/max shapes)
# ============================================================================
components = dict(
    pts_voxel_encoder=dict(
        onnx_file="pts_voxel_encoder.onnx",
        engine_file="pts_voxel_encoder.engine",
        io=dict(
            inputs=[
                dict(name="input_features", dtype="float32"),
            ],
            outputs=[
                dict(name="pillar_features", dtype="float32"),
            ],
            dynamic_axes={
                "input_features": {0: "num_voxels", 1: "num_max_points"},
                "pillar_features": {0: "num_voxels"},
            },
        ),
        tensorrt_profile=dict(
            input_features=dict(
                # Make sure to match the shape of the input to the model
                min_shape=[1000, 32, 11],
                opt_shape=[20000, 32, 11],
                max_shape=[96000, 32, 11],
            ),
        ),
    ),
    pts_backbone_neck_head=dict(
        onnx_file="pts_backbone_neck_head.onnx",
        engine_file="pts_backbone_neck_head.engine",
        io=dict(
            inputs=[
                dict(name="spatial_features", dtype="float32"),
            ],
            outputs=[
                dict(name="heatmap", dtype="float32"),
                dict(name="reg", dtype="float32"),
                dict(name="height", dtype="float32"),
                dict(name="dim", dtype="float32"),
                dict(name="rot", dtype="float32"),
                dict(name="vel", dtype="float32"),
            ],
            dynamic_axes={
                "spatial_features": {0: "batch_size", 2: "height", 3: "width"},
                "heatmap": {0: "batch_size", 2: "height", 3: "width"},
                "reg": {0: "batch_size", 2: "height", 3: "width"},
                "height": {0: "batch_size", 2: "height", 3: "width"},
                "dim": {0: "batch_size", 2: "height", 3: "width"},
                "rot": {0: "batch_size", 2: "height", 3: "width"},
                "vel": {0: "batch_size", 2: "height", 3: "width"},
            },
        ),
        tensorrt_profile=dict(
            spatial_features=dict(
                # Make sure to match the shape of the input to the model
                # check grid size in the model config
                min_shape=[1, 32, 1020, 1020],
                opt_shape=[1, 32, 1020, 1020],
                max_shape=[1, 32, 1020, 1020],
            ),
        ),
    ),
)

# ============================================================================
# Runtime I/O settings
# ============================================================================
runtime_io = dict(
    # This should be a path relative to `data_root` in the model config.
    info_file="info/t4dataset_j6gen2_base_infos_test.pkl",
    sample_idx=5,
)

# ============================================================================
# ONNX Export Settings (shared across all components)
# ============================================================================
onnx_config = dict(
    opset_version=17,
    do_constant_folding=True,
    export_params=True,
    keep_initializers_as_inputs=False,
    simplify=False,
)

# ============================================================================
# TensorRT Build Settings (shared across all components)
# Supports `auto`, `fp16`, `fp32_tf32`, and `strongly_typed`
# ============================================================================
tensorrt_config = dict(
    precision_policy="auto",
    max_workspace_size=2 << 30,
)

# ============================================================================
# Evaluation Configuration
# ============================================================================
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

# ============================================================================
# Verification Configuration
#
# Tolerance is backend- and machine-dependent:
# - The same scenario can show very different max/mean diffs on different machines: GPU
#   architecture, driver, ORT/CUDA/TRT versions, and ORT's CUDA graph partitioning (CPU
#   fallback nodes for small ops) all change numerics. ONNX on CPU, ONNX on CUDA, and
#   TensorRT on CUDA are not directly comparable to each other as "one true" references.
# - Additionally, the verification configuration should use a precision-aware tolerance,
#   especially when FP16 is enabled.
# ============================================================================
verification = dict(
    enabled=False,
    # TODO(vividf): double check the tolerance value
    tolerance=1,
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
