"""AWML model configs (OpenMMLab ``type=`` dicts, ``_base_`` chains) -> native spec sections.

``load_model_config`` reads the file with mmengine's ``Config`` without importing ``custom_imports``
(AWML's own modules are never needed to build the network here) and resolves package-scoped bases
(``mmpretrain::_base_/models/resnet18.py``) from the installed package; a missing package is one error
naming it. ``model_sections`` turns the ``model`` dict into ``family`` + ``model.builder`` through the
type registry (``models/mm_registry.py``) and asks the family for what else the config says (loader
settings, class names, the info file of the test split).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

from ..errors import SpecError
from ..models.mm_registry import MMConfigError, MMType, check

BUILD_FROM_CONFIG = "pytest_autoware_deploy.models.mm_registry:build_model"


@dataclass
class ModelConfig:
    file: Path
    cfg: dict          # the whole config, as a plain dict
    model: dict        # cfg["model"]
    entry: MMType      # the registered whole-model type
    family: str


def _module_dir(package: str):
    """Where an installed package's files are (a dist name or an importable module name)."""
    try:
        dist = importlib.metadata.distribution(package)
        top = (dist.read_text("top_level.txt") or "").split() or [package.replace("-", "_")]
        path = Path(str(dist.locate_file(top[0])))
        if path.is_dir():
            return str(path)
    except importlib.metadata.PackageNotFoundError:
        pass
    spec = importlib.util.find_spec(package.replace("-", "_"))
    if spec is None or spec.origin is None:
        return None
    return str(Path(spec.origin).parent)


@contextmanager
def _package_scopes():
    """mmengine resolves ``pkg::path`` through pkg_resources, which recent setuptools no longer ships:
    answer its two questions from importlib.metadata instead."""
    import mmengine.config.config as mm_config

    with mock.patch.object(mm_config, "is_installed", lambda pkg: _module_dir(pkg) is not None), \
            mock.patch.object(mm_config, "get_installed_path", lambda pkg: _module_dir(pkg)):
        yield


def read_config(path: Path, role: str) -> dict:
    """The config file as a dict (``_base_`` merged, ``custom_imports`` not imported)."""
    from mmengine.config import Config

    try:
        with _package_scopes():
            cfg = Config.fromfile(str(path), import_custom_modules=False)
    except FileNotFoundError as exc:
        raise SpecError(path, None, f"{role} file not found ({exc})") from None
    except ModuleNotFoundError as exc:
        match = re.match(r"(\S+) is not installed", str(exc))
        if match:
            pkg = match.group(1)
            raise SpecError(path, "_base_", f"a base config is scoped '{pkg}::...': it comes from the Python "
                            f"package '{pkg}', which is not installed here (pip install {pkg})") from None
        raise SpecError(path, None, f"cannot read the {role}: {type(exc).__name__}: {exc}") from None
    except Exception as exc:  # syntax errors, a bad _base_, errors inside the config code
        raise SpecError(path, None, f"cannot read the {role}: {type(exc).__name__}: {exc}") from None
    out = cfg.to_dict()
    out.pop("_base_", None)
    return out


def load_model_config(path) -> ModelConfig | dict:
    """A ``type=`` model config as a ModelConfig; a native one (``model.builder``) as its raw dict."""
    path = Path(path).expanduser().resolve()
    cfg = read_config(path, "model config")
    model = cfg.get("model")
    if not isinstance(model, dict):
        raise SpecError(path, "model", "model config has no 'model' section")
    if "type" not in model:
        return cfg  # the plugin's own form: model = dict(builder=..., kwargs=...)
    try:
        entry = check(model, "model")
    except MMConfigError as exc:
        raise SpecError(path, exc.key, exc.message) from None
    if entry.family is None:
        raise SpecError(path, "model.type", f"{model['type']!r} is a part, not a whole model")
    return ModelConfig(path, cfg, model, entry, entry.family)


def model_sections(mc: ModelConfig) -> dict:
    """Native sections the model config defines: family, the builder, and the family's own reading."""
    out = {"family": mc.family,
           "model": {"builder": BUILD_FROM_CONFIG, "kwargs": {"config": mc.model, "source": str(mc.file)}}}
    if mc.entry.spec:
        module, _, attr = mc.entry.spec.partition(":")
        fn = getattr(importlib.import_module(module), attr)
        try:
            extra = fn(mc)
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(mc.file, None, f"the {mc.family} family cannot read this model config: "
                            f"{type(exc).__name__}: {exc}") from None
        out = deep_merge(extra, out)
    return out


def deep_merge(base: dict, over: dict) -> dict:
    """``over`` on top of ``base``: dicts merge key by key, anything else is replaced."""
    out = dict(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


# Where a model config's own paths end up in the native spec, and the key AWML's file names them by.
MODEL_CONFIG_PATHS = ((("runtime_io", "info_pkl"), "test_dataloader.dataset.ann_file"),
                      (("data", "kwargs", "ann_file"), "test_dataloader.dataset.ann_file"))


def _at(d, keys):
    for k in keys:
        if not isinstance(d, dict) or k not in d:
            return None
        d = d[k]
    return d


def check_model_config_paths(mc: ModelConfig, sections: dict, merged: dict):
    """An info file the model config names (and the deploy config did not replace) must exist: the error names
    the model config and its key, and says how AWML's relative paths resolve (against the directory the
    command runs from: AWML's tools run from the repository root, ``data_root='data/t4dataset/'``)."""
    for keys, awml_key in MODEL_CONFIG_PATHS:
        path = _at(sections, keys)
        if not path or _at(merged, keys) != path or Path(path).is_file():
            continue
        dataset = (mc.cfg.get("test_dataloader") or {}).get("dataset") or {}
        raise SpecError(mc.file, awml_key, f"the test split's info file {path} does not exist (data_root="
                        f"{dataset.get('data_root')!r}, ann_file={dataset.get('ann_file')!r}). A model config's "
                        f"relative paths resolve against the directory the command runs from, as AWML's tools run "
                        f"from the AWML repository root (here: {Path.cwd()}); run from there, or give the file in "
                        f"the deploy config (runtime_io.info_file / runtime_io.info_pkl, or --cfg-options "
                        f"runtime_io.info_pkl=PATH)")
