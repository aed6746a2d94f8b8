"""The runner's real CUDA buffers (torch tensors, one stream) under the fake ``tensorrt``/``tensorrt_rtx`` modules.

Where torch sees a GPU but TensorRT is missing, this checks what the fake-host tests cannot: device
allocation, the upload on the runner's stream, the stream handle given to ``execute_async_v3`` and
the download waiting for that stream. The fake engine reads and writes the bound device memory
with stream-ordered copies, and delays each output write with a spin kernel, so a download that
did not wait for the stream would read stale memory.
"""

from __future__ import annotations

import numpy as np
import onnxruntime as ort
import pytest

torch = pytest.importorskip("torch")
if not torch.cuda.is_available():
    pytest.skip("torch has no CUDA device here: the CUDA buffer test needs an NVIDIA GPU", allow_module_level=True)

from pytest_autoware_deploy.backends.tensorrt import DeviceBuffers, TensorRTRunner  # noqa: E402
from pytest_autoware_deploy.export.tensorrt import build_engine  # noqa: E402

from ..fakes.fake_tensorrt import fake_trt, trt_spec, trt_tiny  # noqa: E402,F401 (fixtures)

SPIN_CYCLES = 50_000_000  # ~25 ms of GPU time before each output lands


class TrackedBuffers(DeviceBuffers):
    """DeviceBuffers that let the fake engine find the tensor behind an address."""

    by_address: dict = {}

    def view(self, key, shape, dtype):
        v = super().view(key, shape, dtype)
        TrackedBuffers.by_address[v.data_ptr()] = v
        return v


class CudaMemory:
    """The fake engine's I/O as copies on the stream it was given, like a real enqueue."""

    def read(self, ptr, shape, dtype, stream):
        view = TrackedBuffers.by_address[ptr]
        assert tuple(view.shape) == tuple(shape)
        with torch.cuda.stream(torch.cuda.ExternalStream(stream)):
            return view.to("cpu").numpy()  # after the runner's upload on that stream

    def write(self, ptr, value, stream):
        view = TrackedBuffers.by_address[ptr]
        src = np.ascontiguousarray(value)
        if view.dtype == torch.uint8 and src.dtype != np.uint8:  # an output allocator's raw bytes
            src = src.reshape(-1).view(np.uint8)
            view = view[:src.size]
        with torch.cuda.stream(torch.cuda.ExternalStream(stream)):
            torch.cuda._sleep(SPIN_CYCLES)
            view.copy_(torch.from_numpy(src).pin_memory(), non_blocking=True)


@pytest.fixture
def cuda_runner(fake_trt, trt_spec, trt_tiny):
    fake_trt.memory = CudaMemory()
    engine = build_engine(trt_spec, trt_tiny[1], module=fake_trt.__name__)
    with TensorRTRunner(engine.path, "cuda:0", buffers=TrackedBuffers, module=fake_trt.__name__) as runner:
        yield runner
    TrackedBuffers.by_address.clear()


def _reference(onnx_path, feed):
    return ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"]).run(None, feed)[0]


def test_cuda_buffers_round_trip_on_the_runners_stream(fake_trt, cuda_runner, trt_tiny):
    rng = np.random.default_rng(0)
    for batch in (1, 4, 2):
        feed = {"image": rng.standard_normal((batch, 3, 16, 16)).astype(np.float32)}
        np.testing.assert_array_equal(cuda_runner.infer(feed)["logits"], _reference(trt_tiny[1], feed))
    assert set(fake_trt.record["execute"]) == {cuda_runner.buffers.stream.cuda_stream} != {0}
    assert cuda_runner.buffers.allocations == 4  # grown once, for batch 4
    assert all(v.is_cuda for v in TrackedBuffers.by_address.values())


def test_prepared_call_then_synchronize_leaves_outputs_on_the_device(cuda_runner, trt_tiny):
    feed = {"image": np.random.default_rng(1).standard_normal((2, 3, 16, 16)).astype(np.float32)}
    call = cuda_runner.prepare(feed)
    call()
    cuda_runner.synchronize()
    logits = cuda_runner._bound["logits"]
    assert logits.is_cuda
    np.testing.assert_array_equal(logits.cpu().numpy(), _reference(trt_tiny[1], feed))


def test_phases_on_the_device(cuda_runner, trt_tiny):
    feed = {"image": np.random.default_rng(2).standard_normal((3, 3, 16, 16)).astype(np.float32)}
    phases = cuda_runner.phases(feed)
    phases["h2d"]()
    phases["compute"]()
    (logits,) = phases["d2h"]()
    np.testing.assert_array_equal(logits, _reference(trt_tiny[1], feed))


def test_data_dependent_output_through_the_allocator_on_the_device(fake_trt, trt_tiny, tmp_path):
    """The output allocator hands TensorRT raw device memory; the runner reads the reported shape back."""
    from .test_tensorrt import _data_dependent_graph, _spec_for

    fake_trt.memory = CudaMemory()
    spec = _spec_for(trt_tiny, tmp_path, ["x"], ["doubled", "count"],
                     {"x": dict(min_shape=[1], opt_shape=[4], max_shape=[16])})
    engine = build_engine(spec, _data_dependent_graph(tmp_path / "dds.onnx"), module=fake_trt.__name__)
    with TensorRTRunner(engine.path, "cuda:0", buffers=TrackedBuffers, module=fake_trt.__name__) as runner:
        for values in ([3.5, 1.0], [9.0, 2.0, 4.0], [1.5]):
            x = np.array(values, np.float32)
            out = runner.infer({"x": x})
            np.testing.assert_array_equal(out["count"], np.arange(int(x.max())))
            np.testing.assert_array_equal(out["doubled"], 2 * x)
        assert runner.data_dependent == {"count"}
    TrackedBuffers.by_address.clear()
