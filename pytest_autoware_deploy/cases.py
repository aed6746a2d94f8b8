"""Test cases: which samples and which input shapes each backend is checked at, which engines are built.

Every shape a spec declares dynamic is verified, because an axis baked in at export is a
classic deployment bug: ``backend_config.model_inputs`` min/opt/max shapes when given, otherwise
batch sizes (``verification.batch_sizes``, default 1 and 2 when the batch axis is dynamic).
"""

from __future__ import annotations

from dataclasses import dataclass

from .backends import registry
from .spec.model import BackendId


@dataclass(frozen=True)
class ShapeCase:
    id: str
    batch: int | None = None             # stack samples to this batch, other dims as the data has them
    shapes: tuple | None = None          # ((input name, full shape), ...) as declared

    def resolve(self, spec, sample_inputs) -> dict:
        out = {n: (self.batch or sample_inputs[n].shape[0],) + tuple(sample_inputs[n].shape[1:])
               for n in spec.input_names}
        out.update({name: tuple(shape) for name, shape in self.shapes or ()})
        return out


def _batch_dynamic(spec) -> bool:
    axes = spec.cfg["onnx_config"]["dynamic_axes"] or {}
    return any(0 in (v if isinstance(v, (dict, list)) else []) for k, v in axes.items()
               if k in spec.input_names)


def shape_cases(spec) -> list[ShapeCase]:
    declared = [i for i in spec.inputs if i.declared_shapes()]
    if declared:
        cases = []
        for level in ("min_shape", "opt_shape", "max_shape"):
            shapes = tuple((i.name, getattr(i, level)) for i in declared if getattr(i, level) is not None)
            if shapes and all(shapes != c.shapes for c in cases):
                cases.append(ShapeCase(_shape_id(shapes), shapes=shapes))
        off = off_opt_shapes(declared)  # one step away from opt: where engines tuned for opt go wrong (issue 13)
        if off and all(off != c.shapes for c in cases):
            cases.append(ShapeCase(_shape_id(off), shapes=off))
        return cases  # inputs without declared shapes keep the data's own shape
    batches = spec.cfg["verification"]["batch_sizes"] or ([1, 2] if _batch_dynamic(spec) else [])
    if not batches:
        return [ShapeCase("native")]
    return [ShapeCase(f"b{b}", batch=int(b)) for b in dict.fromkeys(batches)]


def off_opt_shapes(declared) -> tuple | None:
    """Each input's opt shape one step along its first dynamic axis (the batch axis when it is dynamic): +1 on
    axis 0, else the gcd of min/opt/max (a stride-bound image side stays valid); upwards when max allows, else
    downwards. None when no input has a min..max range."""
    import math

    shapes, moved = [], False
    for i in declared:
        shape = list(i.opt_shape) if i.opt_shape is not None else None
        if shape is not None and i.min_shape and i.max_shape:
            axes = [a for a in range(len(shape)) if i.min_shape[a] < i.max_shape[a]]
            if axes:
                a = axes[0]
                step = 1 if a == 0 else math.gcd(math.gcd(i.min_shape[a], shape[a]), i.max_shape[a]) or 1
                shape[a] += step if shape[a] + step <= i.max_shape[a] else -step
                moved = True
        if shape is not None:
            shapes.append((i.name, tuple(shape)))
    return tuple(shapes) if moved else None


def _shape_id(shapes):
    return "+".join("x".join(str(d) for d in shape) for _, shape in shapes)


def sample_indices(spec) -> list[int]:
    return list(range(max(1, spec.cfg["verification"]["num_samples"])))


def throughput_batches(spec) -> list[int]:
    """Batch sizes of the throughput sweep: ``benchmark.batch_sizes``; else the powers of two and
    both ends of the declared min..max batch; else the verified batch sizes; else 1."""
    explicit = spec.cfg["benchmark"]["batch_sizes"]
    if explicit:
        return sorted({int(b) for b in explicit})
    declared = [i for i in spec.inputs if i.min_shape and i.max_shape]
    if declared:
        lo = max(i.min_shape[0] for i in declared)
        hi = min(i.max_shape[0] for i in declared)
        return sorted({lo, hi} | {2 ** k for k in range(16) if lo <= 2 ** k <= hi})
    return sorted({c.batch for c in shape_cases(spec) if c.batch}) or [1]


def spec_policies(spec) -> list[str]:
    """The precision policies the spec lists (``precision.policies``, else its ``precision_policy``)."""
    return list(spec.cfg["precision"]["policies"] or [spec.cfg["backend_config"]["common_config"]["precision_policy"]])


def engine_backends(spec) -> list[BackendId]:
    """The artifacts (engines) test_export_tensorrt builds: one per backend under test that has one (as
    written, policy and device included); with ``export.mode`` 'trt'/'both' and none such under test, one per
    registered backend with an artifact and per listed policy it accepts. Empty: no engine test."""
    listed = [b for b in spec.backends if registry.get(b.base).has_artifact]
    if listed or spec.export_mode not in ("trt", "both"):
        return list(dict.fromkeys(listed))
    return [BackendId(b.name, None, None if p == "auto" else p)
            for b in registry.with_artifacts() for p in spec_policies(spec) if p in b.policies]
