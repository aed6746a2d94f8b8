"""TensorRT runner: one engine, one execution context, I/O bound by tensor name on one CUDA stream.

Device memory is torch CUDA tensors (``data_ptr()``) kept per tensor name and grown only when a
larger shape comes, so a benchmark loop allocates nothing. ``prepare`` uploads inputs into
buffers of its own and returns a callable that only enqueues; ``synchronize`` waits for the
stream (bench/latency.py times both); ``phases`` splits upload / compute / download. The buffer class is a parameter so the binding logic can
be tested on host memory with a fake ``tensorrt`` module. Same code for TensorRT 10 and 11.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ArtifactError, BackendUnavailable, InferenceError
from ..export.tensorrt import load_tensorrt, logged_errors, trt_logger
from .base import Runner

# TensorRT DataType member -> torch/numpy dtype name (bfloat16 comes back to the host as float32)
DTYPES = {"FLOAT": "float32", "HALF": "float16", "BF16": "bfloat16", "INT8": "int8", "UINT8": "uint8",
          "INT32": "int32", "INT64": "int64", "BOOL": "bool"}


class DeviceBuffers:
    """Torch tensors on ``device`` per tensor name, reallocated only when too small; one CUDA stream."""

    def __init__(self, device):
        import torch

        self.torch = torch
        self.device = torch.device(device)
        self.allocations = 0
        self._buffers = {}
        self.stream = self._open_stream()

    def _open_stream(self):
        torch = self.torch
        if self.device.type != "cuda" or not torch.cuda.is_available():
            raise BackendUnavailable(f"tensorrt on {self.device}: torch has no CUDA device here "
                                     f"(torch {torch.__version__}, torch.cuda.is_available() is False)")
        if self.device.index is None:
            self.device = torch.device("cuda", torch.cuda.current_device())
        torch.cuda.set_device(self.device)  # the engine is deserialized on the current device
        return torch.cuda.Stream(device=self.device)

    @property
    def stream_handle(self) -> int:
        return self.stream.cuda_stream

    def on_stream(self):
        return self.torch.cuda.stream(self.stream)

    def synchronize(self):
        self.stream.synchronize()

    def view(self, key, shape, dtype: str):
        """A ``shape`` tensor over the buffer for ``key`` (allocated on the stream, so frees are ordered)."""
        tdtype = getattr(self.torch, dtype)
        n = math.prod(shape)
        buf = self._buffers.get(key)
        if buf is None or buf.dtype != tdtype or buf.numel() < n:
            with self.on_stream():
                buf = self.torch.empty(max(n, 1), dtype=tdtype, device=self.device)
            self._buffers[key] = buf
            self.allocations += 1
        return buf[:n].view(tuple(shape))

    def upload(self, view, array):
        with self.on_stream():
            view.copy_(self.torch.from_numpy(np.ascontiguousarray(array)), non_blocking=True)

    def download(self, view) -> np.ndarray:
        """A host copy, made on the stream after the work queued there (blocks until then)."""
        dtype = self.torch.float32 if view.dtype == self.torch.bfloat16 else None
        with self.on_stream():
            return view.to("cpu", dtype=dtype, copy=True).numpy()


@dataclass(frozen=True)
class _Tensor:
    name: str
    dtype: str      # torch/numpy name
    shape: tuple    # as the engine declares it (-1 = dynamic)
    min: tuple      # optimization profile 0 (inputs), else the shape
    max: tuple


class TensorRTRunner(Runner):
    def __init__(self, engine_path, device="cuda:0", buffers=DeviceBuffers):
        super().__init__()
        self.path = Path(engine_path)
        self.device = device
        self.name = f"tensorrt@{device}"
        self._make_buffers = buffers
        self.buffers = self.engine = self.context = self._runtime = self._logger = None
        self._bound = None

    def _activate(self):
        trt = load_tensorrt(f"the engine {self.path} cannot run")
        self.buffers = self._make_buffers(self.device)
        self._logger = logger = trt_logger(trt)
        logger.errors.clear()
        self._runtime = trt.Runtime(logger)
        if not self.path.is_file():
            raise ArtifactError(f"TensorRT engine {self.path}: not found")
        self.engine = self._runtime.deserialize_cuda_engine(self.path.read_bytes())
        if self.engine is None:
            raise ArtifactError(f"TensorRT {trt.__version__} cannot deserialize {self.path} (built by another "
                                f"TensorRT version or for another GPU?){logged_errors(logger)}")
        self.context = self.engine.create_execution_context()
        if self.context is None:
            raise ArtifactError(f"TensorRT could not create an execution context for {self.path}"
                                f"{logged_errors(logger)}")
        self.inputs, self.outputs = {}, {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs)[name] = self._tensor(name, is_input)

    def _tensor(self, name, is_input) -> _Tensor:
        trt_dtype = self.engine.get_tensor_dtype(name)
        dtype = DTYPES.get(getattr(trt_dtype, "name", str(trt_dtype).rpartition(".")[2]))
        if dtype is None:
            raise ArtifactError(f"{self.path}: tensor '{name}' has TensorRT type {trt_dtype}, which this runner "
                                f"cannot bind (supported: {', '.join(DTYPES)})")
        shape = tuple(self.engine.get_tensor_shape(name))
        lo = hi = shape
        if is_input and any(d < 0 for d in shape):
            lo, _, hi = (tuple(s) for s in self.engine.get_tensor_profile_shape(name, 0))
        return _Tensor(name, dtype, shape, lo, hi)

    def check_feed(self, feed):
        """One clear error for a missing input or a shape outside the engine's optimization profile."""
        for name, t in self.inputs.items():
            if name not in feed:
                raise InferenceError(f"{self.path}: input '{name}' missing from feed (got {sorted(feed)})")
            shape = tuple(np.shape(feed[name]))
            if len(shape) != len(t.min) or any(not (a <= s <= b) for s, a, b in zip(shape, t.min, t.max)):
                raise InferenceError(f"{self.path}: input '{name}' has shape {shape}, outside the engine's "
                                     f"optimization profile: min {t.min}, max {t.max} "
                                     f"(backend_config.model_inputs when the engine was built)")

    def _bind(self, feed, prefix=""):
        """Upload inputs, set their shapes, size the outputs; returns name -> device tensor."""
        self.check_feed(feed)
        views = {}
        for name, t in self.inputs.items():
            views[name] = self.buffers.view(prefix + name, np.shape(feed[name]), t.dtype)
            self.buffers.upload(views[name], feed[name])
        self._apply(views)
        for name, t in self.outputs.items():
            shape = tuple(self.context.get_tensor_shape(name))
            if any(d < 0 for d in shape):
                raise InferenceError(f"{self.path}: output '{name}' has a data-dependent shape {shape}; "
                                     "this runner binds outputs whose shape follows from the input shapes")
            views[name] = self.buffers.view(prefix + name, shape, t.dtype)
            self.context.set_tensor_address(name, views[name].data_ptr())
        return views

    def _apply(self, views):
        for name, view in views.items():
            if name in self.inputs and not self.context.set_input_shape(name, tuple(view.shape)):
                raise InferenceError(f"{self.path}: TensorRT rejected shape {tuple(view.shape)} for input '{name}'")
            self.context.set_tensor_address(name, view.data_ptr())
        self._bound = views

    def _enqueue(self):
        if not self.context.execute_async_v3(self.buffers.stream_handle):
            raise InferenceError(f"{self.path}: execute_async_v3 failed{logged_errors(self._logger)}")

    def _infer(self, feed):
        views = self._bind(feed)
        self._enqueue()
        return {name: self.buffers.download(views[name]) for name in self.outputs}

    def prepare(self, feed):
        """Inputs resident in buffers of their own (later ``infer`` calls do not overwrite them); the callable
        re-binds them if another shape was bound since, then only enqueues."""
        views = self._bind(feed, prefix="prepared:")

        def call():
            if self._bound is not views:
                self._apply(views)
            self._enqueue()

        return call

    def phases(self, feed):
        """trtexec's split of one inference, each phase waiting for the stream: upload, enqueue, download
        (buffers of their own, like ``prepare``; host memory is pageable, not pinned as in trtexec)."""
        views = self._bind(feed, prefix="phases:")
        sync = self.buffers.synchronize

        def h2d():
            for name in self.inputs:
                self.buffers.upload(views[name], feed[name])
            sync()

        def compute():
            if self._bound is not views:
                self._apply(views)
            self._enqueue()
            sync()

        def d2h():
            return [self.buffers.download(views[name]) for name in self.outputs]

        return {"h2d": h2d, "compute": compute, "d2h": d2h}

    def synchronize(self):
        if self.buffers is not None:
            self.buffers.synchronize()

    def _deactivate(self):
        self.context = self.engine = self._runtime = self.buffers = self._bound = None  # context first
