"""OnnxRuntimeRunner: the graph's own input metadata, and feeds checked and safely cast against it."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch
from onnx import TensorProto, helper
from torch import nn

from pytest_autoware_deploy.backends.onnxruntime import OnnxRuntimeRunner
from pytest_autoware_deploy.errors import InferenceError
from pytest_autoware_deploy.export.precision import derive
from pytest_autoware_deploy.spec.load import load_spec

from ..conftest import write_tiny_spec
from ..test_plugin import run


class Conv(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        return torch.relu(self.conv(x)).mean(dim=(2, 3))


def _fp16_graph(tmp_path, keep_io_types):
    """The fp16 policy's graph of a small conv net, as the precision step derives it."""
    base = tmp_path / "conv.onnx"
    torch.onnx.export(Conv().eval(), (torch.randn(1, 3, 8, 8),), str(base), input_names=["image"],
                      output_names=["logits"], dynamic_axes={"image": {0: "b"}, "logits": {0: "b"}},
                      opset_version=17, dynamo=False)
    spec = load_spec(write_tiny_spec(tmp_path / f"p{keep_io_types}",
                                     extra=f"precision = dict(fp16=dict(keep_io_types={keep_io_types}))"))
    rng = np.random.default_rng(0)
    samples = [{"inputs": {"image": rng.standard_normal((1, 3, 8, 8)).astype(np.float32)}} for _ in range(4)]
    return base, derive(spec, base, "fp16", samples).path


def test_fp16_graph_without_fp32_io_runs_float32_feeds(tmp_path):
    """keep_io_types=False: the graph takes and returns float16; a float32 feed that fits is cast (issue 10.3)."""
    base, fp16 = _fp16_graph(tmp_path, keep_io_types=False)
    feed = {"image": np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)}
    with OnnxRuntimeRunner(base) as ref, OnnxRuntimeRunner(fp16) as runner:
        meta = runner.get_input_metadata()["image"]
        assert (meta.dtype, meta.shape) == (np.dtype("float16"), ("b", 3, 8, 8))
        expected = ref.infer(feed)["logits"]
        out = runner.infer(feed)["logits"]
        assert out.dtype == np.float16
        np.testing.assert_allclose(out.astype(np.float32), expected, atol=2e-2, rtol=2e-2)
        prepared = runner.prepare(feed)()  # what the latency tests time
        np.testing.assert_array_equal(prepared[0], out)
        with pytest.raises(InferenceError, match=r"onnx@cpu \(.*\.onnx\): input 'image' expects dtype float16, "
                                                 r"given float32 \(shape \(2, 3, 8, 8\)\): values up to 100000 "
                                                 r"overflow float16"):
            runner.infer({"image": feed["image"] * 0 + 1e5})


def test_fp32_io_graph_declares_float32(tmp_path):
    _, fp16 = _fp16_graph(tmp_path, keep_io_types=True)
    with OnnxRuntimeRunner(fp16) as runner:
        assert runner.get_input_metadata()["image"].dtype == np.float32


def _gather_graph(path, index_type):
    """table[indices]: an integer input, as a lidar graph's coordinates or counts are."""
    table = helper.make_tensor("table", TensorProto.FLOAT, [10, 2], np.arange(20, dtype=np.float32))
    indices = helper.make_tensor_value_info("indices", index_type, ["n"])
    out = helper.make_tensor_value_info("rows", TensorProto.FLOAT, ["n", 2])
    graph = helper.make_graph([helper.make_node("Gather", ["table", "indices"], ["rows"])], "gather", [indices],
                              [out], initializer=[table])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def test_integer_inputs_cast_between_widths_only_when_values_fit(tmp_path):
    with OnnxRuntimeRunner(_gather_graph(tmp_path / "g64.onnx", TensorProto.INT64)) as r64, \
            OnnxRuntimeRunner(_gather_graph(tmp_path / "g32.onnx", TensorProto.INT32)) as r32:
        assert r64.get_input_metadata()["indices"].dtype == np.int64
        assert r32.get_input_metadata()["indices"].shape == ("n",)
        idx = np.array([3, 0, 9])
        for runner in (r64, r32):
            for dtype in (np.int32, np.int64):
                rows = runner.infer({"indices": idx.astype(dtype)})["rows"]
                np.testing.assert_array_equal(rows, np.arange(20, dtype=np.float32).reshape(10, 2)[idx])
        with pytest.raises(InferenceError, match=r"input 'indices' expects dtype int32, given int64 .*values in "
                                                 r"\[0, 4294967296\] do not fit int32"):
            r32.infer({"indices": np.array([0, 2**32])})
        with pytest.raises(InferenceError, match=r"input 'indices' expects dtype int64, given float32 .*no safe cast "
                                                 r"from float to signed integer"):
            r64.infer({"indices": idx.astype(np.float32)})
        with pytest.raises(InferenceError, match=r"input 'indices' has shape \(3, 1\), outside the expected shape "
                                                 r"\('n',\)"):
            r64.infer({"indices": idx[:, None]})


def test_spec_with_fp16_io_passes_end_to_end(pytester, tmp_path):
    """The whole suite under ``precision.fp16.keep_io_types=False``: every onnx:fp16 test ran, none failed."""
    spec = write_tiny_spec(tmp_path / "proj", extra="precision = dict(policies=['fp16'], "
                                                    "fp16=dict(keep_io_types=False))")
    result = run(pytester, f"--deploy-config={spec}", "-v")
    result.assert_outcomes(passed=15)
    result.stdout.fnmatch_lines(["*test_verification[[]tiny-onnx-fp16-logits-sample0-b2[]] PASSED*",
                                 "*test_accuracy[[]tiny-onnx-fp16[]] PASSED*",
                                 "*test_latency[[]tiny-onnx-fp16[]] PASSED*"])


def test_cuda_graphs_on_a_cpu_runner_say_why_not(tmp_path):
    """benchmark.cuda_graph on CPU: the report gets the reason, never a CPU timing labelled as a graph replay."""
    from pytest_autoware_deploy.backends.pytorch import PyTorchRunner

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])),
              tmp_path / "m.onnx")
    feed = {"x": np.ones((1, 3), np.float32)}
    with OnnxRuntimeRunner(tmp_path / "m.onnx") as runner:
        assert runner.graph_call(feed) == "onnx@cpu: CUDA graphs need a CUDA device"
    with PyTorchRunner(nn.ReLU(), ["x"], ["y"], device="cpu") as runner:
        assert runner.graph_call(feed).endswith("CUDA graphs need a CUDA device")


def test_cudnn_batchnorm_refusal_is_explained_as_the_cuda_eps_limit(tmp_path):
    """The CUDA EP's cuDNN batch norm refuses CenterPoint's 96000-pillar BatchNormalization (H100, session 6): the
    error says it is ONNX Runtime's limit, names the node and the size, and what still verifies that shape. No CUDA
    EP here, so the session's failure is the message ONNX Runtime gave there; other failures pass unchanged."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])
    onnx.save(helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y])),
              tmp_path / "m.onnx")
    feed = {"x": np.ones((96000, 3), np.float32)}
    cudnn = ("[ONNXRuntimeError] : 1 : FAIL : Non-zero status code returned while running BatchNormalization node. "
             "Name:'/pfn_layers.0/norm/BatchNormalization' Status Message: CUDNN failure 9: CUDNN_STATUS_NOT_SUPPORTED")

    class Refusing:
        def __init__(self, session, message):
            self.session, self.message = session, message

        def run(self, *args):
            raise RuntimeError(self.message)

        def __getattr__(self, name):
            return getattr(self.session, name)

    with OnnxRuntimeRunner(tmp_path / "m.onnx") as runner:
        runner.device, real = "cuda:0", runner.session
        runner.session = Refusing(real, cudnn)
        with pytest.raises(InferenceError) as info:
            runner.infer(feed)
        text = str(info.value)
        assert "ONNX Runtime's CUDA execution provider cannot run /pfn_layers.0/norm/BatchNormalization" in text
        assert "largest first axis is 96000" in text and "TensorRT folds this BatchNormalization" in text
        runner.session = Refusing(real, "[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : something else")
        with pytest.raises(RuntimeError, match="something else"):
            runner.infer(feed)
        runner.device = "cpu"  # the CPU EP has no cuDNN: the same words are not this limit there
        runner.session = Refusing(real, cudnn)
        with pytest.raises(RuntimeError, match="CUDNN_STATUS_NOT_SUPPORTED"):
            runner.infer(feed)
