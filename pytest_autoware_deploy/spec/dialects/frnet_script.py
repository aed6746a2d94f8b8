"""FRNet's own deploy configs (tier4/AWML main ``projects/FRNet/configs/deploy/{nuscenes,t4dataset}/
frnet_tensorrt_dynamic.py``; PR #114 and vividf/AWML ``projects/FRNet/configs/deploy/frnet_tensorrt_dynamic.py``),
read by ``projects/FRNet/deploy/main.py CHECKPOINT --model-cfg ... --deploy-cfg ...``.

``tensorrt_config`` is one TensorRT profile per tensor name (``min_shape``/``opt_shape``/``max_shape``):
inputs become ``backend_config.model_inputs``; a name that is one of ``onnx_config.output_names`` (PR #114 lists
``seg_logit``) is accepted and listed as unused (TensorRT derives output shapes). ``onnx_config`` holds
``torch.onnx.export`` arguments (native keys). The script exports ONNX and builds the engine, so
``export.mode='both'`` with pytorch, onnx and tensorrt under test. The t4dataset file inherits the whole model
config through ``_base_`` (and reads ``num_classes`` from it): the keys the file does not assign itself came
from there and are listed once, under ``_base_``; the model config given on the command line is the one used.
"""

from __future__ import annotations

import ast
from pathlib import Path

from . import mmdeploy
from .base import Walker, profile_entry

GENERATION = "frnet_script"
TITLE = "FRNet deploy script config (tier4/AWML projects/FRNet/configs/deploy/**/frnet_tensorrt_dynamic.py)"
TOP_KEYS = {"tensorrt_config", "onnx_config", "custom_imports", "num_classes"}


def _profiles(section) -> bool:
    return isinstance(section, dict) and bool(section) and all(
        isinstance(v, dict) and "min_shape" in v for v in section.values())


def detect(raw: dict) -> bool:
    return "components" not in raw and "export" not in raw and _profiles(raw.get("tensorrt_config"))


def _base_keys(file) -> set:
    """Top-level keys the file's ``_base_`` files define (a literal ``_base_`` of relative paths)."""
    try:
        tree = ast.parse(Path(file).read_text())
    except (OSError, SyntaxError, ValueError):
        return set()
    bases = []
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == "_base_" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return set()
            bases = [value] if isinstance(value, str) else list(value)
    from ..model_config import read_config

    keys = set()
    for base in bases:
        if isinstance(base, str) and "::" not in base:
            keys |= set(read_config(Path(file).parent / base, "base config"))
    return keys


def translate(raw: dict, file, device=None, have_checkpoint=False):
    w = Walker(file, GENERATION)
    inherited = {k for k in _base_keys(file) & set(raw) if k not in TOP_KEYS and not str(k).startswith("_")}
    native_top = w.top_level(raw, TOP_KEYS | inherited)
    if inherited:
        w.unused_key("_base_", f"the file inherits a model config ({len(inherited)} keys: "
                               f"{', '.join(sorted(inherited)[:6])}{', ...' if len(inherited) > 6 else ''}); the "
                               f"model config given on the command line defines the network and the data")
    oc = raw.get("onnx_config") or {}
    if "onnx_config" in raw:
        mmdeploy.onnx_config(w, raw["onnx_config"])
    outputs = set(oc.get("output_names") or []) if isinstance(oc, dict) else set()
    inputs = []
    for name, prof in raw["tensorrt_config"].items():
        key = f"tensorrt_config.{name}"
        if name in outputs:
            entry = profile_entry(w, name, prof, key)  # still checked: a typo is an error
            w.unused_key(key, f"{entry['name']} is an output: TensorRT derives output shapes from the inputs'")
        else:
            inputs.append(profile_entry(w, name, prof, key))
    w.put("backend_config.model_inputs", inputs)
    w.put("export.mode", "both")
    w.put("evaluation.models_to_evaluate", ["pytorch", "onnx", "tensorrt"])
    if "num_classes" in raw:
        w.unused_key("num_classes", "the model config's decode_head.num_classes sets the classes")
    if "custom_imports" in raw:
        w.unused_key("custom_imports", "AWML's own modules are not imported: the network is built from the model "
                                       "config's type= dicts")
    return w.result(TITLE, native_top)
