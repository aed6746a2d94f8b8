# Mirror of a generation-5 deploy config (legacy mmdeploy)
# tier4/AWML:main @ 7a6ec07c851aa21af4c3aee3900eba35c17e03b7, path projects/CalibrationStatusClassification/configs/deploy/resnet18_5ch.py
# Keys, nesting and values as published; nothing edited.
codebase_config = dict(type="mmpretrain", task="Classification", model_type="end2end")

backend_config = dict(
    type="tensorrt",
    common_config=dict(max_workspace_size=1 << 30),
    model_inputs=[
        dict(
            input_shapes=dict(
                input=dict(
                    min_shape=[1, 5, 1080, 1920],
                    opt_shape=[1, 5, 1860, 2880],
                    max_shape=[1, 5, 2160, 3840],
                ),
            )
        )
    ],
)

onnx_config = dict(
    type="onnx",
    export_params=True,
    keep_initializers_as_inputs=False,
    opset_version=16,
    do_constant_folding=True,
    save_file="end2end.onnx",
    input_names=["input"],
    output_names=["output"],
    dynamic_axes={"input": {0: "batch_size", 2: "height", 3: "width"}, "output": {0: "batch_size"}},
    input_shape=None,
)
