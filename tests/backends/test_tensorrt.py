"""TensorRTRunner against a fake ``tensorrt`` module (10.x and 11.x) whose engine runs the ONNX graph with
ONNX Runtime on the host memory the runner binds: binding by name and address is checked end to end."""

from __future__ import annotations

import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from pytest_autoware_deploy.backends.tensorrt import DTYPES, TensorRTRunner
from pytest_autoware_deploy.errors import ArtifactError, BackendUnavailable, InferenceError
from pytest_autoware_deploy.export.tensorrt import build_engine
from pytest_autoware_deploy.spec.load import load_spec

from ..fakes.fake_tensorrt import HostBuffers, fake_trt, trt_spec, trt_tiny  # noqa: F401 (fixtures)


def _feed(batch, seed=0, size=16):
    return {"image": np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)}


def _reference(onnx_path, feed):
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed)))


@pytest.fixture
def runner(fake_trt, trt_spec, trt_tiny):
    engine = build_engine(trt_spec, trt_tiny[1])
    with TensorRTRunner(engine.path, "cuda:0", buffers=HostBuffers) as r:
        yield r


@pytest.mark.parametrize("batch", [1, 2, 4])
def test_outputs_equal_onnxruntime(runner, trt_tiny, batch):
    feed = _feed(batch, seed=batch)
    out = runner.infer(feed)
    assert list(out) == ["logits"] and out["logits"].shape == (batch, 3)
    np.testing.assert_array_equal(out["logits"], _reference(trt_tiny[1], feed)["logits"])


def test_io_tensors_and_profile_from_the_engine(runner):
    assert list(runner.inputs) == ["image"] and list(runner.outputs) == ["logits"]
    image = runner.inputs["image"]
    assert (image.dtype, image.shape, image.min, image.max) == ("float32", (-1, 3, 16, 16), (1, 3, 16, 16),
                                                                 (4, 3, 16, 16))


def test_buffers_grow_only_for_larger_shapes(fake_trt, runner):
    runner.infer(_feed(1))
    assert runner.buffers.allocations == 2  # image, logits
    runner.infer(_feed(4))
    assert runner.buffers.allocations == 4
    addresses = dict(fake_trt.record["set_tensor_address"][-2:])
    runner.infer(_feed(2))
    runner.infer(_feed(4))
    assert runner.buffers.allocations == 4
    assert dict(fake_trt.record["set_tensor_address"][-2:]) == addresses  # same memory, rebound by name


@pytest.mark.parametrize("feed, message", [
    (_feed(5), r"input 'image' has shape \(5, 3, 16, 16\), outside the engine's optimization profile: "
               r"min \(1, 3, 16, 16\), max \(4, 3, 16, 16\)"),
    (_feed(2, size=8), r"input 'image' has shape \(2, 3, 8, 8\), outside"),
    ({"image": np.zeros((3, 16, 16), np.float32)}, r"shape \(3, 16, 16\), outside"),
    ({"img": np.zeros((1, 3, 16, 16), np.float32)}, r"input 'image' missing from feed \(got \['img'\]\)"),
], ids=["batch-above-max", "spatial", "rank", "missing"])
def test_shape_outside_the_profile_is_a_clear_error(fake_trt, runner, feed, message):
    with pytest.raises(InferenceError, match=message):
        runner.infer(feed)
    assert not fake_trt.record["execute"]


def test_prepare_uploads_once_then_only_enqueues(fake_trt, runner, trt_tiny):
    feed = _feed(2, seed=7)
    call = runner.prepare(feed)
    allocations, shapes_set = runner.buffers.allocations, len(fake_trt.record["set_input_shape"])
    for _ in range(3):
        call()
        runner.synchronize()
    assert len(fake_trt.record["execute"]) == 3 and runner.buffers.syncs == 3
    assert len(fake_trt.record["set_input_shape"]) == shapes_set and runner.buffers.allocations == allocations
    runner.infer(_feed(4, seed=1))  # binds other buffers at another shape
    call()  # rebinds its own
    assert fake_trt.record["set_input_shape"][-1] == ("image", (2, 3, 16, 16))
    logits = runner._bound["logits"].numpy()
    np.testing.assert_array_equal(logits, _reference(trt_tiny[1], feed)["logits"])


def test_phases_split_upload_compute_download(fake_trt, runner, trt_tiny):
    feed = _feed(3, seed=5)
    phases = runner.phases(feed)
    runner.infer(_feed(1))  # another binding in between: compute rebinds its own buffers
    executed = len(fake_trt.record["execute"])
    phases["h2d"]()
    assert len(fake_trt.record["execute"]) == executed  # uploading runs nothing
    phases["compute"]()
    (logits,) = phases["d2h"]()
    np.testing.assert_array_equal(logits, _reference(trt_tiny[1], feed)["logits"])
    assert runner.buffers.syncs == 2 and len(fake_trt.record["execute"]) == executed + 1


def _two_io_graph(path):
    """a, b -> diff = a - b, total = sum(a * b, axis 1): swapped bindings give wrong numbers."""
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", 3])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["n", 3])
    diff = helper.make_tensor_value_info("diff", TensorProto.FLOAT, ["n", 3])
    total = helper.make_tensor_value_info("total", TensorProto.FLOAT, ["n"])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [helper.make_node("Sub", ["a", "b"], ["diff"]), helper.make_node("Mul", ["a", "b"], ["ab"]),
             helper.make_node("ReduceSum", ["ab", "axes"], ["total"], keepdims=0)]
    graph = helper.make_graph(nodes, "two", [a, b], [total, diff], initializer=[axes])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)  # older ORTs
    onnx.save(model, str(path))
    return path


def test_inputs_and_outputs_are_bound_by_name(fake_trt, trt_tiny, tmp_path):
    graph = _two_io_graph(tmp_path / "two.onnx")
    profile = dict(min_shape=[1, 3], opt_shape=[2, 3], max_shape=[8, 3])
    spec = load_spec(trt_tiny[0], work_dir=tmp_path / "wd", cfg_options={
        "onnx_config.input_names": ["a", "b"], "onnx_config.output_names": ["total", "diff"],
        "backend_config.model_inputs": [dict(name="a", **profile), dict(name="b", **profile)]})
    engine = build_engine(spec, graph)
    rng = np.random.default_rng(3)
    feed = {"b": rng.standard_normal((5, 3)).astype(np.float32), "a": rng.standard_normal((5, 3)).astype(np.float32)}
    with TensorRTRunner(engine.path, "cuda:0", buffers=HostBuffers) as runner:
        out = runner.infer(feed)
    np.testing.assert_allclose(out["diff"], feed["a"] - feed["b"], rtol=1e-6)
    np.testing.assert_allclose(out["total"], (feed["a"] * feed["b"]).sum(1), rtol=1e-5)
    assert {n for n, _ in fake_trt.record["set_tensor_address"]} == {"a", "b", "diff", "total"}


def test_dtype_names_are_torch_and_numpy_names():
    import torch

    for name in DTYPES.values():
        assert isinstance(getattr(torch, name), torch.dtype)
        if name != "bfloat16":
            np.dtype(name)


def test_corrupted_engine_is_an_artifact_error(fake_trt, tmp_path):
    bad = tmp_path / "model.engine"
    bad.write_bytes(b"not an engine")
    with pytest.raises(ArtifactError, match=r"cannot deserialize .*model.engine .*TensorRT said: engine plan file"):
        TensorRTRunner(bad, "cuda:0", buffers=HostBuffers).activate()


def test_without_cuda_the_runner_is_unavailable(fake_trt, runner):
    """torch here is the CPU wheel: the real device buffers say so instead of crashing."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this torch has CUDA")
    with pytest.raises(BackendUnavailable, match=r"tensorrt on cuda:0: torch has no CUDA device here"):
        TensorRTRunner(runner.path, "cuda:0").activate()


def test_missing_tensorrt_is_backend_unavailable(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendUnavailable, match=r"TensorRT is not installed here \(no 'tensorrt' module\)"):
        TensorRTRunner(tmp_path / "model.engine", "cuda:0", buffers=HostBuffers).activate()
