"""TensorRT runner: one engine, one execution context, I/O bound by tensor name on one CUDA stream.

Device memory is torch CUDA tensors (``data_ptr()``) kept per tensor name and grown only when a
larger shape comes, so a benchmark loop allocates nothing. ``prepare`` uploads inputs into
buffers of its own and returns a callable that only enqueues; ``synchronize`` waits for the
stream (bench/latency.py times both); ``phases`` splits upload / compute / download. The buffer
class is a parameter so the binding logic can be tested on host memory with a fake module.

One code path for ``tensorrt`` 10/11 and ``tensorrt_rtx`` (``module``; differences in trt_module.py):
- before deserializing, the runtime is asked whether the engine can run here where it can say
  (TensorRT-RTX's ``get_engine_validity``): if not, BackendUnavailable carries its own reason
  (a test skips with it; e.g. a compute capability the engine was not compiled for)
- TensorRT-RTX JIT-compiles kernels on first use: its runtime cache beside the engine
  (``runtime.cache``) is loaded on activation and written back, atomically, on deactivation
- an output whose shape depends on the data (NonZero, NMS, a Range to a computed limit: ``-1``
  dims after every input shape is set) cannot be bound before the run: TensorRT asks an output
  allocator for its memory and reports its shape (``IOutputAllocator``), read after the run
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ArtifactError, BackendUnavailable, InferenceError
from ..export.cache import atomic_write_bytes
from .base import Runner
from .trt_module import ask_runtime, is_rtx, label, load_trt, logged_errors, select_device, trt_logger

log = logging.getLogger("pytest_autoware_deploy.tensorrt")

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

    def raw(self, key, nbytes: int):
        """At least ``nbytes`` of device memory for ``key`` (an output allocator's request), grown only when
        too small; returns its address."""
        return self.view(key, (max(int(nbytes), 1),), "uint8").data_ptr()

    def typed(self, key, shape, dtype: str):
        """The start of ``key``'s raw memory seen as a ``shape`` tensor of ``dtype`` (what the run wrote there)."""
        tdtype = getattr(self.torch, dtype)
        buf = self._buffers[key]
        nbytes = math.prod(shape) * self.torch.empty((), dtype=tdtype).element_size()
        if nbytes > buf.numel():
            raise InferenceError(f"output '{key}': shape {tuple(shape)} of {dtype} needs {nbytes} bytes, the "
                                 f"allocator gave {buf.numel()}")
        return buf[:nbytes].view(tdtype).view(tuple(shape))

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


def runtime_cache_path(engine_path) -> Path:
    """TensorRT-RTX's JIT kernel cache for one engine: beside it in its (content-keyed) cache entry."""
    return Path(engine_path).with_name("runtime.cache")


class TensorRTRunner(Runner):
    def __init__(self, engine_path, device="cuda:0", buffers=DeviceBuffers, module="tensorrt", runtime_cache=None):
        super().__init__()
        self.path = Path(engine_path)
        self.device = device
        self.module = module
        self.name = f"{'tensorrt_rtx' if module == 'tensorrt_rtx' else 'tensorrt'}@{device}"
        self.runtime_cache_file = Path(runtime_cache) if runtime_cache else runtime_cache_path(self.path)
        self._make_buffers = buffers
        self.buffers = self.engine = self.context = self._runtime = self._logger = None
        self._runtime_config = self._runtime_cache = self._allocator = None
        self._bound = None
        self.data_dependent: set[str] = set()  # outputs bound through the output allocator

    def _activate(self):
        trt = load_trt(self.module, f"the engine {self.path} cannot run")
        self._trt = trt
        self._logger = logger = trt_logger(trt)
        logger.errors.clear()
        if not self.path.is_file():
            raise ArtifactError(f"{label(trt)} engine {self.path}: not found")
        data = self.path.read_bytes()
        select_device(self.device)  # the runtime answers for the current device
        self._runtime = trt.Runtime(logger)
        verdict = ask_runtime(trt, self._runtime, logger, data, self.path)
        if verdict is not None:
            verdict.raise_unless_ok()  # the runtime's own reason: skip (this machine) or error (the file)
        self.buffers = self._make_buffers(self.device)
        logger.errors.clear()
        self.engine = self._runtime.deserialize_cuda_engine(data)
        if self.engine is None:
            raise ArtifactError(f"{label(trt)} cannot deserialize {self.path} (built by another version or for "
                                f"another GPU?){logged_errors(logger)}")
        self.context = self._create_context(trt)
        if self.context is None:
            raise ArtifactError(f"{label(trt)} could not create an execution context for {self.path}"
                                f"{logged_errors(logger)}")
        self.inputs, self.outputs = {}, {}
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs)[name] = self._tensor(name, is_input)
        self.data_dependent = set()
        self._allocator = None

    def _create_context(self, trt):
        """An execution context; on TensorRT-RTX with its runtime config holding the runtime cache file."""
        make_config = getattr(self.engine, "create_runtime_config", None)
        if not is_rtx(trt) or make_config is None:
            return self.engine.create_execution_context()
        self._runtime_config = config = make_config()
        cache = config.create_runtime_cache()
        if self.runtime_cache_file.is_file():
            blob = self.runtime_cache_file.read_bytes()
            if not cache.deserialize(blob):  # another GPU or version: the runtime recompiles and replaces it
                log.warning("%s: runtime cache %s not usable here; starting a new one", label(trt),
                            self.runtime_cache_file)
                cache.reset()
        config.set_runtime_cache(cache)
        self._runtime_cache = cache
        return self.engine.create_execution_context(config)

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

    def _input_metadata(self):
        from .inputs import TensorMeta

        return [TensorMeta.of(n, None if t.dtype == "bfloat16" else t.dtype, t.shape) for n, t in self.inputs.items()]

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
        """Upload inputs, set their shapes, size the outputs; returns name -> device tensor (outputs whose
        shape depends on the data: none, TensorRT asks the output allocator during the run)."""
        self.check_feed(feed)
        views = {}
        for name, t in self.inputs.items():
            views[name] = self.buffers.view(prefix + name, np.shape(feed[name]), t.dtype)
            self.buffers.upload(views[name], feed[name])
        self._apply(views)
        for name, t in self.outputs.items():
            shape = tuple(self.context.get_tensor_shape(name))
            if name in self.data_dependent or any(d < 0 for d in shape):
                self._use_allocator(name)
                continue
            views[name] = self.buffers.view(prefix + name, shape, t.dtype)
            self.context.set_tensor_address(name, views[name].data_ptr())
        return views

    def _use_allocator(self, name):
        """Once per output: TensorRT allocates it through our allocator (memory from ``self.buffers``)."""
        if name in self.data_dependent:
            return
        if self._allocator is None:
            self._allocator = make_output_allocator(self._trt, self.buffers)
        if not self.context.set_output_allocator(name, self._allocator):
            raise InferenceError(f"{self.path}: {label(self._trt)} refused an output allocator for output "
                                 f"'{name}', whose shape depends on the data{logged_errors(self._logger)}")
        self.data_dependent.add(name)

    def _output(self, views, name):
        """Output ``name`` as a device tensor after the run: its bound view, or what the allocator got."""
        if name not in self.data_dependent:
            return views[name]
        shape = self._allocator.shapes.get(name)
        if shape is None:
            self.buffers.synchronize()  # notify_shape comes with the run; wait for it if it has not yet
            shape = self._allocator.shapes.get(name)
        if shape is None or any(d < 0 for d in shape):
            raise InferenceError(f"{self.path}: {label(self._trt)} reported no shape for output '{name}' "
                                 f"(data-dependent) after the run{logged_errors(self._logger)}")
        return self.buffers.typed(self._allocator.key(name), shape, self.outputs[name].dtype)

    def _apply(self, views):
        for name, view in views.items():
            if name in self.inputs and not self.context.set_input_shape(name, tuple(view.shape)):
                raise InferenceError(f"{self.path}: {label(self._trt)} rejected shape {tuple(view.shape)} for "
                                     f"input '{name}'")
            self.context.set_tensor_address(name, view.data_ptr())
        self._bound = views

    def _enqueue(self):
        if self._allocator is not None:
            self._allocator.shapes.clear()  # each run reports its own data-dependent shapes
        if not self.context.execute_async_v3(self.buffers.stream_handle):
            raise InferenceError(f"{self.path}: execute_async_v3 failed{logged_errors(self._logger)}")

    def _infer(self, feed):
        views = self._bind(feed)
        self._enqueue()
        return {name: self.buffers.download(self._output(views, name)) for name in self.outputs}

    def _prepare(self, feed):
        """Inputs resident in buffers of their own (later ``infer`` calls do not overwrite them); the callable
        re-binds them if another shape was bound since, then only enqueues."""
        views = self._bind(feed, prefix="prepared:")

        def call():
            if self._bound is not views:
                self._apply(views)
            self._enqueue()

        return call

    def _phases(self, feed):
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
            return [self.buffers.download(self._output(views, name)) for name in self.outputs]

        return {"h2d": h2d, "compute": compute, "d2h": d2h}

    def synchronize(self):
        if self.buffers is not None:
            self.buffers.synchronize()

    def _deactivate(self):
        self._save_runtime_cache()
        self.context = self.engine = self._runtime = self.buffers = self._bound = None  # context first
        self._runtime_config = self._runtime_cache = self._allocator = None

    def _save_runtime_cache(self):
        """TensorRT-RTX: the kernels JIT-compiled in this activation, for the next one (written atomically)."""
        if self._runtime_cache is None:
            return
        try:
            blob = self._runtime_cache.serialize()
            data = bytes(blob) if blob is not None else b""
            if data:
                atomic_write_bytes(self.runtime_cache_file, data)
        except Exception as exc:  # a read-only cache directory must not fail the run
            log.warning("%s: could not write the runtime cache %s: %s", self.name, self.runtime_cache_file, exc)


_ALLOCATOR_CLASSES: dict = {}


def make_output_allocator(trt, buffers):
    """An ``IOutputAllocator`` of ``trt`` whose memory comes from ``buffers`` (one raw buffer per output,
    grown only when TensorRT asks for more) and which keeps the shapes TensorRT reports."""
    cls = _ALLOCATOR_CLASSES.get(id(trt))
    if cls is None or cls.trt is not trt:

        class OutputAllocator(trt.IOutputAllocator):
            def __init__(self, buffers):
                trt.IOutputAllocator.__init__(self)
                self.buffers, self.shapes, self.requests = buffers, {}, []

            @staticmethod
            def key(name):
                return f"allocator:{name}"

            def reallocate_output_async(self, tensor_name, memory, size, alignment, stream=None):
                self.requests.append((tensor_name, int(size)))
                return self.buffers.raw(self.key(tensor_name), int(size))

            def reallocate_output(self, tensor_name, memory, size, alignment):
                return self.reallocate_output_async(tensor_name, memory, size, alignment)

            def notify_shape(self, tensor_name, shape):
                self.shapes[tensor_name] = tuple(int(d) for d in shape)

        OutputAllocator.trt = trt
        cls = _ALLOCATOR_CLASSES[id(trt)] = OutputAllocator
    return cls(buffers)
