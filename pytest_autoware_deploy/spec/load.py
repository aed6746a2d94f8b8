"""Load a deploy spec file: mmengine Config (with ``_base_``), overrides, validation, path resolution."""

from __future__ import annotations

import ast
from pathlib import Path

from ..errors import SpecError
from ..export.precision import POLICIES
from ..registry import FAMILY_KEYS, families
from ..verify.output_checks import output_checks
from .model import BACKEND_BASES, BackendId, DeploySpec, InputSpec
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


def _load_config(path: Path):
    from mmengine.config import Config

    try:
        return Config.fromfile(str(path))
    except FileNotFoundError as exc:
        raise SpecError(path, None, f"file not found ({exc})") from None
    except Exception as exc:  # syntax errors, bad _base_, errors inside the config code
        raise SpecError(path, None, f"cannot read the spec: {type(exc).__name__}: {exc}") from None


def load_spec(path, cfg_options=None, work_dir=None, device=None, backends=None,
              model_config=None, checkpoint=None) -> DeploySpec:
    """Read ``path`` and return a validated DeploySpec; every problem is one SpecError."""
    path = Path(path).expanduser().resolve()
    if not path.is_file():
        raise SpecError(path, None, "deploy spec file not found")
    cfg = _load_config(path)
    if model_config is not None:
        model_cfg = _load_config(Path(model_config).expanduser().resolve())
        if "model" not in model_cfg:
            raise SpecError(model_config, "model", "model config has no 'model' section")
        cfg.merge_from_dict({"model": model_cfg.to_dict()["model"]})
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    raw = cfg.to_dict()
    raw.pop("_base_", None)
    values = validate(raw, path)
    if checkpoint is not None:
        values["model"]["checkpoint"] = str(Path(checkpoint).expanduser().resolve())
    if device is not None:
        values["export"]["device"] = device
    if work_dir is not None:
        values["export"]["work_dir"] = str(Path(work_dir).expanduser().resolve())
    _apply_family(values, path)
    _resolve_paths(values, path.parent)
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
    )
    _check_consistency(spec)
    output_checks(spec)  # verification.outputs: comparators, decoders and tolerances are valid
    return spec


def parse_backend(text, spec_file) -> BackendId:
    key = "evaluation.models_to_evaluate"
    if not isinstance(text, str) or not text:
        raise SpecError(spec_file, key, f"backend names are strings, got {text!r}")
    head, _, device = text.partition("@")
    base, _, policy = head.partition(":")
    if base not in BACKEND_BASES:
        raise SpecError(spec_file, key, f"unknown backend {text!r}{suggest(base, BACKEND_BASES)}; "
                        f"expected one of {', '.join(BACKEND_BASES)} with an optional '@device' "
                        f"suffix, e.g. 'onnx@cuda:0'")
    if policy and policy not in POLICIES:
        raise SpecError(spec_file, key, f"unknown precision policy {policy!r} in backend {text!r}"
                        f"{suggest(policy, POLICIES)}; expected one of {', '.join(POLICIES)}")
    if policy and base == "pytorch":
        raise SpecError(spec_file, key, f"{text!r}: precision policies apply to exported graphs (onnx, tensorrt), "
                        "not to the pytorch reference")
    return BackendId(base, device or None, None if policy in ("", "auto") else policy)


def expand_policies(backends, values, spec_file):
    """Each exported backend without an explicit policy is tested under every policy in precision.policies."""
    policies = values["precision"]["policies"] or [values["backend_config"]["common_config"]["precision_policy"]]
    for p in policies:
        if p not in POLICIES:
            raise SpecError(spec_file, "precision.policies", f"unknown precision policy {p!r}{suggest(str(p), POLICIES)}; "
                            f"expected one of {', '.join(POLICIES)}")
    out = []
    for b in backends:
        if b.base == "pytorch" or b.policy is not None:
            out.append(b)
        else:
            out += [BackendId(b.base, b.device, None if p == "auto" else p) for p in policies]
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


def _shape(value, spec_file, key):
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(d, int) and d > 0 for d in value):
        raise SpecError(spec_file, key, f"expected a list of positive ints, got {value!r}")
    return tuple(value)


def _input_specs(values, spec_file):
    names = values["onnx_config"]["input_names"]
    declared = {}
    for i, item in enumerate(values["backend_config"]["model_inputs"]):
        key = f"backend_config.model_inputs[{i}]"
        if not isinstance(item, dict):
            raise SpecError(spec_file, key, f"expected a dict(name=..., shape=...), got {item!r}")
        allowed = {"name", "shape", "min_shape", "opt_shape", "max_shape", "dtype"}
        for k in item:
            if k not in allowed:
                raise SpecError(spec_file, f"{key}.{k}", f"unknown key{suggest(k, allowed)}; "
                                f"expected one of {', '.join(sorted(allowed))}")
        name = item.get("name", names[0] if len(names) == 1 else None)
        if name not in names:
            raise SpecError(spec_file, f"{key}.name", f"{name!r} is not one of onnx_config.input_names {names}")
        opt = _shape(item.get("opt_shape", item.get("shape")), spec_file, f"{key}.opt_shape")
        mn = _shape(item.get("min_shape"), spec_file, f"{key}.min_shape")
        mx = _shape(item.get("max_shape"), spec_file, f"{key}.max_shape")
        ranks = {len(s) for s in (opt, mn, mx) if s is not None}
        if len(ranks) > 1:
            raise SpecError(spec_file, key, f"min/opt/max shapes have different ranks: {mn}, {opt}, {mx}")
        if mn and mx and any(a > b for a, b in zip(mn, mx)):
            raise SpecError(spec_file, key, f"min_shape {mn} exceeds max_shape {mx}")
        declared[name] = InputSpec(name, item.get("dtype", "float32"), opt, mn, mx)
    return [declared.get(n, InputSpec(n, "float32", None)) for n in names]


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
    ref = spec.reference
    if ref not in BACKEND_BASES:
        raise SpecError(spec.file, "verification.reference", f"unknown backend {ref!r}{suggest(ref, BACKEND_BASES)}")
    if mode == "none" and any(b.base == "pytorch" for b in spec.backends):
        raise SpecError(spec.file, "evaluation.models_to_evaluate", "export.mode='none' has no PyTorch model: "
                        "evaluate 'onnx'/'tensorrt' only")
    check_pipeline(spec)
    if cfg["evaluation"]["enabled"] and not cfg["evaluation"]["evaluator"]:
        raise SpecError(spec.file, "evaluation.evaluator", "needed when evaluation.enabled: 'classification' "
                        "or 'module.path:Class'")
