"""ONNX -> engine with ``tensorrt`` (10, 11) or ``tensorrt_rtx``, one code path, cached like the ONNX export.

Why the policies map differently: TensorRT 11 and TensorRT-RTX have no weak typing (FP16/INT8/BF16
builder flags, INT8 calibrators, precision constraints). There every network is strongly typed and
the precision is what the ONNX graph carries: export/precision.py derives that graph per policy
(fp16 casts, int8 Q/DQ). On 10 the seed's (AWML's) builder flags apply on top of the same graph:

=============== ====================================== ==========================================
policy          TensorRT 10                            TensorRT 11, TensorRT-RTX
=============== ====================================== ==========================================
auto            no flag: TensorRT decides (TF32 on)    strongly typed, TF32 on
fp16            FP16 flag, fp16 graph                  strongly typed fp16 graph
fp32_tf32       TF32 flag (TensorRT's default anyway)  strongly typed, TF32 flag
int8            INT8 flag, Q/DQ graph, no calibrator   strongly typed Q/DQ graph
strongly_typed  strongly typed network, TF32 cleared   strongly typed, TF32 cleared
=============== ====================================== ==========================================

int8 sets no FP16 fallback: unquantized layers stay fp32 as in ONNX Runtime's int8 graph, whose
tolerances the policy uses.

Where the engine is for: TensorRT 10/11 compile for the GPU they build on, so the build runs on the
target device (``device``, made current for the build) and the cache key holds that device's name
and compute capability. TensorRT-RTX compiles ahead of time on the CPU for a set of compute
capabilities (its default set unless ``compute_capabilities`` names some) and JIT-compiles on the
GPU at run time: its key holds that set and no local GPU, so one engine serves every machine.

The key also hashes the ONNX bytes, the policy, backend_config, the module and its version and these
files; TensorRT 10/11 reuse a timing cache across builds (TensorRT-RTX: not, see trt_module.py).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .. import __version__
from ..backends import trt_module
from ..backends.trt_module import ask_runtime, is_rtx, label, load_trt, logged_errors, on_device, trt_logger
from ..errors import ArtifactError, SpecError
from ..policies import POLICIES, tf32_allowed
from ..progress import status
from .cache import ArtifactCache, atomic_path, content_key, file_digest

log = logging.getLogger("pytest_autoware_deploy.tensorrt")
_SOURCE_DIGEST = {"exporter": file_digest(__file__), "trt_module": file_digest(trt_module.__file__)}


@dataclass
class EngineArtifact:
    path: Path          # the serialized engine (``model.engine`` in the cache entry)
    key: str
    built: bool
    policy: str
    onnx: Path          # the graph it was built from (the policy's graph)
    tensorrt: str       # the module's version
    info: dict = field(default_factory=dict)
    module: str = "tensorrt"

    def summary(self) -> dict:
        """What a report records about the engine: size, build seconds (wall and this process's CPU, of the
        build that made it), the compute capabilities it targets and the layers, as far as this machine can tell."""
        keys = ("bytes", "build_s", "build_cpu_s", "compute_capabilities", "device", "network", "engine_layers",
                "profile")
        return {"module": self.module, "version": self.tensorrt, "policy": self.policy, "built": self.built,
                "path": str(self.path), **{k: self.info.get(k) for k in keys}}


@dataclass(frozen=True)
class BuildPlan:
    """How a policy is expressed for one module."""

    strongly_typed: bool
    set_flags: tuple = ()
    clear_flags: tuple = ()
    needs: str | None = None    # what the ONNX graph must carry: 'fp16' or 'qdq'


@dataclass(frozen=True)
class BuildTarget:
    """The hardware an engine is built for: a CUDA device (TensorRT 10/11) or compute capabilities (RTX)."""

    device: str | None                  # the device the build runs on; None for a CPU-only AOT build
    compute_capabilities: tuple = ()    # 'major.minor' targeted (TensorRT 10/11: the device's, when known)
    explicit: bool = False              # RTX: set on the builder config (else its default set)
    device_name: str | None = None

    def key(self) -> dict:
        return {"device_name": self.device_name, "compute_capabilities": list(self.compute_capabilities),
                "explicit": self.explicit}


def build_plan(policy: str, trt) -> BuildPlan:
    if policy not in POLICIES:
        raise ArtifactError(f"unknown precision policy {policy!r} for TensorRT; expected one of {', '.join(POLICIES)}")
    needs = {"fp16": "fp16", "int8": "qdq"}.get(policy)
    tf32 = tf32_allowed(policy)  # what TF32 means per policy: policies.py
    tf32_set, tf32_clear = (("TF32",), ()) if tf32 else ((), ("TF32",)) if tf32 is False else ((), ())
    if not trt_module.weakly_typed(trt):  # weak typing is gone: the graph carries the precision
        return BuildPlan(True, tf32_set, tf32_clear, needs)
    weak = {"fp16": ("FP16",), "int8": ("INT8",)}.get(policy, ())
    return BuildPlan(policy == "strongly_typed", weak + tf32_set, tf32_clear, needs)


def build_target(trt, device=None, compute_capabilities=None) -> BuildTarget:
    """TensorRT 10/11: ``device`` ('cuda:N', default 'cuda:0'), with its name and compute capability when
    torch sees it. TensorRT-RTX: ``compute_capabilities`` (e.g. ['8.6']) or the module's default set."""
    if trt_module.builds_without_gpu(trt):
        if compute_capabilities:
            ccs = [trt_module.parse_capability(c) for c in compute_capabilities]
            trt_module.compute_capability_members(trt, ccs)  # one error for a capability it cannot target
            return BuildTarget(None, tuple(trt_module.capability_text(c) for c in ccs), explicit=True)
        return BuildTarget(None, tuple(trt_module.default_compute_capabilities(trt)))
    if compute_capabilities:
        raise ArtifactError(f"{label(trt)} builds for the GPU it runs on: pass device='cuda:N', not compute "
                            f"capabilities {list(compute_capabilities)}")
    device = str(device) if device and str(device).startswith("cuda") else "cuda:0"
    name, cc = _cuda_device(device)
    return BuildTarget(device, (cc,) if cc else (), device_name=name)


def _cuda_device(device):
    """(name, 'major.minor') of ``device`` as torch sees it, or (None, None) without CUDA."""
    try:
        import torch

        if torch.cuda.is_available():
            dev = torch.device(device)
            index = torch.cuda.current_device() if dev.index is None else dev.index
            major, minor = torch.cuda.get_device_capability(index)
            return torch.cuda.get_device_name(index), f"{major}.{minor}"
    except Exception as exc:  # no CUDA build, no driver, no such index
        log.debug("no CUDA device %s: %s", device, exc)
    return None, None


def build_engine(spec, onnx_path, policy=None, rebuild=False, module="tensorrt", device=None,
                 compute_capabilities=None) -> EngineArtifact:
    """Build (or reuse) the engine of ``onnx_path`` under ``policy`` (default: the spec's precision_policy)
    with ``module`` ('tensorrt' or 'tensorrt_rtx'); ``device`` / ``compute_capabilities``: see build_target."""
    _refuse_custom_ops(onnx_path, spec)
    trt = load_trt(module, f"no engine was built from {onnx_path} for {spec.name}")
    policy = policy or spec.cfg["backend_config"]["common_config"]["precision_policy"]
    plan = build_plan(policy, trt)
    onnx_path = _policy_graph(spec, Path(onnx_path), policy, plan)
    target = build_target(trt, device, compute_capabilities)
    key = engine_key(spec, onnx_path, policy, trt, target)
    meta = {"spec": str(spec.file), "onnx": str(onnx_path), "policy": policy, "module": module,
            "tensorrt": trt.__version__, "plan": asdict(plan), "device": target.device,
            "device_name": target.device_name, "compute_capabilities": list(target.compute_capabilities)}

    def build(tmp: Path):
        with status(f"{spec.name}: building the {label(trt)} engine ({policy}) from {onnx_path.name}"):
            meta.update(_build(trt, spec, onnx_path, policy, plan, target, tmp))  # written to meta.json after build

    cache = ArtifactCache(spec.artifact_dir() / "cache")
    kind = f"{'rtx' if is_rtx(trt) else 'trt'}-{policy}"
    path, built = cache.get_or_build(kind, key, "model.engine", build, meta=meta, rebuild=rebuild)
    info = meta if built else json.loads((path.parent / "meta.json").read_text())
    return EngineArtifact(path, key, built, policy, onnx_path, trt.__version__, info, module)


# domain -> the TensorRT plugin library that implements its ops (loaded by the deployment, not shipped here)
PLUGIN_LIBRARIES = {"autoware": "Autoware's autoware_tensorrt_plugins (libautoware_tensorrt_plugins.so)"}


def _refuse_custom_ops(onnx_path, spec):
    """A graph with custom ops (e.g. AWML's ``autoware::ImplicitGemm``) parses only with the plugin library that
    implements them; none is available here, so no engine is attempted: one BackendUnavailable naming them."""
    import onnx

    from ..custom_ops import custom_ops
    from ..errors import BackendUnavailable

    needed = custom_ops(onnx.load(str(onnx_path), load_external_data=False))
    if needed:
        ops = ", ".join(f"{d}::{o}" for d, os_ in sorted(needed.items()) for o in sorted(os_))
        libs = "; ".join(PLUGIN_LIBRARIES.get(d, f"a plugin library for domain '{d}'") for d in sorted(needed))
        raise BackendUnavailable(f"{spec.name}: {onnx_path} uses custom ops {ops}: a TensorRT engine needs the "
                                 f"plugins of {libs}, which are not available here; no engine was built")


def engine_key(spec, onnx_path, policy, trt, target: BuildTarget) -> str:
    bcfg = spec.cfg["backend_config"]
    return content_key({
        "onnx": file_digest(onnx_path), "policy": policy,
        "backend_config": {"common_config": bcfg["common_config"], "model_inputs": [asdict(i) for i in spec.inputs]},
        "versions": {"module": trt_module.module_name(trt), "tensorrt": trt.__version__, "plugin": __version__,
                     **_SOURCE_DIGEST},
        "target": target.key(),
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


def _build(trt, spec, onnx_path, policy, plan, target: BuildTarget, out_path) -> dict:
    logger = trt_logger(trt)
    logger.errors.clear()
    start, cpu_start = time.perf_counter(), time.process_time()
    with on_device(target.device):  # the build (and the inspection below) on the target device
        builder = trt.Builder(logger)
        network = builder.create_network(_network_flags(trt, plan))
        parser = trt.OnnxParser(network, logger)
        if not parser.parse_from_file(str(onnx_path)):
            raise ArtifactError(parse_error_text(parser, onnx_path, label(trt)))
        config = builder.create_builder_config()
        workspace = int(spec.cfg["backend_config"]["common_config"]["max_workspace_size"])
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, workspace)
        for name in plan.set_flags:
            config.set_flag(_builder_flag(trt, name, policy))
        for name in plan.clear_flags:
            config.clear_flag(_builder_flag(trt, name, policy))
        if target.explicit:
            members = trt_module.compute_capability_members(trt, target.compute_capabilities)
            config.num_compute_capabilities = len(members)
            for i, member in enumerate(members):
                config.set_compute_capability(member, i)
        verbosity = getattr(getattr(trt, "ProfilingVerbosity", None), "DETAILED", None)
        if verbosity is not None:  # layer precisions for the engine inspector
            config.profiling_verbosity = verbosity
        inputs = network_inputs(network)
        shapes = profile_shapes(spec, network, onnx_path)
        if shapes:
            profile = builder.create_optimization_profile()
            for name, (mn, opt, mx) in shapes.items():
                profile.set_shape(name, mn, opt, mx)
            config.add_optimization_profile(profile)
        cache_file = timing_cache_path(spec, trt) if trt_module.uses_timing_cache(trt) else None
        reused = _use_timing_cache(config, cache_file) if cache_file else None
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise ArtifactError(build_error_text(trt, spec, onnx_path, policy, workspace, inputs, shapes, logger))
        build_s, build_cpu_s = time.perf_counter() - start, time.process_time() - cpu_start
        data = bytes(serialized)
        with open(out_path, "wb") as f:
            f.write(data)
        if cache_file:
            _save_timing_cache(config, cache_file)
        summary = network_summary(network)
        layers = engine_layers(trt, data, logger)
    return {"profile": {k: [list(s) for s in v] for k, v in shapes.items()}, "workspace": workspace,
            "timing_cache": str(cache_file) if cache_file else None, "timing_cache_reused": reused,
            "bytes": len(data), "build_s": round(build_s, 3), "build_cpu_s": round(build_cpu_s, 3),
            "network": summary, "engine_layers": layers}


def _network_flags(trt, plan) -> int:
    """TensorRT 10 needs STRONGLY_TYPED to obey the graph's types; on 11 and RTX every network is strongly
    typed (their flag is deprecated or redundant), so none is passed."""
    if not plan.strongly_typed or not trt_module.weakly_typed(trt):
        return 0
    flag = getattr(trt.NetworkDefinitionCreationFlag, "STRONGLY_TYPED", None)
    if flag is None:
        raise ArtifactError(f"{label(trt)} has no STRONGLY_TYPED network flag")
    return 1 << int(flag)


def _builder_flag(trt, name, policy):
    flag = getattr(trt.BuilderFlag, name, None)
    if flag is None:
        raise ArtifactError(f"precision policy {policy!r} needs BuilderFlag.{name}, which {label(trt)} does not "
                            f"have: the policy cannot be expressed with this TensorRT")
    return flag


def parse_error_text(parser, onnx_path, version) -> str:
    """Every parser error with the ONNX node (index, name, op) it names and the parser's message."""
    lines = []
    names = None
    for i in range(parser.num_errors):
        err = parser.get_error(i)
        node = _maybe(err, "node")
        name, op = _maybe(err, "node_name"), _maybe(err, "node_operator")
        if node is not None and node >= 0 and not (name and op):
            names = names if names is not None else _onnx_nodes(onnx_path)
            if node < len(names):
                name, op = name or names[node][0], op or names[node][1]
        where = "graph" if node is None or node < 0 else f"node {node}"
        where += (f" '{name}'" if name else "") + (f" ({op})" if op else "")
        lines.append(f"{where}: {str(err.desc()).strip()}")
    version = version if not str(version)[:1].isdigit() else f"TensorRT {version}"
    return (f"{version} cannot parse {onnx_path}:\n  "
            + "\n  ".join(lines or ["(the parser gave no error; run with log level DEBUG)"]))


def _onnx_nodes(onnx_path):
    import onnx

    try:
        graph = onnx.load(str(onnx_path), load_external_data=False).graph
    except Exception:
        return []
    return [(n.name, n.op_type) for n in graph.node]


def _maybe(obj, method):
    fn = getattr(obj, method, None)
    return fn() if callable(fn) else None


def network_inputs(network) -> dict:
    return {network.get_input(i).name: tuple(network.get_input(i).shape) for i in range(network.num_inputs)}


def build_error_text(trt, spec, onnx_path, policy, workspace, inputs, shapes, logger) -> str:
    """What broke: the module's errors, every input with the profile it was given, and first the inputs the
    errors name (a profile TensorRT could not use, a shape input without values, ...)."""
    errors = list(logger.errors)

    def describe(name):
        dims = inputs[name]
        if name in shapes:
            mn, opt, mx = shapes[name]
            return f"'{name}' {dims}: profile min {mn} opt {opt} max {mx}"
        return f"'{name}' {dims}: fixed shape, no profile entry"

    named = [n for n in inputs if any(re.search(rf"(?<![\w.]){re.escape(n)}(?![\w])", e) for e in errors)]
    text = (f"{spec.name}: {label(trt)} could not build an engine from {onnx_path} (policy {policy}, workspace "
            f"{workspace} bytes)")
    if named:
        text += "; the errors name input " + ", ".join(describe(n) for n in named)
    others = [n for n in inputs if n not in named]
    if others:
        text += "; inputs: " + ", ".join(describe(n) for n in others)
    return text + logged_errors(logger, f"{label(trt).partition(' ')[0]} said")


def profile_shapes(spec, network, onnx_path) -> dict:
    """name -> (min, opt, max) for every network input with a dynamic dim, from backend_config.model_inputs."""
    declared = {i.name: i for i in spec.inputs}
    key = "backend_config.model_inputs"
    if spec.cfg.get("stage"):
        key = f"pipeline.stages[name={spec.cfg['stage']['name']!r}].model_inputs"
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
        for lbl, shape in (("opt_shape", opt), ("min_shape", mn), ("max_shape", mx)):
            if len(shape) != len(dims) or any(g >= 0 and g != s for g, s in zip(dims, shape)):
                raise SpecError(spec.file, key, f"input '{name}': {lbl} {shape} does not fit the network's "
                                f"shape {dims} (-1 = dynamic) in {onnx_path}")
        if any(not (a <= b <= c) for a, b, c in zip(mn, opt, mx)):
            raise SpecError(spec.file, key, f"input '{name}': needs min_shape <= opt_shape <= max_shape, "
                            f"got {mn}, {opt}, {mx}")
        out[name] = (tuple(mn), tuple(opt), tuple(mx))
    return out


def network_summary(network) -> dict:
    """The parsed network's layers and their output types: what the builder shows without a GPU (the
    engine's own layers need a runtime that can load it, see engine_layers)."""
    types = Counter()
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.num_outputs:
            dtype = layer.get_output(0).dtype
            types[getattr(dtype, "name", str(dtype).rpartition(".")[2])] += 1
    return {"layers": network.num_layers, "output_types": dict(sorted(types.items()))}


_PRECISION = re.compile(r"\b(FP32|FP16|BF16|FP8|FP4|INT8|INT4|INT32|INT64|UINT8|BOOL|Float|Half|Int8|Int32|Int64|"
                        r"Bool)\b", re.IGNORECASE)


def engine_layers(trt, data: bytes, logger) -> dict:
    """The engine's layers and output precisions from the engine inspector, where the runtime can load the
    engine here; otherwise why not, in the runtime's words (TensorRT-RTX on a machine without a supported GPU)."""
    runtime = trt.Runtime(logger)
    verdict = ask_runtime(trt, runtime, logger, data, "the engine")
    if verdict is not None and not verdict.ok:
        return {"available": False, "reason": verdict.reason}
    logger.errors.clear()
    try:
        engine = runtime.deserialize_cuda_engine(data)
    except Exception as exc:  # a binding that raises instead of returning None
        engine = None
        logger.errors.append(f"{type(exc).__name__}: {exc}")
    if engine is None:
        return {"available": False, "reason": f"{label(trt)} cannot load the engine here{logged_errors(logger)}"}
    inspector = engine.create_engine_inspector()
    fmt = trt.LayerInformationFormat.JSON
    try:
        info = json.loads(inspector.get_engine_information(fmt))
    except (TypeError, ValueError) as exc:
        return {"available": False, "reason": f"engine inspector: unreadable JSON ({exc})"}
    layers = info.get("Layers", []) if isinstance(info, dict) else []
    precisions = Counter()
    for layer in layers:
        for out in (layer.get("Outputs") or []) if isinstance(layer, dict) else []:
            m = _PRECISION.search(str(out.get("Format/Datatype", "")))
            precisions[m.group(1).upper() if m else "other"] += 1
    return {"available": True, "layers": len(layers) or int(engine.num_layers),
            "output_precisions": dict(sorted(precisions.items()))}


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
