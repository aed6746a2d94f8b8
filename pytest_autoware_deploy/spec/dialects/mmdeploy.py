"""Generation 5: legacy mmdeploy-style deploy configs (tier4/AWML main, ``projects/*/configs/deploy/*.py``).

Only ``codebase_config``, ``backend_config`` and ``onnx_config`` (e.g. ``CalibrationStatusClassification/
configs/deploy/resnet18_5ch.py``, ``MobileNetv2/configs/deploy/*``, ``TransFusion/configs/deploy/*``); the
model, checkpoint and data come from the command line and the model config. mmdeploy's ``tools/deploy.py``
exports ONNX and converts it for ``backend_config.type``: ``tensorrt`` is ``export.mode='both'`` here with
pytorch, onnx and tensorrt under test; ``onnxruntime`` is ``'onnx'``. These sections are also how
generation 2 (``autoware_ml/deployment``) spells them, so that dialect reuses the functions below.
"""

from __future__ import annotations

from .base import Translation, Walker, model_inputs_from_input_shapes, policy

GENERATION = "mmdeploy"
TITLE = "legacy mmdeploy deploy config (tier4/AWML main: projects/*/configs/deploy/*.py)"
TOP_KEYS = {"codebase_config", "backend_config", "onnx_config", "custom_imports"}
# Plain variables AWML's BEVFusion camera deploy configs define to compute their model_inputs shapes
# (projects/BEVFusion/configs/deploy/bevfusion_camera_*.py): mmengine keeps them as top-level keys.
HELPER_VARIABLES = {"depth_bins", "feature_dims", "image_dims"}

FAMILY_REASON = "the model family comes from the model config's type= dicts"
MMDEPLOY_COMMON = {"max_workspace_size", "fp16_mode", "int8_mode", "strongly_typed", "precision_policy"}
MMDEPLOY_ONNX_UNUSED = {
    "type": "ONNX is the only intermediate format here",
    "input_shape": "the export example is a real sample (runtime_io.sample_idx) shaped by the model config's "
                   "test pipeline; backend_config.model_inputs declares the shapes to verify",
    "optimize": "mmdeploy's ONNX optimizer passes are not applied; the exported graph is verified as is",
    "verbose": "torch.onnx.export's debug printing",
}


def detect(raw: dict) -> bool:
    if "export" in raw:
        return False
    bc, oc = raw.get("backend_config") or {}, raw.get("onnx_config") or {}
    inputs = bc.get("model_inputs") if isinstance(bc, dict) else None
    return ("codebase_config" in raw or (isinstance(bc, dict) and "type" in bc)
            or (isinstance(oc, dict) and "type" in oc)
            or any(isinstance(i, dict) and "input_shapes" in i for i in inputs or []))


def codebase_config(w: Walker, section):
    w.check_keys(section, "codebase_config.", {"type", "task", "model_type", "post_processing"})
    for k in section:
        w.unused_key(f"codebase_config.{k}", FAMILY_REASON if k != "post_processing" else
                     "score thresholds and NMS are the family's host code (and the evaluator's kwargs)")


def backend_config(w: Walker, section, use_type: bool):
    """``type`` (when ``use_type``) -> export mode and backends; common_config -> policy and workspace;
    ``model_inputs`` -> the native list. Returns the precision policy (applied to tensorrt backends)."""
    rest = w.check_keys(section, "backend_config.", {"type", "common_config", "model_inputs"}, "backend_config")
    w.passthrough("backend_config", rest)
    kind = section.get("type")
    if kind is not None:
        if use_type:
            if kind not in ("tensorrt", "onnxruntime"):
                raise w.error("backend_config.type", f"{kind!r}: expected 'tensorrt' or 'onnxruntime'")
            w.put("export.mode", "both" if kind == "tensorrt" else "onnx")
            w.put("evaluation.models_to_evaluate", ["pytorch", "onnx"] + (["tensorrt"] if kind == "tensorrt" else []))
        else:
            w.unused_key("backend_config.type", "the backends under test come from export.mode and evaluation")
    chosen = "auto"
    common = section.get("common_config")
    if common is not None:
        if not isinstance(common, dict):
            raise w.error("backend_config.common_config", f"expected a dict, got {common!r}")
        w.check_keys(common, "backend_config.common_config.", MMDEPLOY_COMMON)
        if "max_workspace_size" in common:
            w.put("backend_config.common_config.max_workspace_size", common["max_workspace_size"])
        for flag, name in (("fp16_mode", "fp16"), ("int8_mode", "int8"), ("strongly_typed", "strongly_typed")):
            if common.get(flag):
                chosen = name
            elif flag in common:
                w.notes.append(f"backend_config.common_config.{flag}=False: no {name} policy")
        if "precision_policy" in common:
            chosen = policy(w, common["precision_policy"], "backend_config.common_config.precision_policy")
    if "model_inputs" in section:
        w.put("backend_config.model_inputs",
              model_inputs_from_input_shapes(w, section["model_inputs"], "backend_config.model_inputs"))
    return chosen


def onnx_config(w: Walker, section, extra_unused: dict | None = None):
    unused = dict(MMDEPLOY_ONNX_UNUSED, **(extra_unused or {}))
    rest = w.check_keys(section, "onnx_config.", set(unused), "onnx_config")
    w.passthrough("onnx_config", rest)
    for k in section:
        if k in unused and k not in rest:
            if k == "input_shape" and section[k] is None:
                w.unused_key("onnx_config.input_shape", "None: no fixed export shape")
            else:
                w.unused_key(f"onnx_config.{k}", unused[k])


def apply_policy_to_tensorrt(w: Walker, chosen: str, source_key: str):
    """AWML's precision policy is a TensorRT builder setting; ONNX Runtime evaluates the fp32 graph. Here
    the policy becomes each tensorrt backend's (``tensorrt:fp16``), leaving onnx on the exported graph."""
    if chosen == "auto":
        return
    models = w.native.get("evaluation", {}).get("models_to_evaluate")
    if models is None:
        return
    out = []
    for b in models:
        head, at, dev = b.partition("@")
        if head == "tensorrt":
            head = f"tensorrt:{chosen}"
        out.append(head + at + dev)
    w.put("evaluation.models_to_evaluate", out)
    if "tensorrt" in " ".join(models):
        w.notes.append(f"{source_key}={chosen!r} is the TensorRT engines' policy (tensorrt:{chosen}), as in AWML; "
                       f"ONNX Runtime runs the exported fp32 graph")
    else:
        w.put("precision.policies", [chosen])
        w.notes.append(f"{source_key}={chosen!r}: no tensorrt backend under test, so the onnx backend runs the "
                       f"{chosen} graph")


def translate(raw: dict, file, device=None, have_checkpoint=False):
    w = Walker(file, GENERATION)
    native_top = w.top_level(raw, TOP_KEYS | HELPER_VARIABLES)
    for k in sorted(HELPER_VARIABLES & set(raw)):
        w.unused_key(k, "a helper variable of the file: its value already went into backend_config.model_inputs")
    if "codebase_config" in raw:
        codebase_config(w, raw["codebase_config"])
    chosen = "auto"
    if "backend_config" in raw:
        chosen = backend_config(w, raw["backend_config"], use_type=True)
    if "onnx_config" in raw:
        onnx_config(w, raw["onnx_config"])
    if "custom_imports" in raw:
        w.unused_key("custom_imports", "AWML's own modules are not imported: the network is built from the model "
                                       "config's type= dicts")
    apply_policy_to_tensorrt(w, chosen, "backend_config.common_config")
    return w.result(TITLE, native_top)
