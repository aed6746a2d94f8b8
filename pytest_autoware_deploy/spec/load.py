"""Load a deploy spec file: mmengine Config (with ``_base_``), overrides, validation, path resolution."""

from __future__ import annotations

import ast
import copy
from pathlib import Path

from ..backends import registry as backend_registry
from ..errors import SpecError
from ..policies import POLICIES
from ..registry import FAMILY_KEYS, families
from ..verify.output_checks import output_checks
from .dialects import detect, translate
from .inputs import input_specs as _input_specs
from .model import BackendId, DeploySpec
from .model_config import check_model_config_paths, deep_merge, load_model_config, model_sections, read_config
from .schema import suggest, validate
from .stages import check_pipeline

PATH_KEYS = {("export", "work_dir"), ("runtime_io", "info_pkl"), ("runtime_io", "onnx_file"),
             ("model", "checkpoint")}
PATH_KWARG_SUFFIXES = ("_file", "_path", "_dir", "_pkl", "_root")


def parse_cfg_options(items, source="--deploy-cfg-options"):
    """``["a.b=1", "c=[1,2]"]`` -> ``{"a.b": 1, "c": [1, 2]}`` (values parsed as Python literals)."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SpecError(source, item, "expected KEY=VALUE with a dotted KEY, e.g. verification.atol=1e-4")
        try:
            out[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key] = value
    return out


def _load_config(path: Path) -> dict:
    """The deploy config as a dict: ``_base_`` merged, ``custom_imports`` not imported (an AWML deploy config
    may name AWML's own modules; nothing here needs them)."""
    return read_config(path, "spec")


def load_spec(path, cfg_options=None, work_dir=None, device=None, backends=None,
              model_config=None, checkpoint=None) -> DeploySpec:
    """Read ``path`` and return a validated DeploySpec; every problem is one SpecError.

    ``path`` may be any generation of AWML deploy config (``spec/dialects``); ``model_config`` an AWML
    model config (``type=`` dicts: the model, its family and the data settings come from it) or one whose
    ``model`` section is the plugin's own ``builder=`` form (it replaces the spec's)."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise SpecError(path, None, "deploy spec file not found")
    written = _load_config(path)
    dialect = detect(written)  # on the file as written: --cfg-options never change its generation
    model_cfg = load_model_config(model_config) if model_config is not None else None
    raw = copy.deepcopy(written)
    if isinstance(model_cfg, dict):  # the plugin's own model section (builder=...), merged as mmengine merges
        raw["model"] = deep_merge(raw.get("model") or {}, model_cfg["model"])
        model_cfg = None
    if cfg_options:
        raw = _merge_options(raw, cfg_options)
    tr = translate(raw, path, dialect, device=device, have_checkpoint=checkpoint is not None)
    native = tr.native
    if model_cfg is not None:
        native = _with_model_config(native, model_cfg, tr, path)
    elif tr.needs_model_config and not native.get("family") and not (native.get("model") or {}).get("builder"):
        raise SpecError(path, None, f"this is an AWML {tr.generation} deploy config: the network comes from the "
                        "model config; give it (autoware-deploy DEPLOY_CFG MODEL_CFG [CHECKPOINT], or "
                        "--deploy-model-config FILE)")
    values = validate(native, path)
    if checkpoint is not None:
        values["model"]["checkpoint"] = str(Path(checkpoint).expanduser().resolve())
    if device is not None:
        values["export"]["device"] = device
    if work_dir is not None:
        values["export"]["work_dir"] = str(Path(work_dir).expanduser().resolve())
    _apply_family(values, path)
    _resolve_paths(values, tr.paths_base or path.parent)
    _finish_awml(values, tr, path)
    if backends:
        values["evaluation"]["models_to_evaluate"] = list(backends)
    spec = DeploySpec(
        name=values["name"] or path.stem,
        file=path,
        cfg=values,
        work_dir=Path(values["export"]["work_dir"]),
        backends=expand_policies([parse_backend(b, path) for b in values["evaluation"]["models_to_evaluate"]],
                                 values, path),
        device=values["export"]["device"],
        inputs=_input_specs(values, path),
        dialect=None if tr.generation == "seed" and model_cfg is None else _dialect_info(tr, model_cfg),
    )
    if tr.verify_pairs and not backends:
        spec.verify_pairs = _pairs(tr.verify_pairs, spec, values, path)
    _check_consistency(spec)
    output_checks(spec)  # verification.outputs: comparators, decoders and tolerances are valid
    return spec


def _merge_options(raw: dict, options: dict) -> dict:
    from mmengine.config import Config

    cfg = Config(raw)
    cfg.merge_from_dict(options)
    return cfg.to_dict()


def _dialect_info(tr, model_cfg) -> dict:
    info = tr.info()
    if model_cfg is not None:
        info["model_config"] = str(model_cfg.file)
        info["model_type"] = str(model_cfg.model.get("type"))
    if tr.log_path:
        info["log_path"] = tr.log_path
    return info


def _absolute_paths(sections: dict) -> dict:
    """Paths a model config names are AWML's: relative to the directory the tools run from (its root)."""
    def fix(v):
        p = Path(v).expanduser()
        return str(p if p.is_absolute() else (Path.cwd() / p).resolve())

    out = copy.deepcopy(sections)
    if (out.get("runtime_io") or {}).get("info_pkl"):
        out["runtime_io"]["info_pkl"] = fix(out["runtime_io"]["info_pkl"])
    for sec in ("data", "evaluation"):
        kwargs = (out.get(sec) or {}).get("kwargs") or {}
        for k, v in kwargs.items():
            if isinstance(v, str) and k.endswith(PATH_KWARG_SUFFIXES):
                kwargs[k] = fix(v)
    return out


def _with_model_config(native: dict, mc, tr, spec_file) -> dict:
    """The model config's family and builder replace the spec's model; what else it says (data settings,
    tensor names, the test split's info file) is a default under the deploy config's own keys."""
    sections = _absolute_paths(model_sections(mc))
    merged = deep_merge(sections, native)
    merged["family"] = sections["family"]
    merged.setdefault("model", {}).update(builder=sections["model"]["builder"], kwargs=sections["model"]["kwargs"])
    if tr.components:
        stages = list(tr.components)
        expected = [s["name"] for s in (sections.get("pipeline") or {}).get("stages") or []]
        if expected:
            unknown = [s["name"] for s in stages if s["name"] not in expected]
            if unknown:
                raise SpecError(spec_file, f"components.{unknown[0]}", f"the {mc.family} family deploys "
                                f"the components {expected}; {unknown[0]!r} is not one of them")
            merged.setdefault("pipeline", {})["stages"] = stages
        elif len(stages) == 1:
            st = stages[0]
            merged.setdefault("onnx_config", {}).update(input_names=st["input_names"],
                                                       output_names=st["output_names"],
                                                       dynamic_axes=st["dynamic_axes"], save_file=st["save_file"])
            if st.get("model_inputs"):
                merged.setdefault("backend_config", {})["model_inputs"] = st["model_inputs"]
        else:
            raise SpecError(spec_file, "components", f"{len(stages)} components, but the {mc.family} "
                            "family deploys one graph")
    info = (merged.get("runtime_io") or {}).get("info_pkl")
    root = ((sections.get("data") or {}).get("kwargs") or {}).get("data_root")
    if tr.info_under_data_root and info and root and not Path(info).is_absolute():
        merged["runtime_io"]["info_pkl"] = str(Path(root) / info)
    check_model_config_paths(mc, sections, merged)  # a missing info file it names: one error naming it
    return merged


def _finish_awml(values, tr, spec_file):
    """What needs the validated values: the task_type check, an ONNX directory for mode 'none', and the
    info file for loaders that read COCO json (``ann_file``) rather than an info.pkl."""
    task = tr.checks.get("task_type")
    if task is not None:
        from .dialects.unified_v2 import TASK_EVALUATORS

        want = TASK_EVALUATORS.get(task)
        have = values["evaluation"]["evaluator"]
        if want is None or (have and want != have):
            raise SpecError(spec_file, "task_type", f"{task!r} does not match the model: its family "
                            f"{values['family']!r} evaluates as {have!r}")
    onnx = values["runtime_io"]["onnx_file"]
    if onnx and Path(onnx).is_dir():
        values["runtime_io"]["onnx_file"] = str(Path(onnx) / values["onnx_config"]["save_file"])
    info = values["runtime_io"]["info_pkl"]
    loader = values["data"]["loader"]
    if info and loader and "ann_file" not in values["data"]["kwargs"] and tr.generation != "seed":
        import inspect

        from .resolve import resolve_callable

        class _Where:  # resolve_callable wants the spec's file and directory
            file, dir = spec_file, spec_file.parent

        try:
            params = inspect.signature(resolve_callable(loader, _Where, "data.loader")).parameters
        except (TypeError, ValueError):
            params = {}
        if "info_pkl" not in params and "ann_file" in params:
            values["data"]["kwargs"]["ann_file"] = info


def _pairs(pairs, spec, values, spec_file):
    """Scenario (reference, backend) strings -> BackendIds as expanded among the spec's backends."""
    out = []
    for ref, target in pairs:
        r = parse_backend(ref, spec_file)
        for t in expand_policies([parse_backend(target, spec_file)], values, spec_file):
            r_exp = r if r.policy or not backend_registry.get(r.base).policies else BackendId(r.base, r.device, None)
            out.append((r_exp, t))
    return tuple(dict.fromkeys(out))


def parse_backend(text, spec_file) -> BackendId:
    """``name[:policy][@device]`` -> BackendId, the name (or an alias) asked of the backend registry, the
    policy of the ones that backend accepts, the device of the ones it runs on."""
    key = "evaluation.models_to_evaluate"
    if not isinstance(text, str) or not text:
        raise SpecError(spec_file, key, f"backend names are strings, got {text!r}")
    head, _, device = text.partition("@")
    base, _, policy = head.partition(":")
    backend = _registered(base, spec_file, key, text)
    if policy and policy not in POLICIES:
        raise SpecError(spec_file, key, f"unknown precision policy {policy!r} in backend {text!r}"
                        f"{suggest(policy, POLICIES)}; expected one of {', '.join(POLICIES)}")
    if policy and not backend.policies:
        exported = ", ".join(b.name for b in backend_registry.backends().values() if b.policies)
        raise SpecError(spec_file, key, f"{text!r}: precision policies apply to exported graphs ({exported}), "
                        f"not to the {backend.name} reference")
    if policy and policy not in backend.policies:
        raise SpecError(spec_file, key, f"{text!r}: backend {backend.name} does not take policy {policy!r}; it "
                        f"takes {', '.join(backend.policies)}")
    if device:
        problem = backend.device_problem(backend.run_device(device))
        if problem:
            raise SpecError(spec_file, key, f"{text!r}: backend {backend.name} cannot run on {device!r}: {problem}")
    return BackendId(backend.name, device or None, None if policy in ("", "auto") else policy)


def _registered(name, spec_file, key, text=None):
    backend = backend_registry.lookup(name)
    if backend is None:
        known = backend_registry.names()
        raise SpecError(spec_file, key, f"unknown backend {text or name!r}{suggest(name, known)}; expected one of "
                        f"{', '.join(known)} (registered in the entry-point group {backend_registry.BACKEND_GROUP}) "
                        f"with an optional ':policy' and '@device' suffix, e.g. 'onnx:fp16@cuda:0'")
    return backend


def expand_policies(backends, values, spec_file):
    """Each exported backend without an explicit policy is tested under every policy in precision.policies
    that it accepts."""
    policies = values["precision"]["policies"] or [values["backend_config"]["common_config"]["precision_policy"]]
    for p in policies:
        if p not in POLICIES:
            raise SpecError(spec_file, "precision.policies", f"unknown precision policy {p!r}{suggest(str(p), POLICIES)}; "
                            f"expected one of {', '.join(POLICIES)}")
    out = []
    for b in backends:
        accepted = backend_registry.get(b.base).policies
        if not accepted or b.policy is not None:
            out.append(b)
        else:
            out += [BackendId(b.base, b.device, None if p == "auto" else p) for p in policies if p in accepted]
    return list(dict.fromkeys(out))


def _apply_family(values, spec_file):
    name = values["family"]
    if name is None:
        return
    known = families()
    if name not in known:
        raise SpecError(spec_file, "family", f"unknown model family {name!r}{suggest(name, known)}; "
                        f"registered: {', '.join(sorted(known)) or 'none'}")
    for fam_key, (section, key) in FAMILY_KEYS.items():
        if values[section][key] is None and fam_key in known[name]:
            values[section][key] = known[name][fam_key]


def _resolve(base: Path, value):
    p = Path(value).expanduser()
    return str(p if p.is_absolute() else (base / p).resolve())


def _resolve_paths(values, base: Path):
    for section, key in PATH_KEYS:
        if values[section][key]:
            values[section][key] = _resolve(base, values[section][key])
    for section in ("model", "data", "evaluation"):
        kwargs = values[section]["kwargs"]
        for k, v in kwargs.items():
            if isinstance(v, str) and k.endswith(PATH_KWARG_SUFFIXES):
                kwargs[k] = _resolve(base, v)


def _check_consistency(spec):
    cfg = spec.cfg
    mode = spec.export_mode
    if mode == "none":
        if not cfg["runtime_io"]["onnx_file"]:
            raise SpecError(spec.file, "runtime_io.onnx_file", "export.mode='none' (evaluation only) needs "
                            "an existing ONNX file here")
        if not Path(cfg["runtime_io"]["onnx_file"]).is_file():
            raise SpecError(spec.file, "runtime_io.onnx_file", f"ONNX file not found: {cfg['runtime_io']['onnx_file']}")
    else:
        if not cfg["model"]["builder"]:
            raise SpecError(spec.file, "model.builder", "needed to export: 'module.path:callable' returning "
                            "a torch.nn.Module (or set family=...)")
        ckpt = cfg["model"]["checkpoint"]
        if ckpt and not Path(ckpt).is_file():
            raise SpecError(spec.file, "model.checkpoint", f"checkpoint file not found: {ckpt}")
    if not cfg["data"]["loader"]:
        raise SpecError(spec.file, "data.loader", "needed for samples: 'module.path:callable' (or set family=...)")
    info = cfg["runtime_io"]["info_pkl"]
    if info and not Path(info).is_file():
        raise SpecError(spec.file, "runtime_io.info_pkl", f"dataset info file not found: {info}")
    _registered(spec.reference, spec.file, "verification.reference")
    needs_model = [str(b) for b in spec.backends if backend_registry.get(b.base).needs_model]
    if mode == "none" and needs_model:
        exported = ", ".join(f"'{b.name}'" for b in backend_registry.backends().values() if not b.needs_model)
        raise SpecError(spec.file, "evaluation.models_to_evaluate", f"export.mode='none' has no PyTorch model "
                        f"({', '.join(needs_model)} runs it): evaluate {exported} only")
    check_pipeline(spec)
    if cfg["evaluation"]["enabled"] and not cfg["evaluation"]["evaluator"]:
        raise SpecError(spec.file, "evaluation.evaluator", "needed when evaluation.enabled: 'classification' "
                        "or 'module.path:Class'")
