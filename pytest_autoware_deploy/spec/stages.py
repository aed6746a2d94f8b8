"""Multi-stage pipelines: each stage of ``pipeline.stages`` becomes a spec of its own.

Autoware deploys CenterPoint as two ONNX files with voxelization and the pillar scatter on the
host between them. A stage spec is the parent spec with ``onnx_config`` and
``backend_config.model_inputs`` replaced by the stage's, named ``<spec>/<stage>``: the export
cache, precision policies, runners and comparisons then work on a stage exactly as on a model,
and its artifacts land under the parent's artifact directory.
"""

from __future__ import annotations

import copy
import dataclasses

from ..errors import SpecError
from .inputs import input_specs
from .schema import suggest

STAGE_KEYS = {"name", "module", "input_names", "output_names", "dynamic_axes", "save_file", "model_inputs", "verify"}


def is_pipeline(spec) -> bool:
    return bool(spec.cfg["pipeline"]["stages"])


def check_pipeline(spec):
    """One clear error per malformed stage entry (called when the spec is loaded)."""
    pcfg = spec.cfg["pipeline"]
    if not pcfg["stages"]:
        if pcfg["host"]:
            raise SpecError(spec.file, "pipeline.stages", "pipeline.host is set but no stages are declared")
        return
    if spec.export_mode == "none":
        raise SpecError(spec.file, "export.mode", "'none' (evaluate a given ONNX file) does not apply to a pipeline: "
                        "its stages are exported from the model")
    if not pcfg["host"]:
        raise SpecError(spec.file, "pipeline.host", "a pipeline needs its host code: 'module.path:Class' whose "
                        "run(inputs, call_stage) drives the stages")
    seen = set()
    for i, stage in enumerate(pcfg["stages"]):
        key = f"pipeline.stages[{i}]"
        if not isinstance(stage, dict):
            raise SpecError(spec.file, key, f"expected dict(name=..., module=..., input_names=[...], "
                            f"output_names=[...]), got {stage!r}")
        for k in stage:
            if k not in STAGE_KEYS:
                raise SpecError(spec.file, f"{key}.{k}", f"unknown key{suggest(k, STAGE_KEYS)}; expected one of "
                                f"{', '.join(sorted(STAGE_KEYS))}")
        for k in ("name", "module"):
            if not isinstance(stage.get(k), str) or not stage[k]:
                raise SpecError(spec.file, f"{key}.{k}", f"expected a non-empty string, got {stage.get(k)!r}")
        for k in ("input_names", "output_names"):
            names = stage.get(k)
            if not isinstance(names, (list, tuple)) or not names or not all(isinstance(n, str) for n in names):
                raise SpecError(spec.file, f"{key}.{k}", f"expected a non-empty list of tensor names, got {names!r}")
        verify = stage.get("verify", True)
        if not isinstance(verify, (bool, list)) or (isinstance(verify, list) and not all(isinstance(p, str) for p in verify)):
            raise SpecError(spec.file, f"{key}.verify", f"expected True, False or a list of precision policies under "
                            f"which the stage's tensors are compared element-wise, got {verify!r}")
        if "/" in stage["name"] or stage["name"] in seen:
            raise SpecError(spec.file, f"{key}.name", f"{stage['name']!r}: stage names are unique and contain no '/'")
        seen.add(stage["name"])


def stage_verified_under(stage: dict, policy: str) -> bool:
    """``verify``: True, False, or the policies whose tensors compare element-wise (a top-K inside the graph
    picks other queries under fp16, so its raw outputs only compare by their decoded boxes)."""
    verify = stage.get("verify", True)
    return verify if isinstance(verify, bool) else policy in verify


def stage_names(spec) -> list[str]:
    return [s["name"] for s in spec.cfg["pipeline"]["stages"]]


def stage_spec(spec, name: str):
    """The parent spec seen as one stage: its own names, dynamic axes, save file and shapes."""
    stage = next((s for s in spec.cfg["pipeline"]["stages"] if s["name"] == name), None)
    if stage is None:
        raise SpecError(spec.file, "pipeline.stages", f"no stage {name!r} (stages: {stage_names(spec)})")
    cfg = copy.deepcopy(spec.cfg)
    cfg["onnx_config"].update(input_names=list(stage["input_names"]), output_names=list(stage["output_names"]),
                              dynamic_axes=stage.get("dynamic_axes"),
                              save_file=stage.get("save_file") or f"{spec.name}.{name}.onnx")
    cfg["backend_config"]["model_inputs"] = list(stage.get("model_inputs") or [])
    if "outputs" in cfg["verification"]:  # per-output comparators name the pipeline's final outputs
        cfg["verification"]["outputs"] = {}
    host = spec.cfg["pipeline"]
    cfg["pipeline"] = {"host": None, "kwargs": {}, "stages": []}
    cfg["stage"] = {"name": name, "module": stage["module"], "parent": spec.name,
                    "host": host["host"], "host_kwargs": host["kwargs"]}
    return dataclasses.replace(spec, name=f"{spec.name}/{name}", cfg=cfg, inputs=input_specs(cfg, spec.file))
