"""Generation 2: the ``autoware_ml/deployment`` framework (vividf/AWML ``feat/awml_deployment_framework``,
tier4/AWML PR #114, commit 65e1a8e9), e.g. ``projects/CalibrationStatusClassification/configs/deploy/resnet18_5ch.py``.

The seed README's ``export`` / ``runtime_io`` / ``evaluation`` plus mmdeploy's ``codebase_config`` /
``backend_config`` / ``onnx_config`` spellings (``type``, ``input_shape``, ``model_inputs[].input_shapes``).
``evaluation.models = dict(onnx=PATH, tensorrt=PATH, pytorch=PATH)`` is what the code reads (the README
says ``models_to_evaluate``: both are accepted): its keys are the backends under test; the ONNX path is the
graph evaluated when ``export.mode='none'``, the pytorch path a checkpoint. Policy ``explicit_int8`` is
the plugin's ``int8``.
"""

from __future__ import annotations

from . import mmdeploy
from .base import Walker

GENERATION = "framework_v1"
TITLE = ("autoware_ml/deployment framework (vividf/AWML feat/awml_deployment_framework = tier4/AWML PR #114: "
         "projects/CalibrationStatusClassification/configs/deploy/resnet18_5ch.py)")
TOP_KEYS = {"export", "runtime_io", "evaluation", "codebase_config", "backend_config", "onnx_config",
            "custom_imports"}
BACKEND_ORDER = ("pytorch", "onnx", "tensorrt")


def detect(raw: dict) -> bool:
    if "export" not in raw:
        return False
    ev, oc, bc = raw.get("evaluation") or {}, raw.get("onnx_config") or {}, raw.get("backend_config") or {}
    inputs = bc.get("model_inputs") if isinstance(bc, dict) else None
    return ("codebase_config" in raw or (isinstance(ev, dict) and "models" in ev)
            or (isinstance(oc, dict) and "type" in oc) or (isinstance(bc, dict) and "type" in bc)
            or any(isinstance(i, dict) and "input_shapes" in i for i in inputs or []))


def evaluation_models(w: Walker, models, mode: str, have_checkpoint: bool):
    """``evaluation.models`` -> backends under test (+ the ONNX file for mode 'none', the checkpoint)."""
    if not isinstance(models, dict):
        raise w.error("evaluation.models", f"expected dict(onnx=PATH, tensorrt=PATH, pytorch=PATH), got {models!r}")
    w.check_keys(models, "evaluation.models.", set(BACKEND_ORDER))
    chosen = [b for b in models if models[b]]
    if mode == "none":
        chosen = [b for b in chosen if b != "pytorch"]
    w.put("evaluation.models_to_evaluate", chosen)
    for name in ("onnx", "tensorrt", "pytorch"):
        path = models.get(name)
        if not path:
            continue
        key = f"evaluation.models.{name}"
        if name == "onnx" and mode == "none":
            if not w.has("runtime_io.onnx_file"):
                w.put("runtime_io.onnx_file", path)
            elif w.native["runtime_io"]["onnx_file"] != path:
                raise w.error(key, f"{path!r} differs from runtime_io.onnx_file "
                              f"{w.native['runtime_io']['onnx_file']!r}: one ONNX file is evaluated")
        elif name == "onnx":
            w.unused_key(key, "the ONNX exported in this run is evaluated (export.mode exports one)")
        elif name == "tensorrt":
            w.unused_key(key, "engines are built here from the ONNX graph per precision policy and cached under "
                              "the work dir; an existing engine file is not loaded")
        elif mode == "none":
            w.unused_key(key, "export.mode='none' evaluates the given ONNX only (no PyTorch model)")
        elif have_checkpoint:
            w.unused_key(key, "the checkpoint given on the command line is used")
        else:
            w.put("model.checkpoint", path)


def translate(raw: dict, file, device=None, have_checkpoint=False):
    w = Walker(file, GENERATION)
    native_top = w.top_level(raw, TOP_KEYS)
    export = raw.get("export") or {}
    w.passthrough("export", w.check_keys(export, "export.", set(), "export"))
    runtime = raw.get("runtime_io") or {}
    w.passthrough("runtime_io", w.check_keys(runtime, "runtime_io.", set(), "runtime_io"))
    mode = export.get("mode", "onnx")
    if "codebase_config" in raw:
        mmdeploy.codebase_config(w, raw["codebase_config"])
    chosen = "auto"
    if "backend_config" in raw:
        chosen = mmdeploy.backend_config(w, raw["backend_config"], use_type=False)
    if "onnx_config" in raw:
        mmdeploy.onnx_config(w, raw["onnx_config"])
    if "custom_imports" in raw:
        w.unused_key("custom_imports", "AWML's own modules are not imported")
    ev = raw.get("evaluation") or {}
    rest = w.check_keys(ev, "evaluation.", {"models"}, "evaluation")
    w.passthrough("evaluation", rest)
    if ev.get("models") is not None:
        if "models_to_evaluate" in ev:
            raise w.error("evaluation.models", "give evaluation.models (the code's key) or models_to_evaluate "
                                               "(the README's), not both")
        evaluation_models(w, ev["models"], mode, have_checkpoint)
    elif "models_to_evaluate" not in ev:
        w.put("evaluation.models_to_evaluate", ["onnx"] if mode == "none" else ["pytorch", "onnx"])
    mmdeploy.apply_policy_to_tensorrt(w, chosen, "backend_config.common_config.precision_policy")
    if mode == "trt" and runtime.get("onnx_file"):
        w.unused_key("runtime_io.onnx_file", "export.mode='trt' exports the ONNX here from the checkpoint, so the "
                                             "engine and the verification use the same graph")
    return w.result(TITLE, native_top)
