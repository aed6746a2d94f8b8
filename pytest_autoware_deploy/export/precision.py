"""Precision policies as ONNX-level transforms (TensorRT 11 removed the builder flags for them).

- ``auto``, ``strongly_typed``: the exported graph as is (the backend decides / types are obeyed)
- ``fp32_tf32``: the graph as is; backends allow TF32 math
- ``fp16``: ONNX Runtime's float16 converter (``onnxruntime.transformers.float16``), keeping
  numerically sensitive op types in fp32, plus every node that produces or consumes a tensor whose
  fp32 values leave the fp16 range on calibration data; the converter hands a kept node's output
  to the next node through an fp16 Cast even when that node is kept too, so those fp32->fp16->fp32
  round trips are then removed (a value of 1e5 would otherwise become inf between two fp32 nodes)
- ``int8``: ONNX Runtime static quantization to explicit Q/DQ (per-channel weights, signed and
  symmetric by default since TensorRT needs it), calibrated on the spec's own samples; weights are
  7-bit (``reduce_range``) whenever ONNX Runtime's CPU EP runs the graph (see :func:`int8_settings`)

fp32 islands: ``precision.fp16.node_block_list`` and ``precision.int8.nodes_to_exclude`` name nodes of the
exported graph to keep in fp32 (the converter's ``node_block_list``, the quantizer's ``nodes_to_exclude``);
``verify/islands_state.py`` proposes them when a policy fails. :func:`with_fp32_nodes` is the spec such a
snippet makes, so a searched graph and the one the spec later derives share one cache entry.

Each derived graph is an artifact of its own, cached like the base export under a key that
includes the base graph's digest, the policy settings and the calibration inputs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..custom_ops import session_source
from ..errors import ArtifactError, SpecError
from ..machine import cpu_info
from ..progress import status
# policy meaning (names, tolerances, drop allowances, TF32) lives in policies.py; re-exported for old imports
from ..policies import (DEFAULT_MAX_DROP, DEFAULT_TOLERANCES, GRAPH_UNCHANGED, POLICIES,  # noqa: F401
                        effective_policy, max_drop_for, tolerance_for)
from .cache import ArtifactCache, content_key, file_digest
from .onnx_finish import restamp

# Ops whose fp16 evaluation loses range or precision badly: normalisations, softmax, reductions,
# exponentials and friends. Added to onnxconverter-common's own DEFAULT_OP_BLOCK_LIST.
SENSITIVE_OPS = ("BatchNormalization", "LayerNormalization", "InstanceNormalization", "GroupNormalization",
                 "Softmax", "LogSoftmax", "ReduceMean", "ReduceSum", "ReduceSumSquare", "ReduceProd", "ReduceL1",
                 "ReduceL2", "ReduceLogSum", "ReduceLogSumExp", "Exp", "Log", "Pow", "Sqrt", "Reciprocal", "Erf",
                 "CumSum", "Einsum", "TopK", "NonMaxSuppression", "RoiAlign")
FP16_MAX = 65504.0

_SOURCE_DIGEST = file_digest(__file__)  # a change to these transforms re-derives cached graphs


@dataclass
class PolicyArtifact:
    policy: str
    path: Path
    key: str
    built: bool
    info: dict


def derive(spec, base_onnx: Path, policy: str, samples, rebuild=False) -> PolicyArtifact:
    """The ONNX graph for ``policy``: the base export itself, or a cached fp16/int8 transform of it."""
    if policy not in POLICIES:
        raise SpecError(spec.file, "precision.policies", f"unknown precision policy {policy!r}; expected one of "
                        f"{', '.join(POLICIES)}")
    if policy in GRAPH_UNCHANGED:
        return PolicyArtifact(policy, Path(base_onnx), "base", False, {})
    settings = spec.cfg["precision"][policy]
    _check_fp32_nodes(spec, base_onnx, policy, settings)
    if policy == "int8":
        settings, why = int8_settings(spec)
    calib_idx = _calibration_indices(settings, policy, len(samples))
    key = content_key({"base": file_digest(base_onnx), "policy": policy, "settings": settings,
                       "data": spec.cfg["data"], "info_pkl_digest": _maybe_digest(spec.cfg["runtime_io"]["info_pkl"]),
                       "calibration": calib_idx, "versions": _versions(), "upstream": _upstream(spec),
                       "quantizer_options": INT8_QUANTIZER_OPTIONS if policy == "int8" else None})
    cache = ArtifactCache(spec.artifact_dir() / "cache")
    info: dict = {}

    def build(tmp: Path):
        with status(f"{spec.name}: deriving the {policy} graph from {Path(base_onnx).name}"):
            if policy == "fp16":
                info.update(_to_fp16(spec, base_onnx, tmp, settings, samples, calib_idx))
            else:
                info.update(_to_int8(spec, base_onnx, tmp, settings, samples, calib_idx))
            restamp(tmp, spec.cfg["onnx_config"])  # onnx_config.metadata survives the transform (onnx_finish.py)

    path, built = cache.get_or_build(f"onnx-{policy}", key, "model.onnx", build, meta={"policy": policy},
                                     rebuild=rebuild)
    info_file = path.parent / "policy.json"
    if built:
        info_file.write_text(json.dumps(info, indent=2))
    elif info_file.is_file():
        info = json.loads(info_file.read_text())
    if policy == "int8":  # why these settings: from this run's backends, which the cached graph does not know
        info = {**info, **why}
    return PolicyArtifact(policy, path, key, built, info)


FP32_NODE_KEYS = {"fp16": "node_block_list", "int8": "nodes_to_exclude"}  # policy -> its fp32-island key


def with_fp32_nodes(spec, policy: str, nodes):
    """A copy of ``spec`` whose ``precision.<policy>.<FP32_NODE_KEYS[policy]>`` is ``nodes``: what the spec
    snippet ``precision.fp16.node_block_list=[...]`` makes (same settings, so the same cached graph)."""
    import copy

    clone = copy.copy(spec)
    clone.cfg = {**spec.cfg, "precision": {**spec.cfg["precision"],
                                           policy: {**spec.cfg["precision"][policy],
                                                    FP32_NODE_KEYS[policy]: list(nodes)}}}
    return clone


def _check_fp32_nodes(spec, base_onnx, policy, settings):
    """The fp32-island names are node names of the exported graph: a typo is one SpecError, never an island
    silently not kept. A pipeline stage shares the spec's lists with the other stages and keeps its own names."""
    key = FP32_NODE_KEYS.get(policy)
    names = settings.get(key) if key else None
    if not names:
        return
    dotted = f"precision.{policy}.{key}"
    bad = [n for n in names if not isinstance(n, str) or not n]
    if bad:
        raise SpecError(spec.file, dotted, f"expected a list of ONNX node names (strings), got {bad[0]!r}")
    if spec.cfg.get("stage"):
        return
    import onnx

    present = {n.name for n in onnx.load(str(base_onnx), load_external_data=False).graph.node}
    missing = [n for n in names if n not in present]
    if missing:
        from ..spec.schema import suggest

        raise SpecError(spec.file, dotted, f"{missing[0]!r} is not a node of the exported graph {base_onnx}"
                        f"{suggest(missing[0], sorted(present))}" + (f" ({len(missing)} names missing)"
                                                                    if len(missing) > 1 else ""))


def _upstream(spec):
    """A pipeline stage calibrates on what the stages and host code before it produce: their weights
    (the checkpoint) and the host's code and settings belong in the key, not only this stage's graph."""
    stage = spec.cfg.get("stage")
    if not stage:
        return None
    from .sources import callable_sources  # the host's file and the project code it imports

    return {"checkpoint": _maybe_digest(spec.cfg["model"]["checkpoint"]), "host": stage["host"],
            "host_kwargs": stage["host_kwargs"],
            "host_source": callable_sources(stage["host"], spec, "pipeline.host") if stage["host"] else None}


def _maybe_digest(path):
    return file_digest(path) if path and Path(path).is_file() else None


def _versions():
    import onnx
    import onnxruntime

    return {"onnx": onnx.__version__, "onnxruntime": onnxruntime.__version__, "precision_module": _SOURCE_DIGEST}


def _calibration_indices(settings, policy, n):
    count = settings["calibration_samples"] if policy == "int8" else settings["overflow_samples"]
    return list(range(min(max(count, 1), n)))


def _feeds(samples, indices):
    return [{k: np.asarray(v) for k, v in samples[i]["inputs"].items()} for i in indices]


def node_output_ranges(onnx_path, feeds) -> dict[str, float]:
    """Max |value| of every float node output over ``feeds``, by running a copy that exposes them all."""
    import onnx
    import onnxruntime as ort

    model = onnx.load(str(onnx_path))
    model = onnx.shape_inference.infer_shapes(model)
    known = {vi.name: vi for vi in list(model.graph.value_info) + list(model.graph.output)}
    existing = {o.name for o in model.graph.output}
    for node in model.graph.node:
        for out in node.output:
            vi = known.get(out)
            if vi is not None and vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT and out not in existing:
                model.graph.output.append(vi)
                existing.add(out)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    session = ort.InferenceSession(session_source(model, opts), opts, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    ranges: dict[str, float] = {}
    for feed in feeds:
        for name, value in zip(names, session.run(names, feed)):
            if np.issubdtype(np.asarray(value).dtype, np.floating) and np.size(value):
                ranges[name] = max(ranges.get(name, 0.0), float(np.nanmax(np.abs(value))))
    return ranges


def skip_fp16_round_trips(model) -> int:
    """Rewire ``Cast(to=float) <- Cast(to=float16) <- x`` to read ``x`` directly; drop dead Casts."""
    import onnx

    def cast_to(node):
        return next((a.i for a in node.attribute if a.name == "to"), None)

    producer = {out: n for n in model.graph.node for out in n.output}
    rewired = 0
    for node in model.graph.node:
        if node.op_type == "Cast" and cast_to(node) == onnx.TensorProto.FLOAT:
            src = producer.get(node.input[0])
            if src is not None and src.op_type == "Cast" and cast_to(src) == onnx.TensorProto.FLOAT16:
                node.input[0] = src.input[0]
                rewired += 1
    used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
    dead = [n for n in model.graph.node if n.op_type == "Cast" and not used.intersection(n.output)]
    for n in dead:
        model.graph.node.remove(n)
    return rewired


def drop_duplicate_producers(model) -> int:
    """Remove nodes that repeat an earlier node exactly (same op, inputs, attributes and outputs).

    onnxruntime 1.31's float16 converter (the one in onnxruntime-gpu 1.31.1) inserts the same fp32 Cast once per
    consumer under one output name, which breaks SSA form (TransFusion-L's attention on the H100, 2026-11-25);
    1.32 does not. A repeated name from nodes that differ is left for the checker to report.
    """
    seen, drop = {}, []
    for node in model.graph.node:
        signature = (node.op_type, tuple(node.input), tuple(a.SerializeToString() for a in node.attribute))
        for out in node.output:
            if out in seen and seen[out] == signature:
                drop.append(node)
                break
            seen.setdefault(out, signature)
    for node in drop:
        model.graph.node.remove(node)
    return len(drop)


def _to_fp16(spec, base_onnx, out_path, settings, samples, calib_idx) -> dict:
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    model = onnx.load(str(base_onnx))
    block_ops = sorted(set(DEFAULT_OP_BLOCK_LIST) | set(settings["op_block_list"] or SENSITIVE_OPS))
    block_nodes = []
    if settings["overflow_check"]:
        ranges = node_output_ranges(base_onnx, _feeds(samples, calib_idx))
        hot = {name for name, peak in ranges.items() if peak > FP16_MAX / 2}
        block_nodes = [n.name for n in model.graph.node
                       if n.name and (hot.intersection(n.output) or hot.intersection(n.input))]
    islands = [n for n in settings.get("node_block_list") or [] if n not in block_nodes]
    try:
        converted = convert_float_to_float16(model, keep_io_types=settings["keep_io_types"],
                                             op_block_list=block_ops, node_block_list=block_nodes + islands)
        rewired = skip_fp16_round_trips(converted)
        duplicates = drop_duplicate_producers(converted)
        OnnxModel(converted).topological_sort()  # the converter appends its Casts; parsers want order
        onnx.checker.check_model(converted)
    except Exception as exc:
        raise ArtifactError(f"{spec.name}: fp16 conversion of {base_onnx} failed: {type(exc).__name__}: {exc}") from None
    onnx.save(converted, str(out_path))
    kept = [n.op_type for n in model.graph.node if n.op_type in block_ops]
    return {"converter": "onnxruntime.transformers.float16", "keep_io_types": settings["keep_io_types"],
            "fp16_round_trips_removed": rewired, "duplicate_casts_removed": duplicates,
            "fp32_nodes_for_range": block_nodes, "fp32_nodes_from_spec": islands,
            "fp32_ops_in_graph": sorted(set(kept)),
            "overflow_samples": len(calib_idx) if settings["overflow_check"] else 0}


class _SampleReader:
    """ONNX Runtime CalibrationDataReader over the spec's samples."""

    def __init__(self, feeds):
        self._it = iter(feeds)

    def get_next(self):
        return next(self._it, None)

    def rewind(self):  # some calibrators iterate twice
        pass


# ONNX Runtime's x86 CPU kernels without VNNI/AMX (AVX2, AVX-512 without VNNI) multiply u8 activations by s8
# weights with VPMADDUBSW, which sums each pair of products into a *saturating* int16; s8 activations are
# shifted to u8 first. One pair reaches 2 * 255 * |w|max: 64770 with 8-bit weights (|w| <= 127), 32640 with
# 7-bit ones (|w| <= 64), under the int16 limit 32767. ORT documents the saturation and names reduce_range or
# U8U8 as the cures ("When and why do I need to try U8U8?", onnxruntime.ai quantization docs; quantize_static's
# docstring: "x86/x64 CPU without VNNI ... set reduce_range=True"). VNNI (vpdpbusd), AMX, ARM, the CUDA EP and
# TensorRT accumulate in int32 and never saturate. Symmetric s8 activations are the worst case: after the shift
# every post-ReLU value is >= 128, and the bundled spec's int8 accuracy fell from 0.985 to 0.555 on an AVX2 EPYC.
INT8_PAIR_LIMIT = 2 ** 15 - 1
# Biases stay float: ONNX Runtime's default int32 bias + DequantizeLinear is a graph no TensorRT parses ("input has
# type Int32 but must have type FP8, FP4, Int4, Int8, or UInt8", TensorRT-RTX 1.7); ORT's QLinearConv fusion
# quantizes a float bias itself (same outputs, measured on the MobileNetV2 demo). In the cache key.
INT8_QUANTIZER_OPTIONS = {"QuantizeBias": False}


def int8_targets(spec) -> list[str]:
    """Where this spec runs its int8 graph: each ``<backend>:int8``'s ``int8_target`` (backends/registry.py:
    ``onnxruntime-cpu``/``onnxruntime-cuda`` for onnx by its device, ``tensorrt`` for tensorrt and
    tensorrt_rtx), and ``tensorrt`` for an engine build of the int8 policy."""
    from ..backends import registry

    targets = set()
    for b in spec.backends:
        entry = registry.get(b.base)
        if b.policy == "int8" and entry.int8_target is not None:  # where the backend says its int8 graph runs
            targets.add(entry.int8_target(entry.run_device(b.device or spec.device or "cpu")))
    precision = spec.cfg["precision"]
    policies = precision["policies"] or [spec.cfg["backend_config"]["common_config"]["precision_policy"]]
    if spec.cfg["export"]["mode"] in ("trt", "both") and "int8" in policies:
        targets.add("tensorrt")
    return sorted(targets)


def int8_settings(spec) -> tuple[dict, dict]:
    """The quantizer settings for this spec (``precision.int8`` with ``reduce_range`` resolved) and why.

    One int8 graph serves every backend of the spec (TensorRT builds its engine from it too), so the defaults
    follow the consumers: signed symmetric int8 activations and weights (all TensorRT accepts: zero point 0,
    INT8 only), and 7-bit weights (``reduce_range``) when ONNX Runtime's CPU EP runs the graph, or when no
    backend says where it runs: the same graph then holds on every x86 CPU, with or without VNNI, and gives
    the same numbers on both. Only TensorRT/CUDA consumers get full 8-bit weights. Which CPU this process
    runs on never changes the graph: an artifact built on a VNNI host stays right on an AVX2 host.
    """
    raw = dict(spec.cfg["precision"]["int8"])
    targets = int8_targets(spec)
    key = "precision.int8"
    if raw["weight_type"] == "uint8" and raw["activation_type"] != "uint8":
        raise SpecError(spec.file, f"{key}.weight_type", "uint8 weights need uint8 activations (ONNX Runtime "
                        "has U8U8, U8S8 and S8S8 kernels, no S8U8): set activation_type='uint8' or weight_type='int8'")
    if "tensorrt" in targets:
        for name, bad in (("activation_type", raw["activation_type"] != "int8"),
                          ("weight_type", raw["weight_type"] != "int8"), ("symmetric", not raw["symmetric"])):
            if bad:
                raise SpecError(spec.file, f"{key}.{name}", f"{raw[name]!r}: TensorRT builds int8 engines only "
                                "from signed symmetric Q/DQ (int8, zero point 0), and this spec's int8 graph is "
                                "built by TensorRT too; use activation_type='int8', weight_type='int8', "
                                "symmetric=True, or drop the tensorrt int8 backend/engine")
    if raw["reduce_range"] is None:
        cpu = "onnxruntime-cpu" in targets or not targets
        raw["reduce_range"] = cpu
        reason = ("default: ONNX Runtime's CPU EP runs this graph, 7-bit weights cannot saturate its int16 "
                  "pair sums on x86 CPUs without VNNI" if "onnxruntime-cpu" in targets else
                  "default: no backend declares where the graph runs, 7-bit weights hold on every CPU" if cpu else
                  "default: only TensorRT/CUDA run this graph (int32 accumulation), full 8-bit weights")
    else:
        reason = "set in the spec"
    cpu = cpu_info()  # the CPU of this run (never part of the key): whether ORT's kernels here use VPMADDUBSW
    return raw, {"targets": targets, "reduce_range_reason": reason,
                 "cpu": {"model": cpu["model"], "int8_kernel": cpu["int8_kernel"]}}


def int8_pair_sum_bound(settings) -> int | None:
    """Largest |u8*w + u8*w| ONNX Runtime's non-VNNI x86 kernels (VPMADDUBSW) can meet with these settings;
    None where they do not use that instruction (uint8 weights run the U8U8 kernel, which widens to int16 first)."""
    if settings["weight_type"] == "uint8":
        return None
    return 2 * 255 * (64 if settings["reduce_range"] else 127)


def _to_int8(spec, base_onnx, out_path, settings, samples, calib_idx) -> dict:
    from onnxruntime.quantization import CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    qtype = {"int8": QuantType.QInt8, "uint8": QuantType.QUInt8}
    feeds = _feeds(samples, calib_idx)
    reader = type("SpecCalibrationReader", (_SampleReader, CalibrationDataReader), {})(feeds)
    pre = Path(out_path).with_name(Path(out_path).name + ".pre.onnx")
    try:
        quant_pre_process(str(base_onnx), str(pre), skip_symbolic_shape=True)
        extra = {"ActivationSymmetric": settings["symmetric"], "WeightSymmetric": settings["symmetric"],
                 **INT8_QUANTIZER_OPTIONS}
        quantize_static(str(pre), str(out_path), reader, quant_format=QuantFormat.QDQ,
                        per_channel=settings["per_channel"], reduce_range=settings["reduce_range"],
                        activation_type=qtype[settings["activation_type"]], weight_type=qtype[settings["weight_type"]],
                        op_types_to_quantize=settings["op_types_to_quantize"],
                        nodes_to_exclude=list(settings.get("nodes_to_exclude") or []) or None,
                        calibrate_method=getattr(CalibrationMethod, settings["calibrate_method"]),
                        extra_options=extra)
    except Exception as exc:
        raise ArtifactError(f"{spec.name}: int8 quantization of {base_onnx} failed: "
                            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from None
    finally:
        if pre.exists():
            pre.unlink()
    bound = int8_pair_sum_bound(settings)
    return {"quantizer": "onnxruntime.quantization.quantize_static", "format": "QDQ",
            "calibration_samples": len(calib_idx), "calibrate_method": settings["calibrate_method"],
            "nodes_excluded": list(settings.get("nodes_to_exclude") or []),
            "per_channel": settings["per_channel"], "symmetric": settings["symmetric"],
            "activation_type": settings["activation_type"], "weight_type": settings["weight_type"],
            "reduce_range": settings["reduce_range"], "weight_bits": 7 if settings["reduce_range"] else 8,
            "avx2_pair_sum_bound": bound, "avx2_saturation_free": bound is None or bound <= INT8_PAIR_LIMIT}
