"""ONNX Runtime and PyTorch runners on a real GPU: device tensors in and out without a host round trip, pinned
host buffers for the timed copies, CUDA graph capture. Skipped (saying why) without CUDA and onnxruntime-gpu."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
if not torch.cuda.is_available() or "CUDAExecutionProvider" not in ort.get_available_providers():
    pytest.skip("needs a CUDA torch and onnxruntime-gpu (CUDAExecutionProvider): the device-tensor, pinned-memory "
                "and CUDA-graph paths run only on an NVIDIA GPU", allow_module_level=True)

from pytest_autoware_deploy.backends.onnxruntime import OnnxRuntimeRunner  # noqa: E402
from pytest_autoware_deploy.backends.pytorch import PyTorchRunner  # noqa: E402


def _conv_graph(path):
    w = numpy_helper.from_array(np.random.default_rng(0).standard_normal((4, 3, 3, 3)).astype(np.float32), "w")
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1]), helper.make_node("Relu", ["c"], ["y"])]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 4, 8, 8])], [w])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), path)
    return str(path)


@pytest.fixture
def graph(tmp_path):
    return _conv_graph(tmp_path / "conv.onnx")


def test_device_tensors_stay_on_the_device_and_match_the_host_path(graph):
    x = np.random.default_rng(1).standard_normal((2, 3, 8, 8)).astype(np.float32)
    with OnnxRuntimeRunner(graph, "cuda:0", tf32=False) as runner:
        host = runner.infer({"x": x})["y"]
        out = runner.infer({"x": torch.from_numpy(x).cuda()})["y"]
        assert out.is_cuda and out.shape == (2, 4, 8, 8)
        np.testing.assert_allclose(out.cpu().numpy(), host, rtol=0, atol=1e-6)
        cpu_tensor = runner.infer({"x": torch.from_numpy(x)})["y"]  # a host tensor comes back on the host
        assert not cpu_tensor.is_cuda


def test_phases_copy_from_pinned_host_memory(graph):
    x = np.ones((1, 3, 8, 8), np.float32)
    with OnnxRuntimeRunner(graph, "cuda:0") as runner:
        phases = runner.phases({"x": x})
        phases["h2d"]()
        phases["compute"]()
        (y,) = phases["d2h"]()
        assert runner.host_memory == "pinned"
        np.testing.assert_allclose(y, runner.infer({"x": x})["y"], rtol=1e-5, atol=1e-5)


def test_cuda_graph_replays_give_the_plain_result(graph):
    x = np.random.default_rng(2).standard_normal((1, 3, 8, 8)).astype(np.float32)
    with OnnxRuntimeRunner(graph, "cuda:0", tf32=False) as runner:
        replay = runner.graph_call({"x": x})
        assert callable(replay), replay
        replay()
        torch.cuda.synchronize()
        np.testing.assert_allclose(replay.bound["d2h"]()[0], runner.infer({"x": x})["y"], rtol=1e-5, atol=1e-6)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, padding=1), torch.nn.ReLU())
    with PyTorchRunner(model, ["x"], ["y"], device="cuda:0") as runner:
        replay = runner.graph_call({"x": x})
        assert callable(replay), replay
        replay()
        torch.cuda.synchronize()


def test_cuda_graph_replays_read_new_inputs_written_into_the_bound_buffers(graph):
    """A deployment writes each frame into the captured buffers and replays: the replay must compute on the new
    data (a graph that captured the first input's copy, or stale buffers, would return the first result)."""
    x1 = np.random.default_rng(3).standard_normal((1, 3, 8, 8)).astype(np.float32)
    x2 = np.random.default_rng(4).standard_normal((1, 3, 8, 8)).astype(np.float32)
    with OnnxRuntimeRunner(graph, "cuda:0", tf32=False) as runner:
        replay = runner.graph_call({"x": x1})
        assert callable(replay), replay
        (ins, _outs), bound = replay.buffers, replay.bound
        ins[0][1].copy_(torch.from_numpy(x2))  # the pinned host staging buffer of input x
        bound["h2d"]()
        replay()
        torch.cuda.synchronize()
        got = bound["d2h"]()[0]
        np.testing.assert_allclose(got, runner.infer({"x": x2})["y"], rtol=1e-5, atol=1e-6)
        assert not np.allclose(got, runner.infer({"x": x1})["y"])
