"""ONNX -> TensorRT engine for the TensorRT 10 and 11 Python APIs, cached like the ONNX export.

Why two paths: TensorRT 11 removed weak typing (FP16/INT8/BF16 builder flags, INT8 calibrators,
precision constraints). There every network is strongly typed and the precision is what the ONNX
graph carries: export/precision.py derives that graph per policy (fp16 casts, int8 Q/DQ). On 10
the seed's (AWML's) builder flags apply on top of the same graph:

=============== ====================================== ==================================
policy          TensorRT 10                            TensorRT 11
=============== ====================================== ==================================
auto            no flag: TensorRT decides (TF32 on)    strongly typed, TF32 on
fp16            FP16 flag, fp16 graph                  strongly typed fp16 graph
fp32_tf32       TF32 flag (TensorRT's default anyway)  strongly typed, TF32 flag
int8            INT8 flag, Q/DQ graph, no calibrator   strongly typed Q/DQ graph
strongly_typed  strongly typed network, TF32 cleared   strongly typed, TF32 cleared
=============== ====================================== ==================================

int8 sets no FP16 fallback: unquantized layers stay fp32 as in ONNX Runtime's int8 graph, whose
tolerances the policy uses. The engine key hashes the ONNX bytes, the policy, backend_config, the
TensorRT version, the GPU and this file; the timing cache is reused across builds.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import __version__
from ..errors import ArtifactError, BackendUnavailable, SpecError
from ..progress import status
from .cache import ArtifactCache, atomic_path, content_key, file_digest
from .precision import POLICIES

log = logging.getLogger("pytest_autoware_deploy.tensorrt")
_SOURCE_DIGEST = file_digest(__file__)


@dataclass
class EngineArtifact:
    path: Path          # the serialized engine (``model.engine`` in the cache entry)
    key: str
    built: bool
    policy: str
    onnx: Path          # the graph it was built from (the policy's graph)
    tensorrt: str
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class BuildPlan:
    """How a policy is expressed for one TensorRT major version."""

    strongly_typed: bool
    set_flags: tuple = ()
    clear_flags: tuple = ()
    needs: str | None = None    # what the ONNX graph must carry: 'fp16' or 'qdq'


def load_tensorrt(consequence: str):
    """The ``tensorrt`` module (10 or newer), or BackendUnavailable saying why not and what it means."""
    try:
        import tensorrt as trt
    except (ImportError, OSError) as exc:
        detail = "" if isinstance(exc, ModuleNotFoundError) else f" ({type(exc).__name__}: {exc})"
        raise BackendUnavailable(f"TensorRT is not installed here (no 'tensorrt' module{detail}): "
                                 f"{consequence}") from None
    if major_version(trt) < 10:
        raise BackendUnavailable(f"TensorRT {trt.__version__} is too old: this plugin uses the TensorRT 10/11 "
                                 f"API; {consequence}")
    return trt


def major_version(trt) -> int:
    return int(trt.__version__.split(".")[0])


def build_plan(policy: str, major: int) -> BuildPlan:
    if policy not in POLICIES:
        raise ArtifactError(f"unknown precision policy {policy!r} for TensorRT; expected one of {', '.join(POLICIES)}")
    needs = {"fp16": "fp16", "int8": "qdq"}.get(policy)
    tf32_set, tf32_clear = {"fp32_tf32": (("TF32",), ()), "strongly_typed": ((), ("TF32",))}.get(policy, ((), ()))
    if major >= 11:  # weak typing is gone: the graph carries the precision
        return BuildPlan(True, tf32_set, tf32_clear, needs)
    weak = {"fp16": ("FP16",), "int8": ("INT8",)}.get(policy, ())
    return BuildPlan(policy == "strongly_typed", weak + tf32_set, tf32_clear, needs)


_LOGGER = None


def trt_logger(trt):
    """One logger per process (TensorRT warns when builder and runtime get different ones)."""
    global _LOGGER
    if _LOGGER is None or _LOGGER.trt is not trt:
        _LOGGER = _make_logger(trt)
    return _LOGGER


def _make_logger(trt):
    sev = trt.ILogger.Severity
    levels = {sev.INTERNAL_ERROR: logging.CRITICAL, sev.ERROR: logging.ERROR, sev.WARNING: logging.WARNING,
              sev.INFO: logging.DEBUG, sev.VERBOSE: 5}

    class TrtLogger(trt.ILogger):
        """Routes TensorRT's messages to Python logging; keeps recent errors for the exception text."""

        def __init__(self):
            trt.ILogger.__init__(self)
            self.trt = trt
            self.errors = deque(maxlen=20)

        def log(self, severity, msg):
            level = levels.get(severity, logging.INFO)
            if level >= logging.ERROR:
                self.errors.append(str(msg))
            if log.isEnabledFor(level):
                log.log(level, "TensorRT: %s", msg)

    return TrtLogger()


def logged_errors(logger) -> str:
    return ("; TensorRT said: " + " | ".join(logger.errors)) if logger.errors else ""


def build_engine(spec, onnx_path, policy=None, rebuild=False) -> EngineArtifact:
    """Build (or reuse) the engine of ``onnx_path`` under ``policy`` (default: the spec's precision_policy)."""
    trt = load_tensorrt(f"no engine was built from {onnx_path} for {spec.name}")
    policy = policy or spec.cfg["backend_config"]["common_config"]["precision_policy"]
    plan = build_plan(policy, major_version(trt))
    onnx_path = _policy_graph(spec, Path(onnx_path), policy, plan)
    key = engine_key(spec, onnx_path, policy, trt)
    meta = {"spec": str(spec.file), "onnx": str(onnx_path), "policy": policy, "tensorrt": trt.__version__,
            "plan": asdict(plan)}

    def build(tmp: Path):
        with status(f"{spec.name}: building the TensorRT {trt.__version__} engine ({policy}) from {onnx_path.name}"):
            meta.update(_build(trt, spec, onnx_path, policy, plan, tmp))  # written to meta.json after build

    cache = ArtifactCache(spec.artifact_dir() / "cache")
    path, built = cache.get_or_build(f"trt-{policy}", key, "model.engine", build, meta=meta, rebuild=rebuild)
    info = meta if built else json.loads((path.parent / "meta.json").read_text())
    return EngineArtifact(path, key, built, policy, onnx_path, trt.__version__, info)


def engine_key(spec, onnx_path, policy, trt) -> str:
    bcfg = spec.cfg["backend_config"]
    return content_key({
        "onnx": file_digest(onnx_path), "policy": policy,
        "backend_config": {"common_config": bcfg["common_config"], "model_inputs": [asdict(i) for i in spec.inputs]},
        "versions": {"tensorrt": trt.__version__, "plugin": __version__, "exporter": _SOURCE_DIGEST},
        "device": _device_tag(),
    })


def timing_cache_path(spec, trt) -> Path:
    return spec.artifact_dir() / "cache" / "tensorrt" / f"timing-{trt.__version__}.cache"


def graph_precision(onnx_path) -> set:
    """{'fp16', 'qdq'} as far as the graph carries them (float16 tensors/casts, Q/DQ nodes)."""
    import onnx

    model = onnx.load(str(onnx_path), load_external_data=False)
    g = model.graph
    found = set()
    if {"QuantizeLinear", "DequantizeLinear"} & {n.op_type for n in g.node}:
        found.add("qdq")
    f16 = onnx.TensorProto.FLOAT16
    casts = (a.i for n in g.node if n.op_type == "Cast" for a in n.attribute if a.name == "to")
    values = list(g.input) + list(g.output) + list(g.value_info)
    if (any(t.data_type == f16 for t in g.initializer) or f16 in casts
            or any(v.type.tensor_type.elem_type == f16 for v in values)):
        found.add("fp16")
    return found


def _policy_graph(spec, onnx_path: Path, policy, plan) -> Path:
    """The graph carrying the policy: ``onnx_path`` itself (session.py passes the derived one), else derived
    here from it, so ``build_engine(spec, base_onnx, 'int8')`` builds what the onnx backend runs."""
    if plan.needs is None or plan.needs in graph_precision(onnx_path):
        return onnx_path
    from ..data import load_samples
    from .precision import derive

    return derive(spec, onnx_path, policy, load_samples(spec)).path


def _build(trt, spec, onnx_path, policy, plan, out_path) -> dict:
    logger = trt_logger(trt)
    logger.errors.clear()
    builder = trt.Builder(logger)
    network = builder.create_network(_network_flags(trt, plan))
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        raise ArtifactError(parse_error_text(parser, onnx_path, trt.__version__))
    config = builder.create_builder_config()
    workspace = int(spec.cfg["backend_config"]["common_config"]["max_workspace_size"])
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
    for name in plan.set_flags:
        config.set_flag(_builder_flag(trt, name, policy))
    for name in plan.clear_flags:
        config.clear_flag(_builder_flag(trt, name, policy))
    shapes = profile_shapes(spec, network, onnx_path)
    if shapes:
        profile = builder.create_optimization_profile()
        for name, (mn, opt, mx) in shapes.items():
            profile.set_shape(name, mn, opt, mx)
        config.add_optimization_profile(profile)
    cache_file = timing_cache_path(spec, trt)
    reused = _use_timing_cache(config, cache_file)
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ArtifactError(f"{spec.name}: TensorRT {trt.__version__} could not build an engine from {onnx_path} "
                            f"(policy {policy}, workspace {workspace} bytes){logged_errors(logger)}")
    with open(out_path, "wb") as f:
        f.write(serialized)
    _save_timing_cache(config, cache_file)
    return {"profile": {k: [list(s) for s in v] for k, v in shapes.items()}, "workspace": workspace,
            "timing_cache": str(cache_file), "timing_cache_reused": reused}


def _network_flags(trt, plan) -> int:
    if not plan.strongly_typed:
        return 0
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if flag is None:
        if major_version(trt) >= 11:
            return 0  # every 11.x network is strongly typed
        raise ArtifactError(f"TensorRT {trt.__version__} has no STRONGLY_TYPED network flag")
    return 1 << int(flag)


def _builder_flag(trt, name, policy):
    flag = getattr(trt.BuilderFlag, name, None)
    if flag is None:
        raise ArtifactError(f"precision policy {policy!r} needs BuilderFlag.{name}, which TensorRT "
                            f"{trt.__version__} does not have: the policy cannot be expressed with this TensorRT")
    return flag


def parse_error_text(parser, onnx_path, version) -> str:
    lines = []
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        node = _maybe(err, "node")
        where = "graph" if node is None or node < 0 else f"node {node}"
        name, op = _maybe(err, "node_name"), _maybe(err, "node_operator")
        where += (f" '{name}'" if name else "") + (f" ({op})" if op else "")
        lines.append(f"{where}: {err.desc()}")
    return (f"TensorRT {version} cannot parse {onnx_path}:\n  "
            + "\n  ".join(lines or ["(the parser gave no error; run with log level DEBUG)"]))


def _maybe(obj, method):
    fn = getattr(obj, method, None)
    return fn() if callable(fn) else None


def profile_shapes(spec, network, onnx_path) -> dict:
    """name -> (min, opt, max) for every network input with a dynamic dim, from backend_config.model_inputs."""
    declared = {i.name: i for i in spec.inputs}
    key = "backend_config.model_inputs"
    out = {}
    for idx in range(network.num_inputs):
        tensor = network.get_input(idx)
        name, dims = tensor.name, tuple(tensor.shape)
        if all(d >= 0 for d in dims):
            continue
        d = declared.get(name)
        if d is None or not d.declared_shapes():
            raise SpecError(spec.file, key, f"input '{name}' of {onnx_path} has dynamic dims {dims} (-1 = dynamic): "
                            f"TensorRT needs an optimization profile; add dict(name='{name}', min_shape=..., "
                            f"opt_shape=..., max_shape=...)")
        opt = d.opt_shape or d.max_shape or d.min_shape
        mn, mx = d.min_shape or opt, d.max_shape or opt
        for label, shape in (("opt_shape", opt), ("min_shape", mn), ("max_shape", mx)):
            if len(shape) != len(dims) or any(g >= 0 and g != s for g, s in zip(dims, shape)):
                raise SpecError(spec.file, key, f"input '{name}': {label} {shape} does not fit the network's "
                                f"shape {dims} (-1 = dynamic) in {onnx_path}")
        if any(not (a <= b <= c) for a, b, c in zip(mn, opt, mx)):
            raise SpecError(spec.file, key, f"input '{name}': needs min_shape <= opt_shape <= max_shape, "
                            f"got {mn}, {opt}, {mx}")
        out[name] = (tuple(mn), tuple(opt), tuple(mx))
    return out


def _use_timing_cache(config, path: Path) -> bool:
    """Load the timing cache file into ``config`` (a fresh one when absent or unusable); True if reused."""
    data = path.read_bytes() if path.is_file() else b""
    if data:
        try:
            cache = config.create_timing_cache(data)
            if cache is not None and config.set_timing_cache(cache, ignore_mismatch=False):
                return True
        except Exception as exc:  # a corrupted file must not fail the build
            log.warning("TensorRT timing cache %s is unusable (%s); starting a new one", path, exc)
        else:
            log.warning("TensorRT timing cache %s does not match this TensorRT/GPU; starting a new one", path)
    config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
    return False


def _save_timing_cache(config, path: Path):
    cache = config.get_timing_cache()
    if cache is None:
        return
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(cache.serialize())


def _device_tag():
    """The GPU an engine is built for (engines do not move between GPU models)."""
    try:
        import torch

        if torch.cuda.is_available():
            i = torch.cuda.current_device()
            major, minor = torch.cuda.get_device_capability(i)
            return f"{torch.cuda.get_device_name(i)} sm{major}{minor}"
    except Exception:  # no CUDA build, no driver
        pass
    return None
