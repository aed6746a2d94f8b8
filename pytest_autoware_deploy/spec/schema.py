"""The keys a deploy spec may hold, their types and defaults.

The seed's sections (export, runtime_io, onnx_config, backend_config, evaluation) keep their
names and meaning; model, data, verification and benchmark are how a spec names plain
callables and tolerances. One table drives validation, defaults and the README reference.
"""

from __future__ import annotations

import copy
import difflib
from dataclasses import dataclass
from typing import Any

from ..bench.latency import PERCENTILES
from ..errors import SpecError
from ..policies import POLICIES

ANY = object()


@dataclass(frozen=True)
class Field:
    types: tuple
    default: Any = None
    choices: tuple | None = None  # allowed values; for a list-valued key, allowed items
    doc: str = ""
    children: dict | None = None  # nested schema for dict-valued keys


def F(types, default=None, choices=None, doc="", children=None):
    if not isinstance(types, tuple):
        types = (types,)
    return Field(types, default, choices, doc, children)


NUM = (int, float)
# latency_ms keys a gate may compare (bench.latency.latency_stats_ms); std and rounds are not latencies
GATED_LATENCY = ("min", "mean", "median", "max") + tuple(f"p{p}" for p in PERCENTILES)
OPT_STR = (str, type(None))

SCHEMA: dict[str, Field] = {
    "name": F(OPT_STR, None, doc="spec name used in test ids and the report (default: file stem)"),
    "family": F(OPT_STR, None, doc="registered model family supplying default builder/loader/evaluator"),
    "strict": F(bool, False, doc="a backend or artifact asked for that cannot run here (BackendUnavailable: no "
                                 "TensorRT, no CUDA device) fails instead of skipping (--deploy-strict for all)"),
    "export": F(dict, doc="what to export and where", children={
        "mode": F(str, "onnx", ("onnx", "trt", "both", "none"), "'none' = evaluation only of runtime_io.onnx_file"),
        "verify": F(bool, True, doc="run cross-backend verification tests"),
        "device": F(str, "cpu", doc="device for export and inference (cpu, cuda, cuda:N)"),
        "work_dir": F(str, "work_dirs/deployment", doc="artifacts and reports (relative to the spec file)"),
        "fail_on_warnings": F(bool, False, doc="test_export_onnx fails (instead of warning) when the ONNX exporter "
                                               "warned about the model, e.g. a TracerWarning"),
    }),
    "runtime_io": F(dict, doc="dataset and existing artifacts", children={
        "info_pkl": F(OPT_STR, None, doc="AWML info.pkl of the evaluation split"),
        "sample_idx": F(int, 0, doc="sample used as the export example input"),
        "onnx_file": F(OPT_STR, None, doc="existing ONNX to use instead of exporting (export.mode='none')"),
    }),
    "onnx_config": F(dict, doc="torch.onnx.export arguments", children={
        "opset_version": F(int, 17),
        "do_constant_folding": F(bool, True),
        "input_names": F(list, ["input"]),
        "output_names": F(list, ["output"]),
        "save_file": F(str, "model.onnx"),
        "export_params": F(bool, True),
        "dynamic_axes": F((dict, type(None)), None),
        "keep_initializers_as_inputs": F(bool, False),
        "dynamo": F(bool, False, doc="use the torch.export-based exporter instead of TorchScript"),
        "simplify": F(bool, False, doc="simplify the exported graph with onnxslim (AWML's key); the simplified "
                                       "graph is cached, published and verified"),
        "metadata": F(dict, doc="written into the exported graph for Autoware (what AWML's update_onnx_metadata.py "
                                "writes; TensorRT logs the fields in the node's log); see export/onnx_finish.py",
                      children={
            "producer_name": F(OPT_STR, None, doc="AWML writes 'autoware-ml'"),
            "producer_version": F(OPT_STR, None, doc="AWML writes its git tag (or hash)"),
            "domain": F(OPT_STR, None, doc="e.g. '3D object detection'"),
            "model_version": F((int, type(None)), None, doc="ModelProto model_version (non-negative int)"),
            "doc_string": F(OPT_STR, None, doc="free description, e.g. the model's release"),
            "props": F(dict, {}, doc="metadata_props key -> value (str as is, others JSON), e.g. class_names"),
        }),
    }),
    "backend_config": F(dict, doc="backend build settings", children={
        "common_config": F(dict, children={
            "precision_policy": F(str, "auto", POLICIES),
            "max_workspace_size": F(int, 1 << 30),
            "compute_capabilities": F(list, [], doc="TensorRT-RTX: the compute capabilities its engine is compiled "
                                      "for ahead of time, e.g. ['8.6', '12.0'] ([]: the module's default set)"),
        }),
        "model_inputs": F(list, [], doc="dict(name, shape | min_shape/opt_shape/max_shape, dtype)"),
    }),
    "model": F(dict, doc="how to build the PyTorch model", children={
        "builder": F(OPT_STR, None, doc="'module.path:callable' returning a torch.nn.Module"),
        "kwargs": F(dict, {}),
        "checkpoint": F(OPT_STR, None, doc="state_dict file, loaded with weights_only=True"),
        "checkpoint_key": F(OPT_STR, None, doc="key holding the state_dict (default: 'state_dict' if present)"),
    }),
    "data": F(dict, doc="how to load samples", children={
        "loader": F(OPT_STR, None, doc="'module.path:callable' returning an indexable of samples"),
        "kwargs": F(dict, {}),
    }),
    "evaluation": F(dict, doc="accuracy tests", children={
        "enabled": F(bool, True),
        "num_samples": F(int, -1, doc="-1 = all"),
        "verbose": F(bool, False),
        "models_to_evaluate": F(list, ["pytorch", "onnx"], doc="backends under test: 'name[:policy][@device]', "
                                "name a registered backend (backends/registry.py: pytorch, onnx, tensorrt, "
                                "tensorrt_rtx, or a plugin's)"),
        "evaluator": F(OPT_STR, None, doc="'classification' or 'module.path:Class'"),
        "kwargs": F(dict, {}),
        "prefetch": F(int, 2, doc="samples loaded ahead on a thread while the backend runs (0 = inline)"),
        "shard": F(OPT_STR, None, doc="'I/N': evaluate only samples i with i % N == I-1 and store their results "
                   "for `autoware-deploy merge` (--deploy-shard sets it); accuracy thresholds are checked on the merge"),
        "thresholds": F(dict, {}, children={
            "min_accuracy": F((int, float, type(None)), None),
            "max_drop": F((int, float, type(None)), None, doc="max drop of the primary metric vs pytorch"),
        }),
    }),
    "verification": F(dict, doc="cross-backend verification tests", children={
        "num_samples": F(int, 2),
        "atol": F(NUM, 1e-3),
        "rtol": F(NUM, 1e-3),
        "min_cosine": F((int, float, type(None)), None),
        "reference": F(str, "pytorch"),
        "batch_sizes": F(list, [], doc="extra batch sizes to verify when the batch axis is dynamic"),
        "outputs": F(dict, {}, doc="output -> dict(compare='allclose'|'detections2d', decoder, decoder_kwargs, iou, "
                                   "score_atol, box_atol, max_unmatched, min_score, policies); see verify/output_checks.py"),
        "statistic": F((str, int, float), "max", doc="test_agreement's per-sample error statistic of every output: "
                       "'max', 'mean', 'pQ' (e.g. 'p99.9') or a quantile in (0, 1]; see verify/streaming.py"),
        "statistics": F(dict, {}, doc="output -> statistic, replacing `statistic` for that output"),
        "limits": F(dict, {}, doc="policy -> dict(max_failed_rate, min_top1, min_match_rate): how many evaluated "
                                  "samples may disagree (default: none for fp32; fp16 1%, int8 5%)"),
        "localization": F(dict, doc="on a failed agreement/verification, the first diverging ONNX node", children={
            "enabled": F(bool, True),
            "chunk_size": F(int, 32, doc="intermediate tensors exposed per ONNX Runtime run (memory bound)"),
        }),
    }),
    "precision": F(dict, doc="precision policies as ONNX-level transforms, tested per (backend, policy)", children={
        "policies": F(list, [], doc="policies under test (default: [backend_config.common_config.precision_policy])"),
        "fp16": F(dict, {}, children={
            "keep_io_types": F(bool, True, doc="graph inputs/outputs stay float32"),
            "op_block_list": F((list, type(None)), None, doc="op types kept in fp32 (default: sensitive ops)"),
            "overflow_check": F(bool, True, doc="keep nodes whose fp32 outputs exceed the fp16 range on "
                                                "calibration data in fp32"),
            "overflow_samples": F(int, 4),
            "node_block_list": F(list, [], doc="node names kept in fp32 (an fp32 island; what the islands search "
                                               "proposes on a failure)"),
        }),
        "int8": F(dict, {}, children={
            "calibration_samples": F(int, 32),
            "calibrate_method": F(str, "MinMax", ("MinMax", "Entropy", "Percentile", "Distribution")),
            "per_channel": F(bool, True),
            "symmetric": F(bool, True, doc="symmetric activations and weights (what TensorRT requires)"),
            "reduce_range": F((bool, type(None)), None, doc="7-bit weights, so ONNX Runtime's int8 kernels cannot "
                              "saturate on x86 CPUs without VNNI; None: True when an onnx backend runs the int8 "
                              "graph on CPU (or none says where it runs), False when only TensorRT/CUDA run it"),
            "activation_type": F(str, "int8", ("int8", "uint8"), doc="uint8 (asymmetric with symmetric=False) "
                                 "suits ONNX Runtime on CPU only; TensorRT needs int8"),
            "weight_type": F(str, "int8", ("int8", "uint8"), doc="uint8 needs uint8 activations (ORT's U8U8 "
                             "kernel: no saturation, slower; CPU only)"),
            "op_types_to_quantize": F((list, type(None)), None),
            "nodes_to_exclude": F(list, [], doc="node names left unquantized (fp32 islands; onnxruntime "
                                                "quantize_static's nodes_to_exclude)"),
        }),
        "islands": F(dict, {}, doc="on an fp16/int8 failure, search the fewest nodes to keep in fp32", children={
            "enabled": F(bool, True),
            "samples": F(int, 8, doc="samples each trial graph runs (the worst failing ones first)"),
            "max_trials": F(int, 48, doc="trial graphs built at most (bisection, then pruning)"),
        }),
        "tolerances": F(dict, {}, doc="policy -> dict(atol, rtol, min_cosine) replacing verification's"),
        "max_drop": F(dict, {}, doc="policy -> max drop of the primary metric vs pytorch"),
    }),
    "benchmark": F(dict, doc="latency tests", children={
        "warmup": F(int, 5),
        "rounds": F(int, 30),
        "min_time_s": F(NUM, 0.0, doc="time at least this long (more rounds if needed)"),
        "batch_sizes": F(list, [], doc="throughput sweep (default: powers of two within the declared batch range)"),
        "enabled": F(bool, True),
        "cuda_graph": F(bool, False, doc="on CUDA, also time the inference replayed as a captured CUDA graph "
                                         "(ONNX Runtime enable_cuda_graph, torch.cuda.CUDAGraph) beside the plain call"),
    }),
    "pipeline": F(dict, doc="a deployment of several ONNX stages with host code between them", children={
        "host": F(OPT_STR, None, doc="'module:Class'; Class(**kwargs).run(inputs, call_stage) drives the stages"),
        "kwargs": F(dict, {}),
        "stages": F(list, [], doc="dict(name, module, input_names, output_names, dynamic_axes, save_file, "
                                  "model_inputs): each exported, verified and timed on its own"),
    }),
    "gate": F(dict, doc="regression gate against --deploy-baseline", children={
        "max_accuracy_drop": F((int, float, type(None)), None,
                               doc="vs baseline (default: the policy's evaluation max_drop, else 0)"),
        "latency_tolerance_pct": F(NUM, 10.0, doc="point comparison, for a baseline without raw timings: allowed "
                                                   "growth of each gated percentile (--deploy-latency-tolerance "
                                                   "overrides this and latency_min_effect_pct)"),
        "latency_min_delta_ms": F(NUM, 0.0, doc="growth below this many ms is never a breach"),
        "latency_percentiles": F(list, ["median", "p95"], GATED_LATENCY,
                                 doc="which latency_ms keys are gated ([] = latency not gated: a visible skip)"),
        "latency_min_effect_pct": F(NUM, 5.0, doc="statistical gate: regressed only when the confidence interval of "
                                                  "current/baseline lies entirely above +this %, ok only when it "
                                                  "lies at or below twice this; see bench/gate_stats.py and "
                                                  "docs/performance.md"),
        "latency_confidence": F(NUM, 0.99, doc="two-sided confidence of the bootstrap interval, in (0, 1)"),
        "latency_max_extensions": F(int, 5, doc="an inconclusive verdict doubles this run's rounds and decides "
                                                "again, at most this many times"),
        "latency_inconclusive": F(str, "pass", ("pass", "fail"), doc="still inconclusive after the extensions: "
                                  "pass with a LatencyGateWarning, or fail"),
        "latency_confirm": F(bool, True, doc="a first 'regressed' is re-measured on a fresh batch of rounds and "
                                             "decided on it (a burst of other work on a shared machine does not "
                                             "reproduce)"),
    }),
}


def suggest(name, candidates):
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _type_names(types):
    return " or ".join("None" if t is type(None) else t.__name__ for t in types)


def validate(raw: dict, spec_file) -> dict:
    """Check ``raw`` against SCHEMA and return a new dict with every default filled in.

    Top-level names starting with '_' are helper variables of the config file and are ignored.
    """
    return _validate_level(raw, SCHEMA, "", spec_file, top=True)


def _validate_level(raw, schema, prefix, spec_file, top=False):
    out = {}
    for key, value in raw.items():
        if top and key.startswith("_"):
            continue
        dotted = f"{prefix}{key}"
        if key not in schema:
            raise SpecError(spec_file, dotted, f"unknown key{suggest(key, schema)}; "
                            f"expected one of: {', '.join(sorted(schema))}")
        field = schema[key]
        if not isinstance(value, field.types) or (isinstance(value, bool) and bool not in field.types):
            raise SpecError(spec_file, dotted,
                            f"expected {_type_names(field.types)}, got {type(value).__name__} {value!r}")
        if field.choices is not None and isinstance(value, list):
            for i, item in enumerate(value):
                if item not in field.choices:
                    raise SpecError(spec_file, f"{dotted}[{i}]", f"{item!r} is not one of "
                                    f"{', '.join(map(repr, field.choices))}{suggest(str(item), field.choices)}")
        elif field.choices is not None and value not in field.choices:
            raise SpecError(spec_file, dotted, f"{value!r} is not one of {', '.join(map(repr, field.choices))}"
                            f"{suggest(str(value), field.choices)}")
        if field.children is not None:
            value = _validate_level(value, field.children, dotted + ".", spec_file)
        out[key] = value
    for key, field in schema.items():
        if key not in out:
            if field.children is not None:
                out[key] = _validate_level({}, field.children, f"{prefix}{key}.", spec_file)
            else:
                out[key] = _copy_default(field.default)
    return out


def _copy_default(value):
    return copy.deepcopy(value) if isinstance(value, (list, dict)) else value
