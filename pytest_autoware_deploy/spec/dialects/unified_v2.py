"""Generation 3: the unified v2 deploy config (vividf/AWML ``feat/onnx_runtime_tensorrt_evaluation_develop-centerpoint``,
commit 65fdbffe), e.g. ``projects/CalibrationStatusClassification/deploy/configs/deploy_config.py``.

Top-level ``checkpoint_path``, ``devices`` (aliases), ``task_type``; ``export.onnx_path``; ``runtime_io.info_file``;
``model_io`` (tensor names, batch size, dynamic axes); ``onnx_config.simplify`` (onnxslim, native);
``evaluation.backends.{pytorch,onnx,tensorrt}.{enabled,device,model_dir,engine_dir}`` and
``verification.{enabled,tolerance,num_verify_samples,devices,scenarios}``. The scenarios of the run's
export mode (reference/test backend+device pairs) become the verification tests' parametrization;
``tolerance`` keeps AWML's rule, ``max |diff| < tolerance``.
"""

from __future__ import annotations

from . import mmdeploy
from .base import Walker, backend_with_device, strict_tolerance, tolerance_applies_to_policy

GENERATION = "unified_v2"
TITLE = ("unified v2 deploy config (vividf/AWML feat/onnx_runtime_tensorrt_evaluation_develop-centerpoint @65fdbffe: "
         "projects/*/deploy/configs/deploy_config.py)")
TOP_KEYS = {"codebase_config", "task_type", "checkpoint_path", "devices", "export", "runtime_io", "model_io",
            "onnx_config", "backend_config", "evaluation", "verification", "custom_imports"}
BACKENDS = ("pytorch", "onnx", "tensorrt")
SCENARIO_KEYS = {"ref_backend", "ref_device", "test_backend", "test_device"}
TASK_EVALUATORS = {"classification": "classification", "detection2d": "detection2d", "detection3d": "detection3d"}


def detect(raw: dict) -> bool:
    ev, ver = raw.get("evaluation") or {}, raw.get("verification") or {}
    return (any(k in raw for k in ("checkpoint_path", "model_io", "task_type", "devices"))
            or (isinstance(ev, dict) and "backends" in ev)
            or (isinstance(ver, dict) and ("scenarios" in ver or "tolerance" in ver)))


class Devices:
    """Device aliases (``devices=dict(cpu='cpu', cuda='cuda:0')``); ``override`` (``--device``) puts
    every backend on that one device."""

    def __init__(self, w: Walker, raw, override=None):
        self.aliases = {}
        if raw is not None:
            if not isinstance(raw, dict):
                raise w.error("devices", f"expected dict(cpu='cpu', cuda='cuda:0'), got {raw!r}")
            w.check_keys(raw, "devices.", {"cpu", "cuda"})
            self.aliases = {k: v for k, v in raw.items() if v}
        self.override = override

    def backend(self, name, device):
        return name if self.override else backend_with_device(name, device, self.aliases)


def top_common(w: Walker, raw: dict, have_checkpoint: bool):
    if "codebase_config" in raw:
        mmdeploy.codebase_config(w, raw["codebase_config"])
    if "custom_imports" in raw:
        w.unused_key("custom_imports", "AWML's own modules are not imported")
    if raw.get("checkpoint_path"):
        if have_checkpoint:
            w.unused_key("checkpoint_path", "the checkpoint given on the command line is used")
        else:
            w.put("model.checkpoint", raw["checkpoint_path"])


def export_section(w: Walker, export: dict) -> str:
    w.check_keys(export, "export.", {"mode", "work_dir", "onnx_path"})
    mode = export.get("mode", "both")  # AWML's default
    if mode not in ("onnx", "trt", "both", "none"):
        raise w.error("export.mode", f"{mode!r} is not one of 'onnx', 'trt', 'both', 'none'")
    w.put("export.mode", mode)
    if export.get("work_dir"):
        w.put("export.work_dir", export["work_dir"])
    if export.get("onnx_path") and mode == "none":
        w.put("runtime_io.onnx_file", export["onnx_path"])  # a file, or a directory holding the save_file
    elif export.get("onnx_path"):
        w.unused_key("export.onnx_path", "the ONNX is exported here from the checkpoint (also for mode 'trt', so "
                                         "engine and verification use one graph) and published under export.work_dir")
    return mode


def runtime_section(w: Walker, runtime: dict):
    rest = w.check_keys(runtime, "runtime_io.", {"info_file"}, "runtime_io")
    w.passthrough("runtime_io", rest)
    if runtime.get("info_file"):
        w.put("runtime_io.info_pkl", runtime["info_file"])


def onnx_section(w: Walker, section: dict, mode: str | None = None):
    """``simplify`` is the native ``onnx_config.simplify`` (onnxslim after export, the simplified graph is the one
    verified and deployed); with export.mode='none' no export runs, so the given ONNX stays as it is."""
    extra = {"multi_file": "a multi-stage family always exports one graph per stage (pipeline.stages, each with "
                           "its own file under the work dir); the value only told AWML's evaluator where to look"}
    if section.get("simplify") and mode == "none":
        extra["simplify"] = "export.mode='none': the given ONNX is evaluated as it is (no export to simplify)"
    mmdeploy.onnx_config(w, section, extra)  # a key of ``extra`` is listed as unused, not passed through


def evaluation_section(w: Walker, ev: dict, devices: Devices, mode: str):
    rest = w.check_keys(ev, "evaluation.", {"backends", "models", "devices"}, "evaluation")
    w.passthrough("evaluation", rest)
    if "models" in ev:
        from .framework_v1 import evaluation_models

        evaluation_models(w, ev["models"], mode, have_checkpoint=True)
    if ev.get("devices"):
        w.unused_key("evaluation.devices", "the backends' devices are evaluation.backends.*.device")
    backends = ev.get("backends")
    if backends is None:
        return
    if not isinstance(backends, dict):
        raise w.error("evaluation.backends", f"expected dict(pytorch=dict(enabled, device), ...), got {backends!r}")
    w.check_keys(backends, "evaluation.backends.", set(BACKENDS))
    chosen = []
    for name in BACKENDS:
        body = backends.get(name)
        if body is None:
            continue
        key = f"evaluation.backends.{name}"
        if not isinstance(body, dict):
            raise w.error(key, f"expected dict(enabled=..., device=...), got {body!r}")
        w.check_keys(body, f"{key}.", {"enabled", "device", "model_dir", "engine_dir"})
        if name == "pytorch" and mode == "none":
            if body.get("enabled", False):
                w.unused_key(f"{key}.enabled", "export.mode='none' evaluates the given ONNX only (no PyTorch model)")
            continue
        if body.get("enabled", False):
            chosen.append(devices.backend(name, body.get("device")))
        for k in ("model_dir", "engine_dir"):
            if body.get(k) is None:
                continue
            if k == "model_dir" and mode == "none":
                w.put("runtime_io.onnx_file", body[k])  # a directory: the save_file inside it (see finish)
            else:
                w.unused_key(f"{key}.{k}", "artifacts of this run live in the work dir's cache (engines per policy)")
    w.put("evaluation.models_to_evaluate", chosen)


def verification_section(w: Walker, ver: dict, devices_raw, mode: str, override):
    """-> (reference, backend) pairs of ``scenarios[mode]``."""
    rest = w.check_keys(ver, "verification.", {"enabled", "tolerance", "num_verify_samples", "devices", "scenarios"},
                        "verification")
    w.passthrough("verification", rest)
    if "enabled" in ver:
        w.put("export.verify", bool(ver["enabled"]))
    if "tolerance" in ver:
        strict_tolerance(w, ver["tolerance"], "verification.tolerance")
    if "num_verify_samples" in ver:
        w.put("verification.num_samples", ver["num_verify_samples"])
    devices = Devices(w, ver.get("devices", devices_raw), override) if "devices" in ver else None
    scenarios = ver.get("scenarios")
    pairs = []
    if scenarios is None:
        return pairs
    if not ver.get("enabled", True):
        w.unused_key("verification.scenarios", "verification.enabled=False: no scenario runs")
        return pairs
    if not isinstance(scenarios, dict):
        raise w.error("verification.scenarios", f"expected dict(both=[...], onnx=[...], trt=[...], none=[...]), "
                      f"got {scenarios!r}")
    w.check_keys(scenarios, "verification.scenarios.", {"both", "onnx", "trt", "none"})
    for m, items in scenarios.items():
        key = f"verification.scenarios.{m}"
        if not isinstance(items, (list, tuple)):
            raise w.error(key, f"expected a list of dict(ref_backend, ref_device, test_backend, test_device), "
                          f"got {items!r}")
        for i, s in enumerate(items):
            if not isinstance(s, dict):
                raise w.error(f"{key}[{i}]", f"expected dict(ref_backend, ref_device, test_backend, test_device)")
            w.check_keys(s, f"{key}[{i}].", SCENARIO_KEYS)
            missing = SCENARIO_KEYS - set(s)
            if missing:
                raise w.error(f"{key}[{i}]", f"missing {', '.join(sorted(missing))}")
            for side in ("ref_backend", "test_backend"):
                if s[side] not in BACKENDS:
                    raise w.error(f"{key}[{i}].{side}", f"{s[side]!r} is not one of {', '.join(BACKENDS)}")
            if m == mode:
                dev = devices or Devices(w, devices_raw, override)
                pairs.append((dev.backend(s["ref_backend"], s["ref_device"]),
                              dev.backend(s["test_backend"], s["test_device"])))
        if m != mode and items:
            w.unused_key(key, f"scenarios of export.mode='{m}'; this run's mode is '{mode}'")
    return list(dict.fromkeys(pairs))


def add_pairs(w: Walker, pairs, chosen_policy: str):
    """Scenario backends join the backends under test; tensorrt targets get the TensorRT policy."""
    def pol(b):
        head, at, dev = b.partition("@")
        return (f"tensorrt:{chosen_policy}" if head == "tensorrt" and chosen_policy != "auto" else head) + at + dev

    pairs = [(pol(r), pol(t)) for r, t in pairs]
    models = list(w.native.get("evaluation", {}).get("models_to_evaluate", []))
    for r, t in pairs:
        for b in (r, t):
            if b not in models:
                models.append(b)
    if pairs:
        w.put("evaluation.models_to_evaluate", models)
        w.notes.append("verification: " + "; ".join(f"{t} vs {r}" for r, t in pairs)
                       + " (the export mode's scenarios)")
    return pairs


def model_io_section(w: Walker, mio: dict, have_model_inputs: bool):
    w.check_keys(mio, "model_io.", {"input_name", "input_shape", "input_dtype", "output_name", "batch_size",
                                    "dynamic_axes", "additional_inputs", "additional_outputs"})
    inputs = [mio.get("input_name", "input")]
    for i, extra in enumerate(mio.get("additional_inputs") or []):
        if not isinstance(extra, dict) or "name" not in extra:
            raise w.error(f"model_io.additional_inputs[{i}]", f"expected dict(name=...), got {extra!r}")
        inputs.append(extra["name"])
    outputs = [mio.get("output_name", "output")]
    for i, extra in enumerate(mio.get("additional_outputs") or []):
        if not isinstance(extra, str):
            raise w.error(f"model_io.additional_outputs[{i}]", f"expected an output name, got {extra!r}")
        outputs.append(extra)
    w.put("onnx_config.input_names", inputs)
    w.put("onnx_config.output_names", outputs)
    batch = mio.get("batch_size")
    if batch is not None:
        if not isinstance(batch, int) or batch < 1:
            raise w.error("model_io.batch_size", f"expected None (dynamic) or a positive int, got {batch!r}")
        w.put("onnx_config.dynamic_axes", None)
        if "dynamic_axes" in mio:
            w.unused_key("model_io.dynamic_axes", f"model_io.batch_size={batch} fixes the batch: no dynamic axes")
    elif "dynamic_axes" in mio:
        w.put("onnx_config.dynamic_axes", mio["dynamic_axes"])
    shape = mio.get("input_shape")
    dtype = mio.get("input_dtype", "float32")
    if shape is not None:
        if have_model_inputs:
            w.unused_key("model_io.input_shape", "backend_config.model_inputs declare the shapes (min/opt/max)")
        else:
            if not isinstance(shape, (list, tuple)) or not all(isinstance(d, int) and d > 0 for d in shape):
                raise w.error("model_io.input_shape", f"expected (C, H, W) positive ints, got {shape!r}")
            w.put("backend_config.model_inputs", [dict(name=inputs[0], shape=[batch or 1, *shape], dtype=dtype)])
    elif "input_dtype" in mio and not have_model_inputs:
        w.unused_key("model_io.input_dtype", "the input's dtype is the data's")


def translate(raw: dict, file, device=None, have_checkpoint=False):
    w = Walker(file, GENERATION)
    native_top = w.top_level(raw, TOP_KEYS)
    top_common(w, raw, have_checkpoint)
    if "task_type" in raw:
        w.checks["task_type"] = raw["task_type"]
    devices = Devices(w, raw.get("devices"), device)
    mode = export_section(w, raw.get("export") or {})
    runtime_section(w, raw.get("runtime_io") or {})
    chosen = "auto"
    bc = raw.get("backend_config") or {}
    if bc:
        chosen = mmdeploy.backend_config(w, bc, use_type=False)
    if "model_io" in raw:
        model_io_section(w, raw["model_io"], have_model_inputs=bool(bc.get("model_inputs")))
    if "onnx_config" in raw:
        onnx_section(w, raw["onnx_config"], mode)
    evaluation_section(w, raw.get("evaluation") or {}, devices, mode)
    pairs = verification_section(w, raw.get("verification") or {}, raw.get("devices"), mode, device)
    mmdeploy.apply_policy_to_tensorrt(w, chosen, "backend_config.common_config.precision_policy")
    pairs = add_pairs(w, pairs, chosen)
    tolerance_applies_to_policy(w, chosen)
    pytorch = (raw.get("evaluation") or {}).get("backends", {}).get("pytorch") or {}
    if not device and pytorch.get("device"):
        w.put("export.device", devices.aliases.get(pytorch["device"], pytorch["device"]))
    return w.result(TITLE, native_top, verify_pairs=pairs)
