"""OpenMMLab ``type=`` model configs -> the bundled families' PyTorch modules, with no mmcv/mmdet/mmdet3d.

AWML's model configs describe a network as nested ``dict(type='Name', **kwargs)`` (``ImageClassifier``
with a ``ResNet`` backbone, ``CenterPoint`` with ``PillarFeatureNet``, ...). Each bundled family registers
the type names it implements in its own folder (``FAMILY["mm_types"]`` names a dict ``type -> MMType``);
``build(cfg)`` calls the type's builder with the config's keys, and a builder builds its children through
``build`` again. Keys that matter only for training (losses, init, frozen stages, ...) are declared per
type and ignored; any other key the builder does not take is an error naming the dotted key, so a typo in
a hyperparameter never builds a different network silently.

Importing this module is cheap (no torch): specs are validated against the builders' signatures.
"""

from __future__ import annotations

import difflib
import importlib
import inspect
from dataclasses import dataclass, field
from functools import lru_cache

# Keys no inference graph depends on, accepted on every type.
COMMON_IGNORED = frozenset({"init_cfg", "train_cfg", "test_cfg", "loss", "loss_cls", "loss_bbox", "loss_obj",
                            "loss_l1", "loss_iou", "loss_heatmap", "frozen_stages", "norm_eval", "with_cp",
                            "pretrained", "data_preprocessor", "_scope_"})


@dataclass(frozen=True)
class MMType:
    """How one ``type`` name is built.

    ``builder``: ``"module:callable"`` taking the config's keys as keyword arguments.
    ``children``: keys whose values are typed sub-configs (validated and built recursively).
    ``ignored``: training-only keys accepted and not used (besides COMMON_IGNORED).
    ``family``: for a whole-model type, the bundled family whose loader/evaluator/host deploy it.
    ``when``: ``((dotted key, value), ...)`` that must hold for this entry (two families share
    ``ImageClassifier`` and differ by ``backbone.type``).
    ``spec``: ``"module:callable"(ModelConfig) -> dict`` of native spec sections (data kwargs, class
    names, the pipeline's voxel settings) read from the rest of the model config.
    """

    builder: str
    children: tuple = ()
    ignored: frozenset = frozenset()
    family: str | None = None
    when: tuple = ()
    spec: str | None = None
    notes: dict = field(default_factory=dict)  # key -> why a non-default value cannot be honoured


class MMConfigError(ValueError):
    """A model config problem at a dotted key; the caller turns it into a SpecError naming the file."""

    def __init__(self, key, message):
        self.key = key
        super().__init__(f"{key}: {message}")
        self.message = message


def type_name(value) -> str:
    """``'mmpretrain.ImageClassifier'`` / ``'mmdet.YOLOX'`` -> the bare registry name."""
    return str(value).rsplit(".", 1)[-1]


@lru_cache(maxsize=None)
def registry() -> dict[str, tuple[MMType, ...]]:
    """Every family's ``mm_types`` dict, merged: type name -> entries (several when ``when`` differs)."""
    from ..registry import families

    out: dict[str, list[MMType]] = {}
    for name, fam in sorted(families().items()):
        ref = fam.get("mm_types")
        if not ref:
            continue
        module, _, attr = ref.partition(":")
        types = getattr(importlib.import_module(module), attr)
        for tname, entry in types.items():
            bucket = out.setdefault(tname, [])
            if entry not in bucket:
                bucket.append(entry)
    return {k: tuple(v) for k, v in out.items()}


def _get(cfg, dotted):
    for part in dotted.split("."):
        if not isinstance(cfg, dict) or part not in cfg:
            return None
        cfg = cfg[part]
    return cfg


def lookup(cfg, key: str) -> MMType:
    """The registered entry for the typed dict ``cfg`` found at ``key`` (``model.backbone``)."""
    if not isinstance(cfg, dict) or "type" not in cfg:
        raise MMConfigError(key, f"expected dict(type=..., ...), got {cfg!r}")
    name = type_name(cfg["type"])
    reg = registry()
    if name not in reg:
        close = difflib.get_close_matches(name, list(reg), n=1, cutoff=0.6)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise MMConfigError(f"{key}.type", f"'{cfg['type']}' is not a type the bundled families implement{hint}; "
                                           f"implemented: {', '.join(sorted(reg))}")
    entries = [e for e in reg[name] if all(type_name(_get(cfg, k)) == v for k, v in e.when)]
    if not entries:
        options = "; ".join(", ".join(f"{k}={v!r}" for k, v in e.when) for e in reg[name])
        raise MMConfigError(key, f"{name} is implemented here only with {options}")
    return entries[0]


def _callable(ref):
    module, _, attr = ref.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def _parameters(entry: MMType):
    fn = _callable(entry.builder)
    params = inspect.signature(fn).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    return fn, {n for n, p in params.items() if p.kind is not inspect.Parameter.VAR_POSITIONAL}, takes_any


def check(cfg, key="model") -> MMType:
    """Validate a typed config against its builder's signature, and its children; returns the entry.
    Unknown keys raise MMConfigError naming the dotted key and the closest accepted one."""
    entry = lookup(cfg, key)
    _, params, takes_any = _parameters(entry)
    accepted = params | entry.ignored | COMMON_IGNORED | {"type"}
    for k, v in cfg.items():
        if k not in accepted and not takes_any:
            close = difflib.get_close_matches(k, sorted(params - {"type"}), n=1, cutoff=0.6)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise MMConfigError(f"{key}.{k}", f"unknown key for {type_name(cfg['type'])}{hint}; it takes "
                                              f"{', '.join(sorted(params))}")
    for child in entry.children:
        if cfg.get(child) is not None:
            check(cfg[child], f"{key}.{child}")
    return entry


def build(cfg, key="model"):
    """Build the module a typed config describes (children through ``build`` again, by the builder)."""
    entry = check(cfg, key)
    fn, params, takes_any = _parameters(entry)
    kwargs = {k: v for k, v in cfg.items() if k != "type" and (k in params or takes_any)}
    try:
        return fn(**kwargs, **({"_key": key} if "_key" in params else {}))
    except MMConfigError:
        raise
    except (TypeError, ValueError, KeyError) as exc:
        raise MMConfigError(key, f"{type_name(cfg['type'])} cannot be built from this config: {exc}") from None


def build_model(config: dict, source: str = ""):
    """The ``model.builder`` of a spec whose model comes from an OpenMMLab model config.

    ``config`` is the model config's ``model`` dict; ``source`` names the file in errors.
    """
    import torch

    from ..errors import SpecError

    torch.manual_seed(0)  # random weights are reproducible when no checkpoint is given
    try:
        model = build(config)
    except MMConfigError as exc:
        raise SpecError(source or "model config", exc.key, exc.message) from None
    return model.eval()
