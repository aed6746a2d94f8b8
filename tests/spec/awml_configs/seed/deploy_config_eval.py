# Generation 1: the seed README's form (autoware_ml/deployment/README.md, shared/seed copy), composed from its
# "Basic Export" (runtime_io, onnx_config, backend_config) and "Export with Full Evaluation" (export, evaluation)
# blocks, keys and values as the README prints them.
export = dict(
    mode='both',
    verify=True,
    device='cuda:0',
    work_dir='work_dirs/deployment'
)

runtime_io = dict(
    info_pkl='path/to/info.pkl',  # Dataset info file
    sample_idx=0                   # Sample index for export
)

onnx_config = dict(
    opset_version=16,
    do_constant_folding=True,
    input_names=['input'],
    output_names=['output'],
    save_file='model.onnx',
    dynamic_axes={
        'input': {0: 'batch_size'},
        'output': {0: 'batch_size'}
    }
)

backend_config = dict(
    common_config=dict(
        precision_policy='auto',      # Options: 'auto', 'fp16', 'fp32_tf32', 'int8'
        max_workspace_size=1 << 30    # 1 GB for TensorRT
    )
)

evaluation = dict(
    enabled=True,
    num_samples=1000,        # Number of samples to evaluate
    verbose=False,           # Set True for detailed per-sample output
    models_to_evaluate=[
        'pytorch',           # Evaluate PyTorch model
        'onnx',             # Evaluate ONNX model
        'tensorrt'          # Evaluate TensorRT model
    ]
)
