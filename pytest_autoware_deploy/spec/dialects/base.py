"""What every dialect shares: the translation result, and a walker that accounts for every key.

A dialect reads one generation of AWML deploy config and writes the native spec dict. Every key it
meets is either mapped (``take``), accepted with the reason it has no meaning here (``unused``: listed
once in the run's summary and the report), passed through because the native spec has it (a user may
add native sections such as ``benchmark`` to an AWML file), or an error naming the file, the dotted key
and the closest key this generation or the native spec knows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from ...errors import SpecError
from ..schema import SCHEMA, suggest


@dataclass(frozen=True)
class Unused:
    key: str
    reason: str


@dataclass
class Translation:
    generation: str                  # seed | framework_v1 | unified_v2 | components | mmdeploy | frnet_script
    title: str                       # where the form comes from (repo, branch/PR, file)
    native: dict
    unused: list = field(default_factory=list)
    notes: list = field(default_factory=list)        # mappings whose meaning shifts (e.g. the tolerance rule)
    paths_base: Path | None = None   # relative paths resolve here (None: the spec file's directory)
    verify_pairs: list = field(default_factory=list)  # (reference, backend) strings from verification scenarios
    log_path: str | None = None      # deploy_log_path: where the run summary is also written
    needs_model_config: bool = True  # AWML generations take the model from a separate model config
    checks: dict = field(default_factory=dict)       # e.g. task_type, checked against the model's family
    components: list = field(default_factory=list)   # per-component stage dicts (generation 4)
    info_under_data_root: bool = False  # runtime_io.info_file is relative to the model config's data_root

    def info(self) -> dict:
        """What the report and the run summary show about the file's generation."""
        out = {"generation": self.generation, "form": self.title,
               "unused": [{"key": u.key, "reason": u.reason} for u in self.unused], "notes": list(self.notes)}
        if self.verify_pairs:
            out["verify_pairs"] = [list(p) for p in self.verify_pairs]
        return out


def native_children(section: str) -> dict:
    field_ = SCHEMA.get(section)
    return dict(field_.children or {}) if field_ is not None else {}


class Walker:
    """Collects the native dict and the unused keys of one file, raising on a key nobody knows."""

    def __init__(self, file, generation: str):
        self.file = file
        self.generation = generation
        self.native: dict = {}
        self.unused: list[Unused] = []
        self.notes: list[str] = []
        self.checks: dict = {}

    # -- accounting -----------------------------------------------------------------------------
    def unused_key(self, key: str, reason: str):
        if all(u.key != key for u in self.unused):
            self.unused.append(Unused(key, reason))

    def error(self, key, message):
        return SpecError(self.file, key, message)

    def check_keys(self, raw: dict, prefix: str, known, native_section: str | None = None) -> dict:
        """Keys of ``raw`` neither in ``known`` nor in the native section are errors; returns the
        native-only keys (passed through)."""
        if not isinstance(raw, dict):
            raise self.error(prefix.rstrip("."), f"expected a dict, got {type(raw).__name__} {raw!r}")
        native = native_children(native_section) if native_section else {}
        passthrough = {}
        for k, v in raw.items():
            if k in known:
                continue
            if k in native:
                passthrough[k] = v
                continue
            candidates = sorted(set(known) | set(native))
            raise self.error(f"{prefix}{k}", f"unknown key{suggest(str(k), candidates)} for a {self.generation} "
                             f"deploy config; expected one of: {', '.join(candidates)}")
        return passthrough

    def top_level(self, raw: dict, known) -> dict:
        """Top-level keys: the generation's (``known``), helper names (``_x``), or native sections (passed
        through, merged over the translation: an explicit native key wins); anything else is an error."""
        known = set(known)
        extra = {k: v for k, v in raw.items() if k not in known and not str(k).startswith("_")}
        for k in extra:
            if k not in SCHEMA:
                candidates = sorted(known | set(SCHEMA))
                raise self.error(k, f"unknown key{suggest(str(k), candidates)} for a {self.generation} deploy "
                                 f"config; expected one of: {', '.join(candidates)}")
        return extra

    def result(self, title: str, native_top: dict, **kw) -> "Translation":
        from ..model_config import deep_merge

        return Translation(self.generation, title, deep_merge(self.native, native_top), self.unused, self.notes,
                           paths_base=kw.pop("paths_base", Path.cwd()), checks=self.checks, **kw)

    def put(self, dotted: str, value):
        """Set a native key (``"verification.atol"``)."""
        node = self.native
        parts = dotted.split(".")
        for p in parts[:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = value

    def has(self, dotted: str) -> bool:
        node = self.native
        for p in dotted.split("."):
            if not isinstance(node, dict) or p not in node:
                return False
            node = node[p]
        return True

    def passthrough(self, section: str, values: dict):
        for k, v in values.items():
            self.put(f"{section}.{k}", v)


# -- shared mappings --------------------------------------------------------------------------------------

POLICY_ALIASES = {"explicit_int8": "int8"}  # autoware_ml/deployment (PR #114) name -> the plugin's


def policy(walker: Walker, value, key: str):
    if not isinstance(value, str):
        raise walker.error(key, f"expected a precision policy name, got {value!r}")
    mapped = POLICY_ALIASES.get(value, value)
    if mapped != value:
        walker.notes.append(f"{key}={value!r} is the plugin's '{mapped}' policy (explicit Q/DQ int8 graph)")
    return mapped


def model_inputs_from_input_shapes(walker: Walker, items, key: str) -> list:
    """mmdeploy / AWML ``model_inputs=[dict(input_shapes=dict(NAME=dict(min_shape, opt_shape, max_shape)))]``
    -> the native ``[dict(name, min_shape, opt_shape, max_shape)]``. TensorRT takes one profile here."""
    if not isinstance(items, (list, tuple)):
        raise walker.error(key, f"expected a list of dict(input_shapes=...), got {items!r}")
    out = []
    for i, item in enumerate(items):
        k = f"{key}[{i}]"
        if not isinstance(item, dict):
            raise walker.error(k, f"expected dict(input_shapes=dict(name=dict(min_shape, opt_shape, max_shape))), "
                               f"got {item!r}")
        if "input_shapes" not in item:  # already the native form: dict(name, shape | min/opt/max)
            out.append(dict(item))
            continue
        walker.check_keys(item, f"{k}.", {"input_shapes"})
        if i > 0:
            walker.unused_key(f"{k}", "TensorRT builds one optimization profile here (the first entry)")
            continue
        shapes = item["input_shapes"]
        if not isinstance(shapes, dict):
            raise walker.error(f"{k}.input_shapes", f"expected dict(name=dict(min_shape, opt_shape, max_shape)), "
                               f"got {shapes!r}")
        for name, prof in shapes.items():
            out.append(profile_entry(walker, name, prof, f"{k}.input_shapes.{name}"))
    return out


def profile_entry(walker: Walker, name, prof, key: str, dtype=None) -> dict:
    if not isinstance(prof, dict):
        raise walker.error(key, f"expected dict(min_shape, opt_shape, max_shape), got {prof!r}")
    walker.check_keys(prof, f"{key}.", {"min_shape", "opt_shape", "max_shape"})
    entry = {"name": name, **{k: list(prof[k]) for k in ("min_shape", "opt_shape", "max_shape") if k in prof}}
    if dtype:
        entry["dtype"] = dtype
    return entry


def strict_tolerance(walker: Walker, tol, key: str):
    """AWML passes a comparison when ``max |diff| < tolerance`` (strictly). The native rule is numpy's
    ``|diff| <= atol + rtol * |ref|``; with rtol 0 and atol the largest double below the tolerance,
    both rules accept exactly the same differences."""
    if not isinstance(tol, (int, float)) or isinstance(tol, bool) or tol <= 0:
        raise walker.error(key, f"expected a positive number, got {tol!r}")
    walker.put("verification.atol", math.nextafter(float(tol), 0.0))
    walker.put("verification.rtol", 0.0)
    walker.notes.append(f"{key}={tol:g}: AWML's rule max |diff| < {tol:g} (absolute, strict) is applied: "
                        f"atol={tol:g} (exclusive), rtol=0")


def backend_with_device(name: str, device, devices: dict) -> str:
    if device in (None, ""):
        return name
    device = devices.get(device, device)
    return f"{name}@{device}"


def tolerance_applies_to_policy(walker: Walker, chosen: str):
    """AWML's one tolerance judges every scenario, the TensorRT engines of its policy included: that policy's
    own default tolerance (e.g. fp16's) must not replace it."""
    if chosen != "auto" and walker.has("verification.atol") and walker.native["verification"].get("rtol") == 0.0:
        walker.put(f"precision.tolerances.{chosen}", {"atol": walker.native["verification"]["atol"], "rtol": 0.0,
                                                      "min_cosine": None})
