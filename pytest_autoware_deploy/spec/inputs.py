"""``backend_config.model_inputs`` -> InputSpec list: the shapes a spec (or one pipeline stage) exports and
verifies at.

Why a module of its own: load.py reads it for a spec and stages.py for each stage of a pipeline; with it in
load.py the two imported each other.
"""

from __future__ import annotations

from ..errors import SpecError
from .model import InputSpec
from .schema import suggest


def _shape(value, spec_file, key):
    if value is None:
        return None
    if not isinstance(value, (list, tuple)) or not all(isinstance(d, int) and d > 0 for d in value):
        raise SpecError(spec_file, key, f"expected a list of positive ints, got {value!r}")
    return tuple(value)


def input_specs(values, spec_file) -> list[InputSpec]:
    """``backend_config.model_inputs`` -> one InputSpec per ``onnx_config.input_names`` entry (undeclared: any
    shape), with one SpecError naming the key for a malformed entry."""
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
