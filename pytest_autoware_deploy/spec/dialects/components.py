"""Generation 4: the ``deployment/`` package (tier4/AWML PR #115, commit f2e5a945), e.g.
``deployment/projects/centerpoint/config/deploy_config.py``.

``components`` names each deployed ONNX (``onnx_file``, ``engine_file``, ``io.inputs/outputs/dynamic_axes``,
``tensorrt_profile`` min/opt/max per input): several components become the stages of a multi-stage
pipeline (CenterPoint's ``pts_voxel_encoder`` and ``pts_backbone_neck_head``), one component the single
graph. ``tensorrt_config`` holds the TensorRT policy and workspace, ``deploy_log_path`` where the run's
summary is also written (relative to ``export.work_dir``), ``runtime_io.info_file`` is relative to the
model config's ``data_root``. Evaluation backends and verification scenarios are as in generation 3.
"""

from __future__ import annotations

from . import unified_v2 as v2
from .base import Walker, policy, profile_entry, tolerance_applies_to_policy

GENERATION = "components"
TITLE = ("deployment/ package (tier4/AWML PR #115 @f2e5a945: deployment/projects/<project>/config/deploy_config.py)")
TOP_KEYS = {"checkpoint_path", "deploy_log_path", "devices", "export", "components", "runtime_io", "onnx_config",
            "tensorrt_config", "evaluation", "verification", "codebase_config", "custom_imports"}
COMPONENT_KEYS = {"onnx_file", "engine_file", "io", "tensorrt_profile"}


def detect(raw: dict) -> bool:
    tc = raw.get("tensorrt_config")
    return "components" in raw or "deploy_log_path" in raw or (
        isinstance(tc, dict) and ("precision_policy" in tc or "max_workspace_size" in tc))


def _names(w, items, key):
    if not isinstance(items, (list, tuple)) or not items:
        raise w.error(key, f"expected a non-empty list of dict(name=..., dtype=...), got {items!r}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not isinstance(item.get("name"), str) or not item["name"]:
            raise w.error(f"{key}[{i}]", f"expected dict(name=..., dtype=...), got {item!r}")
        w.check_keys(item, f"{key}[{i}].", {"name", "dtype"})
        out.append((item["name"], item.get("dtype", "float32")))
    return out


def components_section(w: Walker, comps) -> list:
    """-> stage dicts in the native ``pipeline.stages`` form (load.py puts a single one on the model)."""
    if not isinstance(comps, dict) or not comps:
        raise w.error("components", f"expected dict(<component>=dict(onnx_file, engine_file, io, tensorrt_profile)), "
                      f"got {comps!r}")
    stages = []
    for name, body in comps.items():
        key = f"components.{name}"
        if not isinstance(body, dict):
            raise w.error(key, f"expected dict(onnx_file, engine_file, io, tensorrt_profile), got {body!r}")
        w.check_keys(body, f"{key}.", COMPONENT_KEYS)
        for required in ("onnx_file", "io"):
            if required not in body:
                raise w.error(f"{key}.{required}", "missing (AWML requires it)")
        io = body["io"]
        if not isinstance(io, dict):
            raise w.error(f"{key}.io", f"expected dict(inputs, outputs, dynamic_axes), got {io!r}")
        w.check_keys(io, f"{key}.io.", {"inputs", "outputs", "dynamic_axes"})
        inputs = _names(w, io.get("inputs"), f"{key}.io.inputs")
        outputs = _names(w, io.get("outputs"), f"{key}.io.outputs")
        if any(d != "float32" for _, d in outputs):
            w.unused_key(f"{key}.io.outputs[].dtype", "output dtypes are read from the exported graph")
        stage = dict(name=name, module=name, input_names=[n for n, _ in inputs], output_names=[n for n, _ in outputs],
                     dynamic_axes=io.get("dynamic_axes"), save_file=body["onnx_file"])
        profile = body.get("tensorrt_profile") or {}
        if not isinstance(profile, dict):
            raise w.error(f"{key}.tensorrt_profile", f"expected dict(<input>=dict(min_shape, opt_shape, max_shape)), "
                          f"got {profile!r}")
        dtypes = dict(inputs)
        for inp, prof in profile.items():
            if inp not in dtypes:
                raise w.error(f"{key}.tensorrt_profile.{inp}", f"not one of the component's inputs {list(dtypes)}")
        if profile:
            stage["model_inputs"] = [profile_entry(w, inp, prof, f"{key}.tensorrt_profile.{inp}", dtypes[inp])
                                     for inp, prof in profile.items()]
        if body.get("engine_file"):
            w.unused_key(f"{key}.engine_file", "engines are built per precision policy and cached under the work dir")
        stages.append(stage)
    return stages


def translate(raw: dict, file, device=None, have_checkpoint=False):
    w = Walker(file, GENERATION)
    native_top = w.top_level(raw, TOP_KEYS)
    v2.top_common(w, raw, have_checkpoint)
    devices = v2.Devices(w, raw.get("devices"), device)
    mode = v2.export_section(w, raw.get("export") or {})
    v2.runtime_section(w, raw.get("runtime_io") or {})
    if "onnx_config" in raw:
        v2.onnx_section(w, raw["onnx_config"], mode)
    chosen = "auto"
    tc = raw.get("tensorrt_config")
    if tc is not None:
        w.check_keys(tc, "tensorrt_config.", {"precision_policy", "max_workspace_size"})
        if "precision_policy" in tc:
            chosen = policy(w, tc["precision_policy"], "tensorrt_config.precision_policy")
        if "max_workspace_size" in tc:
            w.put("backend_config.common_config.max_workspace_size", tc["max_workspace_size"])
    stages = components_section(w, raw["components"]) if "components" in raw else []
    v2.evaluation_section(w, raw.get("evaluation") or {}, devices, mode)
    pairs = v2.verification_section(w, raw.get("verification") or {}, raw.get("devices"), mode, device)
    from .mmdeploy import apply_policy_to_tensorrt

    apply_policy_to_tensorrt(w, chosen, "tensorrt_config.precision_policy")
    pairs = v2.add_pairs(w, pairs, chosen)
    tolerance_applies_to_policy(w, chosen)
    pytorch = (raw.get("evaluation") or {}).get("backends", {}).get("pytorch") or {}
    if not device and pytorch.get("device"):
        w.put("export.device", devices.aliases.get(pytorch["device"], pytorch["device"]))
    log = raw.get("deploy_log_path", "deployment.log")  # AWML's default
    log = log.strip() or None if isinstance(log, str) else None
    return w.result(TITLE, native_top, verify_pairs=pairs, components=stages, log_path=log,
                    info_under_data_root=True)
