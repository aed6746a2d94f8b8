"""A fake ``tensorrt`` module with the TensorRT 10.x or 11.x Python API surface, recording what it is asked.

No machine of this project has TensorRT, so the exporter and runner are tested against this:
- ``module.record[...]``: network creation flags, builder flags set/cleared, memory pool limits,
  optimization profiles, timing cache bytes loaded and hits, builds, parses, bound addresses
- the parser reads the real ONNX file (inputs/outputs from ``onnx.load``); ``module.fail_on_op``
  makes it fail on the first node of that op type the way TensorRT's parser reports it
- the engine is the ONNX bytes plus the profile; its execution context runs the graph with ONNX
  Runtime on CPU, reading inputs from and writing outputs to the raw addresses given to
  ``set_tensor_address`` (``module.memory``: host memory, or CUDA memory in test_tensorrt_cuda.py),
  so binding by name and address is exercised
- 11.x has no FP16/INT8/BF16/... builder flags and no ``int8_calibrator``: touching them raises
  AttributeError as TensorRT 11 does; a strongly typed 10.x network rejects FP16/INT8 flags
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

VERSIONS = {"trt10": "10.13.0.35", "trt11": "11.4.0.106"}
MAGIC = b"FAKETRT\0"
REMOVED_IN_11 = ("FP16", "INT8", "FP8", "BF16", "INT4", "FP4", "OBEY_PRECISION_CONSTRAINTS",
                 "PREFER_PRECISION_CONSTRAINTS")
BUILDER_FLAGS = ("FP16", "INT8", "DEBUG", "GPU_FALLBACK", "REFIT", "DISABLE_TIMING_CACHE", "TF32", "SPARSE_WEIGHTS",
                 "SAFETY_SCOPE", "OBEY_PRECISION_CONSTRAINTS", "PREFER_PRECISION_CONSTRAINTS", "DIRECT_IO",
                 "REJECT_EMPTY_ALGORITHMS", "VERSION_COMPATIBLE", "EXCLUDE_LEAN_RUNTIME", "FP8",
                 "ERROR_ON_TIMING_CACHE_MISS", "BF16", "DISABLE_COMPILATION_CACHE", "STRIP_PLAN", "REFIT_IDENTICAL",
                 "WEIGHT_STREAMING", "INT4", "REFIT_INDIVIDUAL", "STRICT_NANS", "MONITOR_MEMORY", "FP4")


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


ONNX_TO_TRT = {1: DataType.FLOAT, 10: DataType.HALF, 3: DataType.INT8, 6: DataType.INT32, 9: DataType.BOOL,
               2: DataType.UINT8, 16: DataType.BF16, 7: DataType.INT64}
TRT_TO_NUMPY = {DataType.FLOAT: np.float32, DataType.HALF: np.float16, DataType.INT8: np.int8,
                DataType.INT32: np.int32, DataType.BOOL: np.bool_, DataType.UINT8: np.uint8, DataType.INT64: np.int64}


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


def make_tensorrt(version: str) -> types.ModuleType:
    """A fresh fake module: its own record and switches (``fail_on_op``, ``build_returns_none``)."""
    major = int(version.split(".")[0])
    trt = types.ModuleType("tensorrt")
    trt.__version__ = version
    trt.record = defaultdict(list)
    trt.fail_on_op = None
    trt.build_returns_none = False
    trt.memory = HostMemory()
    trt.DataType, trt.TensorIOMode, trt.MemoryPoolType, trt.ILogger = DataType, TensorIOMode, MemoryPoolType, ILogger
    trt.Logger = type("Logger", (ILogger,), {"log": lambda self, s, m: None, "Severity": ILogger.Severity})
    flags = [f for f in BUILDER_FLAGS if major < 11 or f not in REMOVED_IN_11]
    trt.BuilderFlag = enum.IntEnum("BuilderFlag", {f: BUILDER_FLAGS.index(f) for f in flags})
    creation = {"STRONGLY_TYPED": 1} if major >= 11 else {"EXPLICIT_BATCH": 0, "STRONGLY_TYPED": 1}
    trt.NetworkDefinitionCreationFlag = enum.IntEnum("NetworkDefinitionCreationFlag", creation)
    rec = trt.record

    def error(logger, msg):
        logger.log(ILogger.Severity.ERROR, msg)

    class Tensor:
        def __init__(self, name, shape, dtype):
            self.name, self.shape, self.dtype = name, tuple(shape), dtype

    class Network:
        def __init__(self, flags):
            self.flags = flags
            strong = 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
            self.strongly_typed = major >= 11 or bool(flags & strong)  # 11.x: strongly typed whatever the flags
            self.inputs, self.outputs, self.onnx = [], [], None

        num_inputs = property(lambda self: len(self.inputs))
        num_outputs = property(lambda self: len(self.outputs))

        def get_input(self, i):
            return self.inputs[i]

        def get_output(self, i):
            return self.outputs[i]

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
            self.network.onnx = data
            return True

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

    config_attrs = {}
    if major < 11:
        config_attrs["int8_calibrator"] = None

    class BuilderConfig:
        def __init__(self):
            self.flags = {getattr(trt.BuilderFlag, "TF32", None)} - {None}  # TensorRT's default
            self.pools, self.profiles, self.timing_cache = {}, [], None

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

    for k, v in config_attrs.items():
        setattr(BuilderConfig, k, v)

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
                                 "strongly_typed": network.strongly_typed})
            if trt.build_returns_none:
                error(self.logger, "fake: out of device memory while building")
                return None
            weak = {getattr(trt.BuilderFlag, f, None) for f in ("FP16", "INT8", "BF16")} & config.flags
            if network.strongly_typed and weak:
                names = sorted(f.name for f in weak)
                error(self.logger, f"strongly typed networks do not take precision flags {names}")
                return None
            profile = config.profiles[0].shapes if config.profiles else {}
            for t in network.inputs:
                if any(d < 0 for d in t.shape) and t.name not in profile:
                    error(self.logger, f"input {t.name} has dynamic dims but no optimization profile")
                    return None
            import onnx

            nodes = [f"{n.op_type}:{n.name}" for n in onnx.load_from_string(network.onnx).graph.node]
            if config.timing_cache is not None:
                rec["timing_cache_hits"].append(len(set(nodes) & config.timing_cache.entries))
                config.timing_cache.entries.update(nodes)
            blob = {"version": version, "onnx": base64.b64encode(network.onnx).decode(), "profile": profile,
                    "inputs": [[t.name, list(t.shape), int(t.dtype)] for t in network.inputs],
                    "outputs": [[t.name, list(t.shape), int(t.dtype)] for t in network.outputs]}
            return memoryview(MAGIC + json.dumps(blob).encode())

    class Runtime:
        def __init__(self, logger):
            self.logger = logger

        def deserialize_cuda_engine(self, data):
            data = bytes(data)
            if not data.startswith(MAGIC):
                error(self.logger, "engine plan file is corrupted")
                return None
            blob = json.loads(data[len(MAGIC):])
            if blob["version"] != version:
                error(self.logger, f"engine built with TensorRT {blob['version']}, this is {version}")
                return None
            return Engine(blob)

    class Engine:
        def __init__(self, blob):
            self.onnx = base64.b64decode(blob["onnx"])
            self.profile = {k: tuple(tuple(s) for s in v) for k, v in blob["profile"].items()}
            self.tensors = {}
            for mode, key in ((TensorIOMode.INPUT, "inputs"), (TensorIOMode.OUTPUT, "outputs")):
                for name, shape, dtype in blob[key]:
                    self.tensors[name] = (mode, tuple(shape), DataType(dtype))
            self.names = list(self.tensors)
            self._session = None

        num_io_tensors = property(lambda self: len(self.names))

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

        def create_execution_context(self):
            return Context(self)

        def session(self):
            if self._session is None:
                import onnxruntime as ort

                self._session = ort.InferenceSession(self.onnx, providers=["CPUExecutionProvider"])
            return self._session

    class Context:
        def __init__(self, engine):
            self.engine, self.shapes, self.addresses, self._out_shapes = engine, {}, {}, {}

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
            if key not in self._out_shapes:  # what the graph gives at these input shapes
                feed = {n: np.zeros(s, TRT_TO_NUMPY[self.engine.get_tensor_dtype(n)])
                        for n, s in zip(self._inputs(), key)}
                sess = self.engine.session()
                names = [o.name for o in sess.get_outputs()]
                self._out_shapes[key] = dict(zip(names, (o.shape for o in sess.run(names, feed))))
            return tuple(self._out_shapes[key][name])

        def set_tensor_address(self, name, ptr):
            rec["set_tensor_address"].append((name, int(ptr)))
            self.addresses[name] = int(ptr)
            return True

        def execute_async_v3(self, stream_handle):
            rec["execute"].append(stream_handle)
            feed = {}
            for name in self._inputs():
                dtype = np.dtype(TRT_TO_NUMPY[self.engine.get_tensor_dtype(name)])
                feed[name] = trt.memory.read(self.addresses[name], self.shapes[name], dtype, stream_handle)
            sess = self.engine.session()
            names = [o.name for o in sess.get_outputs()]
            for name, value in zip(names, sess.run(names, feed)):
                value = np.ascontiguousarray(value, TRT_TO_NUMPY[self.engine.get_tensor_dtype(name)])
                assert tuple(value.shape) == tuple(self.get_tensor_shape(name)), "output bound at a stale shape"
                trt.memory.write(self.addresses[name], value, stream_handle)
            return True

    trt.Builder, trt.OnnxParser, trt.Runtime = Builder, OnnxParser, Runtime
    return trt


@pytest.fixture(params=sorted(VERSIONS))
def fake_trt(request, monkeypatch):
    """``sys.modules['tensorrt']`` is the fake for this test: TensorRT 10.x, then 11.x."""
    module = make_tensorrt(VERSIONS[request.param])
    monkeypatch.setitem(sys.modules, "tensorrt", module)
    return module


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
