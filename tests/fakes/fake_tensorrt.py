"""A fake ``tensorrt`` (10.x, 11.x) or ``tensorrt_rtx`` (1.x) module with their Python API surface, recording
what it is asked.

No machine of this project has TensorRT, nor a GPU TensorRT-RTX runs on, so the exporter and runner are
tested against this (real ``tensorrt_rtx`` builds are in tests/export/test_tensorrt_rtx.py):
- enum values are the real ones per module (from NvInfer.h of 10.13 and 11.1, and ``tensorrt_rtx``
  1.7.1 itself): 11 and RTX renumbered BuilderFlag and NetworkDefinitionCreationFlag (STRONGLY_TYPED
  is 1 on 10, 0 on 11/RTX)
- ``module.record[...]``: network creation flags, builder flags set/cleared, memory pool limits,
  optimization profiles, timing cache bytes loaded and hits, compute capabilities, builds, parses,
  bound addresses, output allocator calls, JIT compiles
- the parser reads the real ONNX file (inputs/outputs from ``onnx.load``); ``module.fail_on_op``
  makes it fail on the first node of that op type the way TensorRT's parser reports it
- the engine is the ONNX bytes plus the profile; its execution context runs the graph with ONNX
  Runtime on CPU, reading inputs from and writing outputs to the raw addresses given to
  ``set_tensor_address`` (``module.memory``: host memory, or CUDA memory in test_tensorrt_cuda.py),
  so binding by name and address is exercised
- an output dim that the input shapes do not determine (ONNX shape inference with data propagation
  cannot resolve it: NonZero, a Range to a computed limit) is ``-1`` in the context's shape, as in
  TensorRT; such an output needs an ``IOutputAllocator`` (reallocate_output_async, notify_shape)
- 11.x and RTX have no FP16/INT8/BF16/... builder flags and no ``int8_calibrator``: touching them
  raises AttributeError as they do; a strongly typed 10.x network rejects FP16/INT8 flags
- RTX: ``ComputeCapability`` targets on the builder config, ``Runtime.get_engine_validity`` against
  ``module.gpu`` (None: no GPU, as on this project's CI; else (major, minor)), a runtime cache that
  holds the kernels JIT-compiled per input shapes (``record['jit_compiles']``)
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import enum
import json
import sys
import types
from collections import defaultdict

import numpy as np
import pytest

from pytest_autoware_deploy.backends.tensorrt import DeviceBuffers

VERSIONS = {"trt10": "10.13.0.35", "trt11": "11.1.0.106", "rtx": "1.7.1.116"}
MODULE_NAMES = {"trt10": "tensorrt", "trt11": "tensorrt", "rtx": "tensorrt_rtx"}
MAGIC = b"FAKETRT\0"

BUILDER_FLAGS = {
    "trt10": dict(FP16=0, INT8=1, DEBUG=2, GPU_FALLBACK=3, REFIT=4, DISABLE_TIMING_CACHE=5, TF32=6, SPARSE_WEIGHTS=7,
                  SAFETY_SCOPE=8, OBEY_PRECISION_CONSTRAINTS=9, PREFER_PRECISION_CONSTRAINTS=10, DIRECT_IO=11,
                  REJECT_EMPTY_ALGORITHMS=12, VERSION_COMPATIBLE=13, EXCLUDE_LEAN_RUNTIME=14, FP8=15,
                  ERROR_ON_TIMING_CACHE_MISS=16, BF16=17, DISABLE_COMPILATION_CACHE=18, STRIP_PLAN=19,
                  REFIT_IDENTICAL=20, WEIGHT_STREAMING=21, INT4=22, REFIT_INDIVIDUAL=23, STRICT_NANS=24,
                  MONITOR_MEMORY=25, FP4=26, EDITABLE_TIMING_CACHE=27, DISTRIBUTIVE_INDEPENDENCE=28),
    "trt11": dict(DEBUG=2, GPU_FALLBACK=3, REFIT=4, DISABLE_TIMING_CACHE=5, TF32=6, SPARSE_WEIGHTS=7, SAFETY_SCOPE=8,
                  DIRECT_IO=11, VERSION_COMPATIBLE=12, EXCLUDE_LEAN_RUNTIME=13, ERROR_ON_TIMING_CACHE_MISS=15,
                  DISABLE_COMPILATION_CACHE=17, STRIP_PLAN=18, REFIT_IDENTICAL=19, WEIGHT_STREAMING=20,
                  REFIT_INDIVIDUAL=22, STRICT_NANS=23, MONITOR_MEMORY=24, EDITABLE_TIMING_CACHE=26,
                  DISTRIBUTIVE_INDEPENDENCE=27),
}
BUILDER_FLAGS["rtx"] = dict(BUILDER_FLAGS["trt11"], REQUIRE_USER_ALLOCATION=28)
CREATION_FLAGS = {"trt10": dict(EXPLICIT_BATCH=0, STRONGLY_TYPED=1, PREFER_JIT_PYTHON_PLUGINS=2,
                                PREFER_AOT_PYTHON_PLUGINS=3),
                  "trt11": dict(STRONGLY_TYPED=0, PREFER_JIT_PYTHON_PLUGINS=1, PREFER_AOT_PYTHON_PLUGINS=2),
                  "rtx": dict(STRONGLY_TYPED=0)}
WEAK_FLAGS = ("FP16", "INT8", "FP8", "BF16", "INT4", "FP4")


class DataType(enum.IntEnum):
    FLOAT = 0
    HALF = 1
    INT8 = 2
    INT32 = 3
    BOOL = 4
    UINT8 = 5
    FP8 = 6
    BF16 = 7
    INT64 = 8
    INT4 = 9
    FP4 = 10
    E8M0 = 11


class TensorIOMode(enum.IntEnum):
    NONE = 0
    INPUT = 1
    OUTPUT = 2


class MemoryPoolType(enum.IntEnum):
    WORKSPACE = 0
    DLA_MANAGED_SRAM = 1
    DLA_LOCAL_DRAM = 2
    DLA_GLOBAL_DRAM = 3
    TACTIC_DRAM = 4
    TACTIC_SHARED_MEMORY = 5


class ProfilingVerbosity(enum.IntEnum):
    LAYER_NAMES_ONLY = 0
    NONE = 1
    DETAILED = 2


class LayerInformationFormat(enum.IntEnum):
    ONELINE = 0
    JSON = 1


class ComputeCapability(enum.IntEnum):  # tensorrt_rtx 1.7.1
    NONE = 0
    CURRENT = 1
    SM75 = 75
    SM80 = 80
    SM86 = 86
    SM89 = 89
    SM120 = 120
    SM121 = 121


class EngineValidity(enum.IntEnum):
    VALID = 0
    SUBOPTIMAL = 1
    INVALID = 2


class EngineInvalidityDiagnostics(enum.IntFlag):
    VERSION_MISMATCH = 1
    UNSUPPORTED_CC = 2
    OLD_CUDA_DRIVER = 4
    OLD_CUDA_RUNTIME = 8
    INSUFFICIENT_GPU_MEMORY = 16
    MALFORMED_ENGINE = 32
    CUDA_ERROR = 64


ONNX_TO_TRT = {1: DataType.FLOAT, 10: DataType.HALF, 3: DataType.INT8, 6: DataType.INT32, 9: DataType.BOOL,
               2: DataType.UINT8, 16: DataType.BF16, 7: DataType.INT64}
TRT_TO_NUMPY = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8,
                DataType.INT32: np.int32, DataType.BOOL: np.bool_, DataType.UINT8: np.uint8, DataType.INT64: np.int64}
DETAIL_TYPES = {DataType.FLOAT: "FP32", DataType.HALF: "FP16", DataType.INT8: "Int8", DataType.INT32: "Int32",
                DataType.BOOL: "Bool", DataType.UINT8: "UInt8", DataType.INT64: "Int64", DataType.BF16: "BF16"}


class ILogger:
    class Severity(enum.IntEnum):
        INTERNAL_ERROR = 0
        ERROR = 1
        WARNING = 2
        INFO = 3
        VERBOSE = 4

    def __init__(self):
        pass

    def log(self, severity, msg):
        raise NotImplementedError


class HostMemory:
    """How the fake engine reads and writes the addresses it is given: here host memory, through ctypes."""

    def read(self, ptr, shape, dtype, stream):
        raw = (ctypes.c_char * (int(np.prod(shape)) * dtype.itemsize)).from_address(ptr)
        return np.frombuffer(raw, dtype=dtype).reshape(shape).copy()

    def write(self, ptr, value, stream):
        ctypes.memmove(ptr, value.ctypes.data, value.nbytes)


def output_shapes(onnx_bytes, input_shapes: dict) -> dict:
    """Output name -> shape at these input shapes as far as ONNX shape inference (with data propagation)
    determines it; -1 where only the data does (what TensorRT's shape analysis reports as data-dependent)."""
    import onnx

    model = onnx.load_from_string(onnx_bytes)
    for value in model.graph.input:
        if value.name in input_shapes:
            dims = value.type.tensor_type.shape.dim
            for d, size in zip(dims, input_shapes[value.name]):
                d.Clear()
                d.dim_value = int(size)
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False, data_prop=True)
    known = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    out = {}
    for value in model.graph.output:
        dims = known.get(value.name, value).type.tensor_type.shape.dim
        out[value.name] = tuple(d.dim_value if d.HasField("dim_value") else -1 for d in dims)
    return out


def make_tensorrt(flavor: str = "trt10", version: str | None = None) -> types.ModuleType:
    """A fresh fake module (``flavor``: trt10, trt11, rtx): its own record and switches (``fail_on_op``,
    ``build_returns_none``: True or the error the build logs, ``gpu`` for RTX)."""
    version = version or VERSIONS[flavor]
    rtx = flavor == "rtx"
    weak = flavor == "trt10"
    trt = types.ModuleType(MODULE_NAMES[flavor])
    trt.__version__ = version
    trt.record = defaultdict(list)
    trt.fail_on_op = None
    trt.build_returns_none = False
    trt.memory = HostMemory()
    trt.gpu = None  # RTX: the GPU's compute capability as (major, minor); None = no usable GPU
    trt.DataType, trt.TensorIOMode, trt.MemoryPoolType, trt.ILogger = DataType, TensorIOMode, MemoryPoolType, ILogger
    trt.ProfilingVerbosity, trt.LayerInformationFormat = ProfilingVerbosity, LayerInformationFormat
    trt.Logger = type("Logger", (ILogger,), {"log": lambda self, s, m: None, "Severity": ILogger.Severity})
    trt.BuilderFlag = enum.IntEnum("BuilderFlag", BUILDER_FLAGS[flavor])
    trt.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", CREATION_FLAGS[flavor])
    if rtx:
        trt.ComputeCapability, trt.EngineValidity = ComputeCapability, EngineValidity
        trt.EngineInvalidityDiagnostics = EngineInvalidityDiagnostics
    default_ccs = [m.value for m in ComputeCapability if m.value >= 80]
    rec = trt.record

    def error(logger, msg, severity=ILogger.Severity.ERROR):
        logger.log(severity, msg)

    class Tensor:
        def __init__(self, name, shape, dtype):
            self.name, self.shape, self.dtype = name, tuple(shape), dtype

    class Layer:
        def __init__(self, name, op, dtype):
            self.name, self.type, self.num_outputs = name, op, 1
            self._out = Tensor(name + "_out", (), dtype)

        def get_output(self, i):
            return self._out

    class Network:
        def __init__(self, flags):
            self.flags = flags
            strong = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
            self.strongly_typed = not weak or bool(flags & strong)  # 11.x/RTX: strongly typed whatever the flags
            self.inputs, self.outputs, self.layers, self.onnx = [], [], [], None

        num_inputs = property(lambda self: len(self.inputs))
        num_outputs = property(lambda self: len(self.outputs))
        num_layers = property(lambda self: len(self.layers))

        def get_input(self, i):
            return self.inputs[i]

        def get_output(self, i):
            return self.outputs[i]

        def get_layer(self, i):
            return self.layers[i]

    class ParserError:
        def __init__(self, desc, node, name, op):
            self._desc, self._node, self._name, self._op = desc, node, name, op

        def desc(self):
            return self._desc

        def node(self):
            return self._node

        def node_name(self):
            return self._name

        def node_operator(self):
            return self._op

        def code(self):
            return 8  # UNSUPPORTED_NODE

    class OnnxParser:
        def __init__(self, network, logger):
            self.network, self.logger, self.errors = network, logger, []

        num_errors = property(lambda self: len(self.errors))

        def get_error(self, i):
            return self.errors[i]

        def parse_from_file(self, path):
            rec["parse"].append(str(path))
            with open(path, "rb") as f:
                return self._parse(f.read())

        def parse(self, data, path=None):
            return self._parse(bytes(data))

        def _parse(self, data):
            import onnx

            model = onnx.load_from_string(data)
            for i, node in enumerate(model.graph.node):
                if node.op_type == trt.fail_on_op:
                    self.errors.append(ParserError(f"No importer registered for op: {node.op_type}", i, node.name,
                                                   node.op_type))
                    error(self.logger, f"ModelImporter: failed to import node {node.name}")
                    return False
            inits = {t.name for t in model.graph.initializer}
            self.network.inputs = [_tensor(v) for v in model.graph.input if v.name not in inits]
            self.network.outputs = [_tensor(v) for v in model.graph.output]
            types_ = _elem_types(model)
            self.network.layers = [Layer(n.name or f"node{i}", n.op_type, ONNX_TO_TRT.get(types_.get(n.output[0]),
                                                                                             DataType.FLOAT))
                                   for i, n in enumerate(model.graph.node)]
            self.network.onnx = data
            return True

    def _elem_types(model):
        import onnx

        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
        values = list(inferred.graph.value_info) + list(inferred.graph.output) + list(inferred.graph.input)
        return {v.name: v.type.tensor_type.elem_type for v in values}

    def _tensor(value_info):
        tt = value_info.type.tensor_type
        dims = [d.dim_value if d.HasField("dim_value") else -1 for d in tt.shape.dim]
        return Tensor(value_info.name, dims, ONNX_TO_TRT[tt.elem_type])

    class Profile:
        def __init__(self):
            self.shapes = {}

        def set_shape(self, name, min, opt, max):  # noqa: A002 (TensorRT's keyword names)
            self.shapes[name] = (tuple(min), tuple(opt), tuple(max))

        def get_shape(self, name):
            return self.shapes[name]

    class TimingCache:
        def __init__(self, entries, owner_version):
            self.entries, self.version = set(entries), owner_version

        def serialize(self):
            return memoryview(MAGIC + json.dumps({"version": self.version, "entries": sorted(self.entries)}).encode())

    class BuilderConfig:
        def __init__(self):
            self.flags = {getattr(trt.BuilderFlag, "TF32", None)} - {None}  # TensorRT's default
            self.pools, self.profiles, self.timing_cache = {}, [], None
            self.profiling_verbosity = ProfilingVerbosity.LAYER_NAMES_ONLY
            self._ccs = []

        def set_flag(self, flag):
            rec["set_flag"].append(flag.name)
            self.flags.add(flag)

        def clear_flag(self, flag):
            rec["clear_flag"].append(flag.name)
            self.flags.discard(flag)

        def get_flag(self, flag):
            return flag in self.flags

        def set_memory_pool_limit(self, pool, size):
            rec["memory_pool_limit"].append((pool.name, size))
            self.pools[pool] = size

        def add_optimization_profile(self, profile):
            rec["profile"].append(dict(profile.shapes))
            self.profiles.append(profile)
            return len(self.profiles) - 1

        def create_timing_cache(self, data):
            data = bytes(data)
            rec["timing_cache_loaded"].append(len(data))
            if not data:
                return TimingCache((), version)
            if not data.startswith(MAGIC):
                raise RuntimeError("timing cache is corrupted")
            blob = json.loads(data[len(MAGIC):])
            return TimingCache(blob["entries"], blob["version"])

        def set_timing_cache(self, cache, ignore_mismatch):
            if cache.version != version and not ignore_mismatch:
                return False
            self.timing_cache = cache
            return True

        def get_timing_cache(self):
            return self.timing_cache

    if weak:
        BuilderConfig.int8_calibrator = None
    if rtx:
        def _get_n(self):
            return len(self._ccs)

        def _set_n(self, n):
            self._ccs = [ComputeCapability.NONE] * int(n)

        def set_compute_capability(self, cc, index):
            rec["set_compute_capability"].append((cc.name, index))
            self._ccs[index] = cc
            return True

        BuilderConfig.num_compute_capabilities = property(_get_n, _set_n)
        BuilderConfig.set_compute_capability = set_compute_capability
        BuilderConfig.get_compute_capability = lambda self, i: self._ccs[i]

    class Builder:
        def __init__(self, logger):
            self.logger = logger

        def create_network(self, flags=0):
            rec["create_network"].append(flags)
            return Network(flags)

        def create_builder_config(self):
            return BuilderConfig()

        def create_optimization_profile(self):
            return Profile()

        def build_serialized_network(self, network, config):
            rec["build"].append({"flags": sorted(f.name for f in config.flags),
                                 "strongly_typed": network.strongly_typed,
                                 "timing_cache": config.timing_cache is not None,
                                 "compute_capabilities": [c.name for c in config._ccs]})
            if trt.build_returns_none:
                error(self.logger, trt.build_returns_none if isinstance(trt.build_returns_none, str)
                      else "fake: out of device memory while building")
                return None
            weak_set = {getattr(trt.BuilderFlag, f, None) for f in WEAK_FLAGS} & config.flags
            if network.strongly_typed and weak_set:
                names = sorted(f.name for f in weak_set)
                error(self.logger, f"strongly typed networks do not take precision flags {names}")
                return None
            profile = config.profiles[0].shapes if config.profiles else {}
            for t in network.inputs:
                if any(d < 0 for d in t.shape) and t.name not in profile:
                    error(self.logger, f"IBuilder::buildSerializedNetwork: Error Code 4: API Usage Error "
                                       f"(Network has dynamic or shape inputs, but no optimization profile has been "
                                       f"defined for input {t.name})")
                    return None
            import onnx

            nodes = [f"{n.op_type}:{n.name}" for n in onnx.load_from_string(network.onnx).graph.node]
            if config.timing_cache is not None:
                rec["timing_cache_hits"].append(len(set(nodes) & config.timing_cache.entries))
                config.timing_cache.entries.update(nodes)
            ccs = [int(c) for c in config._ccs] or default_ccs
            layers = [[layer.name, layer.type, int(layer.get_output(0).dtype)] for layer in network.layers]
            blob = {"version": version, "onnx": base64.b64encode(network.onnx).decode(), "profile": profile,
                    "inputs": [[t.name, list(t.shape), int(t.dtype)] for t in network.inputs],
                    "outputs": [[t.name, list(t.shape), int(t.dtype)] for t in network.outputs],
                    "compute_capabilities": ccs if rtx else None, "layers": layers,
                    "detailed": config.profiling_verbosity == ProfilingVerbosity.DETAILED}
            return memoryview(MAGIC + json.dumps(blob).encode())

    def _cc_text(cc):
        return f"{cc // 10}.{cc % 10}"

    class Runtime:
        def __init__(self, logger):
            self.logger = logger

        def _blob(self, data):
            data = bytes(data)
            if not data.startswith(MAGIC):
                return None
            return json.loads(data[len(MAGIC):])

        def get_engine_validity(self, data):
            """RTX: the engine header against this machine (version, GPU, compute capability)."""
            rec["get_engine_validity"].append(len(bytes(data)))
            blob = self._blob(data)
            if blob is None:
                return EngineValidity.INVALID, int(EngineInvalidityDiagnostics.MALFORMED_ENGINE)
            if blob["version"] != version:
                return EngineValidity.INVALID, int(EngineInvalidityDiagnostics.VERSION_MISMATCH)
            if trt.gpu is None:
                error(self.logger, "Error reading CUDA GPU properties: In getCurrentCC (cudaError 35: CUDA driver "
                                   "version is insufficient for CUDA runtime version) Ensure that the GPU driver is "
                                   "installed and up to date.", ILogger.Severity.INTERNAL_ERROR)
                return EngineValidity.INVALID, 0
            cc = trt.gpu[0] * 10 + trt.gpu[1]
            if cc not in blob["compute_capabilities"]:
                error(self.logger, f"The engine cannot run on this GPU, which has compute capability "
                                   f"{_cc_text(cc)}. Supported compute capabilities: "
                                   + " ".join(_cc_text(c) for c in blob["compute_capabilities"]))
                return EngineValidity.INVALID, int(EngineInvalidityDiagnostics.UNSUPPORTED_CC)
            return EngineValidity.VALID, 0

        def deserialize_cuda_engine(self, data):
            blob = self._blob(data)
            if blob is None:
                error(self.logger, "engine plan file is corrupted")
                return None
            if blob["version"] != version:
                error(self.logger, f"engine built with {version} {blob['version']}, this is {version}")
                return None
            if rtx and (trt.gpu is None or trt.gpu[0] * 10 + trt.gpu[1] not in blob["compute_capabilities"]):
                error(self.logger, "IRuntime::deserializeCudaEngine: Error Code 1: Cuda Runtime (cudaError 35)")
                return None
            return Engine(blob)

    if not rtx:
        del Runtime.get_engine_validity  # TensorRT 10/11 have no engine-validity API

    class RuntimeCache:
        def __init__(self):
            self.kernels = set()

        def serialize(self):
            return memoryview(MAGIC + json.dumps({"gpu": trt.gpu, "kernels": sorted(self.kernels)}).encode())

        def deserialize(self, data):
            data = bytes(data)
            if not data.startswith(MAGIC):
                return False
            blob = json.loads(data[len(MAGIC):])
            if blob["gpu"] != (list(trt.gpu) if trt.gpu else None):
                return False
            self.kernels = set(blob["kernels"])
            rec["runtime_cache_loaded"].append(len(self.kernels))
            return True

        def reset(self):
            self.kernels = set()
            return True

    class RuntimeConfig:
        def __init__(self):
            self.cache = None

        def create_runtime_cache(self):
            return RuntimeCache()

        def set_runtime_cache(self, cache):
            self.cache = cache
            return True

        def get_runtime_cache(self):
            return self.cache

    class Inspector:
        def __init__(self, engine):
            self.engine = engine

        def get_engine_information(self, fmt):
            assert fmt == LayerInformationFormat.JSON
            if not self.engine.detailed:
                return json.dumps({"Layers": [name for name, _, _ in self.engine.layers]})
            layers = [{"Name": name, "LayerType": op,
                       "Outputs": [{"Format/Datatype": f"Row major linear {DETAIL_TYPES[DataType(dtype)]}"}]}
                      for name, op, dtype in self.engine.layers]
            return json.dumps({"Layers": layers, "Bindings": self.engine.names})

    class Engine:
        def __init__(self, blob):
            self.onnx = base64.b64decode(blob["onnx"])
            self.profile = {k: tuple(tuple(s) for s in v) for k, v in blob["profile"].items()}
            self.layers, self.detailed = blob["layers"], blob["detailed"]
            self.tensors = {}
            for mode, key in ((TensorIOMode.INPUT, "inputs"), (TensorIOMode.OUTPUT, "outputs")):
                for name, shape, dtype in blob[key]:
                    self.tensors[name] = (mode, tuple(shape), DataType(dtype))
            self.names = list(self.tensors)
            self._session = None

        num_io_tensors = property(lambda self: len(self.names))
        num_layers = property(lambda self: len(self.layers))

        def get_tensor_name(self, i):
            return self.names[i]

        def get_tensor_mode(self, name):
            return self.tensors[name][0]

        def get_tensor_shape(self, name):
            return self.tensors[name][1]

        def get_tensor_dtype(self, name):
            return self.tensors[name][2]

        def get_tensor_profile_shape(self, name, index):
            return list(self.profile[name])

        def create_execution_context(self, runtime_config=None):
            rec["create_execution_context"].append(runtime_config is not None and runtime_config.cache is not None)
            return Context(self, runtime_config)

        def create_engine_inspector(self):
            return Inspector(self)

        def session(self):
            if self._session is None:
                import onnxruntime as ort

                self._session = ort.InferenceSession(self.onnx, providers=["CPUExecutionProvider"])
            return self._session

    if rtx:
        Engine.create_runtime_config = lambda self: RuntimeConfig()

    class Context:
        def __init__(self, engine, runtime_config=None):
            self.engine, self.shapes, self.addresses, self._out_shapes = engine, {}, {}, {}
            self.allocators = {}
            self.cache = runtime_config.cache if runtime_config is not None else None

        def set_input_shape(self, name, shape):
            shape = tuple(shape)
            rec["set_input_shape"].append((name, shape))
            lo, _, hi = self.engine.profile.get(name, (self.engine.get_tensor_shape(name),) * 3)
            if len(shape) != len(lo) or any(not (a <= s <= b) for s, a, b in zip(shape, lo, hi)):
                return False
            self.shapes[name] = shape
            return True

        def _inputs(self):
            return [n for n in self.engine.names if self.engine.get_tensor_mode(n) == TensorIOMode.INPUT]

        def get_tensor_shape(self, name):
            if self.engine.get_tensor_mode(name) == TensorIOMode.INPUT:
                return self.shapes.get(name, self.engine.get_tensor_shape(name))
            key = tuple(self.shapes.get(n) for n in self._inputs())
            if None in key:
                return self.engine.get_tensor_shape(name)
            if key not in self._out_shapes:  # what the input shapes determine; -1 where only the data does
                self._out_shapes[key] = output_shapes(self.engine.onnx, dict(zip(self._inputs(), key)))
            return self._out_shapes[key][name]

        def set_tensor_address(self, name, ptr):
            rec["set_tensor_address"].append((name, int(ptr)))
            self.addresses[name] = int(ptr)
            return True

        def set_output_allocator(self, name, allocator):
            rec["set_output_allocator"].append(name)
            self.allocators[name] = allocator
            return True

        def execute_async_v3(self, stream_handle):
            rec["execute"].append(stream_handle)
            feed = {}
            for name in self._inputs():
                dtype = np.dtype(TRT_TO_NUMPY[self.engine.get_tensor_dtype(name)])
                feed[name] = trt.memory.read(self.addresses[name], self.shapes[name], dtype, stream_handle)
            if self.cache is not None:  # JIT: kernels per input shapes, unless the runtime cache has them
                kernel = json.dumps(sorted((k, list(v)) for k, v in self.shapes.items()))
                if kernel not in self.cache.kernels:
                    rec["jit_compiles"].append(kernel)
                    self.cache.kernels.add(kernel)
            sess = self.engine.session()
            names = [o.name for o in sess.get_outputs()]
            for name, value in zip(names, sess.run(names, feed)):
                value = np.ascontiguousarray(value, TRT_TO_NUMPY[self.engine.get_tensor_dtype(name)])
                declared = tuple(self.get_tensor_shape(name))
                if name in self.allocators:
                    alloc = self.allocators[name]
                    ptr = alloc.reallocate_output_async(name, self.addresses.get(name, 0), max(value.nbytes, 1), 256,
                                                        stream_handle)
                    rec["reallocate_output"].append((name, value.nbytes))
                    if not ptr:
                        rec["errors"].append(f"output allocator returned null for {name}")
                        return False
                    trt.memory.write(int(ptr), value, stream_handle)
                    alloc.notify_shape(name, tuple(value.shape))
                    continue
                if any(d < 0 for d in declared) or name not in self.addresses:
                    rec["errors"].append(f"Neither address or allocator is set for output tensor {name}")
                    return False
                assert tuple(value.shape) == declared, "output bound at a stale shape"
                trt.memory.write(self.addresses[name], value, stream_handle)
            return True

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime

    class IOutputAllocator:
        def __init__(self):
            pass

    trt.IOutputAllocator = IOutputAllocator
    return trt


@pytest.fixture(params=sorted(VERSIONS))
def fake_trt(request, monkeypatch):
    """``sys.modules[<name>]`` is the fake for this test: TensorRT 10.x, 11.x, then TensorRT-RTX 1.x (whose
    ``gpu`` is an 8.6 card here, one the engines target; tests of other GPUs set it)."""
    module = make_tensorrt(request.param)
    if request.param == "rtx":
        module.gpu = (8, 6)
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return module


def flavor_of(trt) -> str:
    return "rtx" if trt.__name__ == "tensorrt_rtx" else "trt10" if trt.__version__.startswith("10.") else "trt11"


class HostBuffers(DeviceBuffers):
    """The runner's buffers on torch CPU tensors: the fake engine reads and writes them via ``data_ptr()``."""

    stream_handle = 0

    def __init__(self, device):
        self.syncs = 0
        super().__init__("cpu")

    def _open_stream(self):
        return None

    def on_stream(self):
        return contextlib.nullcontext()

    def synchronize(self):
        self.syncs += 1


TINY_TRT = """
backend_config = dict(common_config=dict(max_workspace_size=1 << 28),
                      model_inputs=[dict(name='image', min_shape=[1, 3, 16, 16], opt_shape=[2, 3, 16, 16],
                                         max_shape=[4, 3, 16, 16])])
"""


@pytest.fixture(scope="module")
def trt_tiny(tmp_path_factory):
    """(spec file, exported ONNX) of the tiny model with a min/opt/max profile for 'image' (batch 1..4)."""
    from pytest_autoware_deploy.report.store import ReportStore
    from pytest_autoware_deploy.session import SpecState
    from pytest_autoware_deploy.spec.load import load_spec

    from ..conftest import write_tiny_spec

    spec_file = write_tiny_spec(tmp_path_factory.mktemp("trt") / "user", extra=TINY_TRT)
    return spec_file, SpecState(load_spec(spec_file), ReportStore()).onnx.path


@pytest.fixture
def trt_spec(trt_tiny, tmp_path):
    """The tiny spec with a work dir of this test's own (engine cache, timing cache)."""
    from pytest_autoware_deploy.spec.load import load_spec

    return load_spec(trt_tiny[0], work_dir=tmp_path / "wd")
