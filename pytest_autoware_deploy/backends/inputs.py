"""What a runner's inputs must be (name, dtype, shape with dynamic dims) and the one check every feed passes.

Polygraphy's ``BaseRunner.infer`` checks the feed against ``get_input_metadata()`` before
``infer_impl``; ``Runner`` does the same with ``check_feed``, so no backend repeats it and every
backend fails the same way. A dtype mismatch is cast only when no value changes beyond rounding:
widening casts (``np.can_cast(..., "safe")``), float to a narrower float when every finite value
fits (float32 -> float16 for a graph converted with ``keep_io_types=False``), integer to a
narrower integer when every value fits (int64 <-> int32). Anything else, float -> int above all,
is one error naming the input, the expected and the given dtype.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..errors import InferenceError


@dataclass(frozen=True)
class TensorMeta:
    """One input as a runner declares it.

    ``dtype`` None: the runner declares none (eager PyTorch without a ``model_inputs`` dtype), any is
    passed on. ``shape`` None: rank and dims unknown. In a shape tuple an int is a fixed dim; a str
    (ONNX ``dim_param``, e.g. ``'batch'``) or None is a dynamic one.
    """

    name: str
    dtype: np.dtype | None = None
    shape: tuple | None = None

    @classmethod
    def of(cls, name, dtype=None, shape=None) -> "TensorMeta":
        """Normalised: dtype as ``np.dtype``; negative (TensorRT's -1) and non-int dims other than names as None."""
        dims = None
        if shape is not None:
            dims = tuple(d if isinstance(d, str) and d else
                         int(d) if isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 0 else None
                         for d in shape)
        return cls(name, None if dtype is None else np.dtype(dtype), dims)

    def shape_text(self) -> str:
        if self.shape is None:
            return "any"
        return "(" + ", ".join("?" if d is None else repr(d) if isinstance(d, str) else str(d)
                               for d in self.shape) + ("," if len(self.shape) == 1 else "") + ")"


def shape_fits(shape, declared) -> bool:
    """Rank equal and every fixed dim equal; named / None dims take any size."""
    if declared is None:
        return True
    return len(shape) == len(declared) and all(not isinstance(d, int) or d == s for d, s in zip(declared, shape))


def check_feed(metadata: dict[str, TensorMeta], feed, where: str) -> dict:
    """The feed with every declared input present, of a fitting shape and of the declared dtype.

    Returns a new dict (keys the feed has beyond the declared inputs are passed on unchanged: a
    pipeline's host code may read them); raises one InferenceError naming ``where`` and the input.
    """
    out = dict(feed)
    for name, meta in metadata.items():
        if name not in feed:
            raise InferenceError(f"{where}: input '{name}' missing from feed (got {sorted(feed)})")
        if meta.dtype is None and meta.shape is None:
            continue
        value = np.asarray(feed[name])
        if not shape_fits(value.shape, meta.shape):
            raise InferenceError(f"{where}: input '{name}' has shape {tuple(value.shape)}, outside the expected "
                                 f"shape {meta.shape_text()} ('?' and names are dynamic dims); given dtype "
                                 f"{value.dtype}, expected {meta.dtype or 'any'}")
        if meta.dtype is not None and value.dtype != meta.dtype:
            value = safe_cast(value, meta.dtype, name, where)
        out[name] = value
    return out


def safe_cast(value: np.ndarray, dtype, name: str, where: str) -> np.ndarray:
    """``value`` as ``dtype`` if no value changes beyond float rounding, else one InferenceError."""
    want, have = np.dtype(dtype), value.dtype
    head = f"{where}: input '{name}' expects dtype {want}, given {have}"
    if np.can_cast(have, want, "safe"):
        return value.astype(want)
    if have.kind == "f" and want.kind == "f":
        finite = np.isfinite(value)
        biggest = float(np.max(np.abs(value), where=finite, initial=0.0))
        limit = float(np.finfo(want).max)
        if biggest > limit:
            raise InferenceError(f"{head} (shape {tuple(value.shape)}): values up to {biggest:.6g} overflow "
                                 f"{want} (max {limit:.6g}); they would become inf")
        return value.astype(want)
    if have.kind in "iu" and want.kind in "iu":
        if value.size:
            lo, hi, info = int(value.min()), int(value.max()), np.iinfo(want)
            if lo < info.min or hi > info.max:
                raise InferenceError(f"{head} (shape {tuple(value.shape)}): values in [{lo}, {hi}] do not fit "
                                     f"{want} [{info.min}, {info.max}]")
        return value.astype(want)
    raise InferenceError(f"{head} (shape {tuple(value.shape)}): no safe cast from {_KINDS.get(have.kind, have.kind)} "
                         f"to {_KINDS.get(want.kind, want.kind)} (values could change); feed {want}")


def is_tensor(value) -> bool:
    """A torch tensor (checked without importing torch: the numpy path never loads it)."""
    return type(value).__module__.startswith("torch") and hasattr(value, "device") and hasattr(value, "dtype")


def as_numpy(value) -> np.ndarray:
    """A host copy of a feed value: numpy arrays as they are, torch tensors (any device) copied to the host."""
    if is_tensor(value):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def numpy_dtype_of(tensor) -> np.dtype:
    import torch

    return torch.empty(0, dtype=tensor.dtype).numpy().dtype


def check_tensor_feed(metadata: dict[str, TensorMeta], feed, where: str) -> dict:
    """``check_feed`` for a feed of torch tensors (a pipeline's host code on the device): the same presence,
    shape and dtype rules, without a host copy. Casts only widen (``np.can_cast`` safe); a narrowing one
    would need the values on the host to prove they fit, so it is one error asking for the declared dtype."""
    import torch

    out = dict(feed)
    for name, meta in metadata.items():
        if name not in feed:
            raise InferenceError(f"{where}: input '{name}' missing from feed (got {sorted(feed)})")
        value = feed[name]
        if not is_tensor(value):
            value = torch.from_numpy(np.ascontiguousarray(value))
        have = numpy_dtype_of(value)
        if not shape_fits(tuple(value.shape), meta.shape):
            raise InferenceError(f"{where}: input '{name}' has shape {tuple(value.shape)}, outside the expected "
                                 f"shape {meta.shape_text()} ('?' and names are dynamic dims); given dtype "
                                 f"{have}, expected {meta.dtype or 'any'}")
        if meta.dtype is not None and have != meta.dtype:
            if not np.can_cast(have, meta.dtype, "safe"):
                raise InferenceError(f"{where}: input '{name}' expects dtype {meta.dtype}, given a {have} tensor on "
                                     f"{value.device} (shape {tuple(value.shape)}): only widening casts are made "
                                     f"on the device; feed {meta.dtype}")
            value = value.to(torch.from_numpy(np.empty(0, meta.dtype)).dtype)
        out[name] = value.contiguous()
    return out


_KINDS = {"f": "float", "i": "signed integer", "u": "unsigned integer", "b": "bool", "c": "complex"}


def spec_input_metadata(spec) -> list[TensorMeta]:
    """What the spec declares about its inputs: the metadata of runners without a graph of their own
    (eager PyTorch, a pipeline's host code).

    dtype only where ``backend_config.model_inputs`` names one (the loader's dtype is never guessed);
    shape only where it declares shapes: the batch axis, axes in ``onnx_config.dynamic_axes`` and axes
    whose min/opt/max differ are dynamic, the rest fixed.
    """
    names = spec.input_names
    dynamic = spec.cfg["onnx_config"].get("dynamic_axes") or {}
    declared = {}
    for item in spec.cfg["backend_config"]["model_inputs"]:
        name = item.get("name", names[0] if len(names) == 1 else None)
        if name in names:
            declared[name] = item
    out = []
    for name in names:
        item = declared.get(name, {})
        shapes = [tuple(item[k]) for k in ("shape", "min_shape", "opt_shape", "max_shape") if item.get(k)]
        shape = None
        if shapes:
            axes = dynamic.get(name) or {}
            named = axes if isinstance(axes, dict) else {int(a): None for a in axes}
            shape = tuple(named.get(i) if i in named else
                          None if i == 0 or len({s[i] for s in shapes}) > 1 else shapes[0][i]
                          for i in range(len(shapes[0])))
        out.append(TensorMeta.of(name, item.get("dtype"), shape))
    return out
