"""TensorRTRunner against a fake module (TensorRT 10.x, 11.x, TensorRT-RTX 1.x) whose engine runs the ONNX graph
with ONNX Runtime on the host memory the runner binds: binding by name and address is checked end to end, and
so are the output allocator (data-dependent shapes), the runtime's own verdict and TensorRT-RTX's runtime cache."""

from __future__ import annotations

import sys

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from pytest_autoware_deploy.backends.tensorrt import DTYPES, TensorRTRunner, runtime_cache_path
from pytest_autoware_deploy.backends.trt_module import engine_support
from pytest_autoware_deploy.errors import ArtifactError, BackendUnavailable, InferenceError
from pytest_autoware_deploy.export.tensorrt import build_engine
from pytest_autoware_deploy.spec.load import load_spec

from ..fakes.fake_tensorrt import HostBuffers, fake_trt, make_tensorrt, trt_spec, trt_tiny  # noqa: F401 (fixtures)


def _feed(batch, seed=0, size=16):
    return {"image": np.random.default_rng(seed).standard_normal((batch, 3, size, size)).astype(np.float32)}


def _reference(onnx_path, feed):
    sess = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in sess.get_outputs()], sess.run(None, feed)))


def _runner(trt, engine_path, **kw):
    return TensorRTRunner(engine_path, "cuda:0", buffers=HostBuffers, module=trt.__name__, **kw)


@pytest.fixture
def runner(fake_trt, trt_spec, trt_tiny):
    engine = build_engine(trt_spec, trt_tiny[1], module=fake_trt.__name__)
    with _runner(fake_trt, engine.path) as r:
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
    assert not runner.data_dependent


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


def _save(nodes, inputs, outputs, path, initializer=()):
    graph = helper.make_graph(nodes, path.stem, inputs, outputs, initializer=list(initializer))
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8), str(path))
    return path


def _two_io_graph(path):
    """a, b -> diff = a - b, total = sum(a * b, axis 1): swapped bindings give wrong numbers."""
    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, ["n", 3])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, ["n", 3])
    diff = helper.make_tensor_value_info("diff", TensorProto.FLOAT, ["n", 3])
    total = helper.make_tensor_value_info("total", TensorProto.FLOAT, ["n"])
    axes = helper.make_tensor("axes", TensorProto.INT64, [1], [1])
    nodes = [helper.make_node("Sub", ["a", "b"], ["diff"]), helper.make_node("Mul", ["a", "b"], ["ab"]),
             helper.make_node("ReduceSum", ["ab", "axes"], ["total"], keepdims=0)]
    return _save(nodes, [a, b], [total, diff], path, [axes])


def _data_dependent_graph(path):
    """x (n,) -> doubled = 2x (shape from the input) and count = 0 .. floor(max(x)) - 1 (shape from the DATA:
    a Range to a computed limit, which TensorRT-RTX builds; its NonZero needs a plugin it lacks)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])
    doubled = helper.make_tensor_value_info("doubled", TensorProto.FLOAT, ["n"])
    count = helper.make_tensor_value_info("count", TensorProto.INT64, ["k"])
    inits = [helper.make_tensor("two", TensorProto.FLOAT, [], [2.0]),
             helper.make_tensor("zero", TensorProto.INT64, [], [0]),
             helper.make_tensor("one", TensorProto.INT64, [], [1])]
    nodes = [helper.make_node("Mul", ["x", "two"], ["doubled"]),
             helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0),
             helper.make_node("Cast", ["m"], ["limit"], to=TensorProto.INT64),
             helper.make_node("Range", ["zero", "limit", "one"], ["count"])]
    return _save(nodes, [x], [doubled, count], path, inits)


def _spec_for(trt_tiny, tmp_path, inputs, outputs, profiles):
    return load_spec(trt_tiny[0], work_dir=tmp_path / "wd", cfg_options={
        "onnx_config.input_names": inputs, "onnx_config.output_names": outputs,
        "backend_config.model_inputs": [dict(name=n, **p) for n, p in profiles.items()]})


def test_inputs_and_outputs_are_bound_by_name(fake_trt, trt_tiny, tmp_path):
    graph = _two_io_graph(tmp_path / "two.onnx")
    profile = dict(min_shape=[1, 3], opt_shape=[2, 3], max_shape=[8, 3])
    spec = _spec_for(trt_tiny, tmp_path, ["a", "b"], ["total", "diff"], {"a": profile, "b": profile})
    engine = build_engine(spec, graph, module=fake_trt.__name__)
    rng = np.random.default_rng(3)
    feed = {"b": rng.standard_normal((5, 3)).astype(np.float32), "a": rng.standard_normal((5, 3)).astype(np.float32)}
    with _runner(fake_trt, engine.path) as runner:
        out = runner.infer(feed)
    np.testing.assert_allclose(out["diff"], feed["a"] - feed["b"], rtol=1e-6)
    np.testing.assert_allclose(out["total"], (feed["a"] * feed["b"]).sum(1), rtol=1e-5)
    assert {n for n, _ in fake_trt.record["set_tensor_address"]} == {"a", "b", "diff", "total"}
    assert not fake_trt.record["set_output_allocator"]


@pytest.fixture
def dds_runner(fake_trt, trt_tiny, tmp_path):
    graph = _data_dependent_graph(tmp_path / "dds.onnx")
    spec = _spec_for(trt_tiny, tmp_path, ["x"], ["doubled", "count"],
                     {"x": dict(min_shape=[1], opt_shape=[4], max_shape=[16])})
    engine = build_engine(spec, graph, module=fake_trt.__name__)
    with _runner(fake_trt, engine.path) as runner:
        yield runner


def test_the_fake_reports_data_dependent_dims_as_tensorrt_does(fake_trt, dds_runner):
    """The context knows 'doubled' from the input shape; 'count' only after the run (-1)."""
    dds_runner.context.set_input_shape("x", (5,))
    assert tuple(dds_runner.context.get_tensor_shape("doubled")) == (5,)
    assert tuple(dds_runner.context.get_tensor_shape("count")) == (-1,)


@pytest.mark.parametrize("values", [[3.5, 1.0, 0.2], [7.9, 2.0, 1.0, 5.0, 6.0], [0.5]], ids=["3", "7", "0"])
def test_data_dependent_output_comes_through_the_output_allocator(fake_trt, dds_runner, values):
    x = np.array(values, np.float32)
    out = dds_runner.infer({"x": x})
    np.testing.assert_array_equal(out["count"], np.arange(int(x.max()), dtype=np.int64))
    np.testing.assert_array_equal(out["doubled"], 2 * x)
    assert dds_runner.data_dependent == {"count"} and fake_trt.record["set_output_allocator"] == ["count"]
    assert fake_trt.record["reallocate_output"][-1] == ("count", 8 * int(x.max()))


def test_output_allocator_is_set_once_and_grows_its_memory(fake_trt, dds_runner):
    for values in ([2.0], [9.0, 1.0], [4.0]):
        out = dds_runner.infer({"x": np.array(values, np.float32)})
        assert out["count"].shape == (int(max(values)),)
    assert fake_trt.record["set_output_allocator"] == ["count"]
    assert dds_runner._allocator.requests == [("count", 16), ("count", 72), ("count", 32)]
    assert dds_runner.buffers.allocations == 2 + 2 + 2  # x, doubled: n 1 then 2; count: 16 then 72 bytes, not 32


def test_data_dependent_output_in_prepared_calls_and_phases(fake_trt, dds_runner):
    call = dds_runner.prepare({"x": np.array([3.0, 1.0], np.float32)})
    call()
    assert dds_runner._allocator.shapes == {"count": (3,)}
    phases = dds_runner.phases({"x": np.array([5.0], np.float32)})
    phases["h2d"]()
    phases["compute"]()
    doubled, count = phases["d2h"]()
    np.testing.assert_array_equal(count, np.arange(5))
    np.testing.assert_array_equal(doubled, [10.0])


def test_without_an_output_allocator_the_fake_fails_like_tensorrt(fake_trt, dds_runner):
    """What the runner did before: bind an address for every output. The fake refuses, as TensorRT does."""
    ctx = dds_runner.context
    view = dds_runner.buffers.view("x", (2,), "float32")
    view.copy_(__import__("torch").tensor([2.0, 1.0]))
    ctx.set_input_shape("x", (2,))
    ctx.set_tensor_address("x", view.data_ptr())
    ctx.set_tensor_address("doubled", dds_runner.buffers.view("d", (2,), "float32").data_ptr())
    ctx.set_tensor_address("count", dds_runner.buffers.view("c", (8,), "int64").data_ptr())
    assert not ctx.execute_async_v3(0)
    assert fake_trt.record["errors"] == ["Neither address or allocator is set for output tensor count"]


def test_dtype_names_are_torch_and_numpy_names():
    import torch

    for name in DTYPES.values():
        assert isinstance(getattr(torch, name), torch.dtype)
        if name != "bfloat16":
            np.dtype(name)


def test_corrupted_engine_is_an_artifact_error(fake_trt, tmp_path):
    bad = tmp_path / "model.engine"
    bad.write_bytes(b"not an engine")
    expected = (r"get_engine_validity\(\) says INVALID \(MALFORMED_ENGINE\)" if fake_trt.__name__ == "tensorrt_rtx"
                else r"cannot deserialize .*model.engine .*TensorRT said: engine plan file")
    with pytest.raises(ArtifactError, match=expected):
        _runner(fake_trt, bad).activate()


def test_without_cuda_the_runner_is_unavailable(fake_trt, runner):
    """torch here is the CPU wheel: the real device buffers say so instead of crashing."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("this torch has CUDA")
    with pytest.raises(BackendUnavailable, match=r"on cuda:0: torch has no CUDA device here"):
        TensorRTRunner(runner.path, "cuda:0", module=fake_trt.__name__).activate()


def test_missing_tensorrt_is_backend_unavailable(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)
    with pytest.raises(BackendUnavailable, match=r"TensorRT is not installed here \(no 'tensorrt' module"):
        TensorRTRunner(tmp_path / "model.engine", "cuda:0", buffers=HostBuffers).activate()


# -- TensorRT-RTX: the runtime's own verdict, the runtime cache ------------------------------------------------
@pytest.fixture
def rtx(monkeypatch):
    fake = make_tensorrt("rtx")
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", fake)
    return fake


@pytest.fixture
def rtx_engine(rtx, trt_spec, trt_tiny):
    return build_engine(trt_spec, trt_tiny[1], module="tensorrt_rtx")


@pytest.mark.parametrize("gpu, reason", [
    (None, r"TensorRT-RTX 1.7.1.116 cannot run .*model.engine here: get_engine_validity\(\) says INVALID; it "
           r"logged: Error reading CUDA GPU properties: .*CUDA driver version is insufficient"),
    ((9, 0), r"TensorRT-RTX 1.7.1.116 cannot run .*model.engine here: get_engine_validity\(\) says INVALID "
             r"\(UNSUPPORTED_CC\); it logged: The engine cannot run on this GPU, which has compute capability 9.0. "
             r"Supported compute capabilities: 8.0 8.6 8.9 12.0 12.1"),
], ids=["no-gpu", "h100"])
def test_rtx_runner_skips_with_the_runtimes_own_reason(rtx, rtx_engine, gpu, reason):
    rtx.gpu = gpu
    with pytest.raises(BackendUnavailable, match=reason) as info:
        _runner(rtx, rtx_engine.path).activate()
    verdict = engine_support(rtx_engine.path, module="tensorrt_rtx")  # what a test asks before running
    assert not verdict.ok and verdict.unavailable and verdict.reason == str(info.value)


def test_rtx_engine_of_another_version_is_an_artifact_error(rtx, rtx_engine, monkeypatch):
    newer = make_tensorrt("rtx", version="1.8.0.1")
    newer.gpu = (8, 6)
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", newer)
    with pytest.raises(ArtifactError, match=r"TensorRT-RTX 1.8.0.1 cannot run .* INVALID \(VERSION_MISMATCH\)"):
        _runner(newer, rtx_engine.path).activate()
    assert not engine_support(rtx_engine.path, module="tensorrt_rtx").unavailable


def test_engine_support_asks_the_runtime_then_torch(rtx, rtx_engine, tmp_path, monkeypatch):
    import torch

    rtx.gpu = (8, 6)  # the runtime can run it; this torch is the CPU wheel
    verdict = engine_support(rtx_engine.path, module="tensorrt_rtx")
    assert rtx.record["get_engine_validity"] and verdict.ok is torch.cuda.is_available()
    if not verdict.ok:
        assert "torch has no CUDA device here" in verdict.reason
    trt10 = make_tensorrt("trt10")  # no validity API: deserializing tells
    monkeypatch.setitem(sys.modules, "tensorrt", trt10)
    bad = tmp_path / "model.engine"
    bad.write_bytes(b"garbage")
    verdict = engine_support(bad, module="tensorrt")
    assert not verdict.ok and "TensorRT 10.13.0.35 cannot deserialize" in verdict.reason
    assert "engine plan file is corrupted" in verdict.reason
    assert not engine_support(tmp_path / "absent.engine", module="tensorrt").ok
    monkeypatch.setitem(sys.modules, "tensorrt_rtx", None)
    assert "TensorRT-RTX is not installed here" in engine_support(rtx_engine.path, module="tensorrt_rtx").reason


def test_rtx_runtime_cache_is_kept_beside_the_engine_and_reused(rtx, rtx_engine):
    rtx.gpu = (8, 6)
    feed = _feed(2)
    with _runner(rtx, rtx_engine.path) as runner:
        runner.infer(feed)
        runner.infer(feed)
    assert len(rtx.record["jit_compiles"]) == 1 and rtx.record["create_execution_context"] == [True]
    cache = runtime_cache_path(rtx_engine.path)
    assert cache.is_file() and cache.parent == rtx_engine.path.parent
    with _runner(rtx, rtx_engine.path) as runner:  # the next activation: nothing to compile for that shape
        runner.infer(feed)
        runner.infer(_feed(3))
    assert rtx.record["runtime_cache_loaded"] == [1] and len(rtx.record["jit_compiles"]) == 2
    assert not list(cache.parent.glob(".*.tmp"))


def test_rtx_runtime_cache_of_another_gpu_is_replaced(rtx, rtx_engine):
    rtx.gpu = (8, 6)
    with _runner(rtx, rtx_engine.path) as runner:
        runner.infer(_feed(1))
    rtx.gpu = (8, 9)
    with _runner(rtx, rtx_engine.path) as runner:
        runner.infer(_feed(1))
    assert not rtx.record["runtime_cache_loaded"] and len(rtx.record["jit_compiles"]) == 2
    assert b'"gpu": [8, 9]' in runtime_cache_path(rtx_engine.path).read_bytes()


def test_tensorrt_runner_uses_no_runtime_config(fake_trt, runner):
    assert fake_trt.record["create_execution_context"] == [fake_trt.__name__ == "tensorrt_rtx"]
    assert runtime_cache_path(runner.path).exists() is False  # written on deactivation only
