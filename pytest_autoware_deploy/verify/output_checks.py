"""``verification.outputs``: per-output comparators chosen in the spec.

Every ONNX output is compared element-wise (``compare_output``) unless the spec says otherwise::

    verification = dict(outputs=dict(
        dets=dict(compare='detections2d',
                  decoder='pkg.postprocess:decode', decoder_kwargs=dict(score_thr=0.3),
                  iou=0.5, score_atol=0.05, box_atol=2.0, max_unmatched=0, min_score=0.35,
                  policies=dict(int8=dict(score_atol=0.15, max_unmatched=2)))))

An entry's name is either an ONNX output (its element-wise check is replaced) or a new name: a
*derived* output, checked besides the element-wise ones (a detector's raw head tensor stays
compared element-wise, and its final detections by matching). ``decoder(outputs, **decoder_kwargs)``
turns one inference's outputs (dict name -> array with the batch first) into one list of
detections per batch element (``Detections`` or dicts with boxes/scores/labels): the same host
post-processing the deployment runs (score threshold, NMS), applied to every backend's outputs.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import partial

from ..errors import SpecError
from ..policies import effective_policy
from ..spec.schema import suggest
from . import detections3d, points, tokens
from .compare import Comparison
from .detections import IOU_FUNCTIONS, DetectionTolerance, Detections, compare_detections

# comparator name -> (tolerance dataclass, compare(refs, acts, tolerance, where) -> Comparison)
DETECTION_COMPARATORS = {
    **{name: (DetectionTolerance, partial(compare_detections, iou_fn=fn)) for name, fn in IOU_FUNCTIONS.items()},
    "detections3d": (detections3d.Detection3DTolerance, detections3d.compare_detections3d),  # BEV centre distance
    "tokens": (tokens.TokenTolerance, tokens.compare_tokens),  # greedy-decoded sequences: first divergent step
    "points": (points.PointTolerance, points.compare_points),  # per-point labels + scores (segmentation)
}
RAW_DECODED = ("tokens",)  # comparators whose decoder's values are passed as they are (not Detections)
COMPARATORS = ("allclose",) + tuple(DETECTION_COMPARATORS)
ENTRY_KEYS = ("compare", "decoder", "decoder_kwargs", "policies", "covers")


@dataclass(frozen=True)
class DetectionCheck:
    name: str
    compare: str
    decoder: str
    decoder_kwargs: dict
    tolerance: object  # the comparator's tolerance dataclass
    policies: dict
    covers: tuple = field(default=())  # outputs this check compares (e.g. a 3D box list's scores and labels)

    def tolerance_for(self, policy: str, device: str | None = None):
        """The tolerance of ``policy`` where it runs: ``auto`` on CUDA is TF32 math (``effective_policy``), so a
        ``fp32_tf32`` entry applies over an ``auto`` one there; on the CPU ``auto`` is plain fp32."""
        values = dict(self.policies.get(policy, {}))
        effective = effective_policy(policy, device)
        if effective != policy:
            values.update(self.policies.get(effective, {}))
        return replace(self.tolerance, **values)


def _tolerance_keys(compare) -> tuple:
    from dataclasses import fields

    return tuple(f.name for f in fields(DETECTION_COMPARATORS[compare][0]))


def _tolerance(values, spec_file, key, keys) -> dict:
    out = {}
    for k, v in values.items():
        if k not in keys:
            raise SpecError(spec_file, f"{key}.{k}", f"unknown key{suggest(k, keys)}; expected one of "
                            f"{', '.join(keys)}")
        want = int if k == "max_unmatched" else (int, float)
        if isinstance(v, bool) or not isinstance(v, want) or v < 0:
            raise SpecError(spec_file, f"{key}.{k}", f"expected a non-negative number, got {v!r}")
        if k == "iou" and not 0 < v <= 1:
            raise SpecError(spec_file, f"{key}.{k}", f"expected 0 < iou <= 1, got {v!r}")
        out[k] = v
    return out


def output_checks(spec) -> dict[str, DetectionCheck]:
    """The non-element-wise checks of ``verification.outputs``, validated (one SpecError per problem)."""
    entries = spec.cfg["verification"].get("outputs") or {}
    checks = {}
    for name, entry in entries.items():
        key = f"verification.outputs.{name}"
        if not isinstance(entry, dict):
            raise SpecError(spec.file, key, f"expected dict(compare=..., ...), got {entry!r}")
        compare = entry.get("compare", "allclose")
        if compare not in COMPARATORS:
            raise SpecError(spec.file, f"{key}.compare", f"{compare!r} is not one of {', '.join(COMPARATORS)}"
                            f"{suggest(str(compare), COMPARATORS)}")
        tol_keys = _tolerance_keys(compare) if compare != "allclose" else ()
        allowed = ENTRY_KEYS + tol_keys if compare != "allclose" else ("compare",)
        for k in entry:
            if k not in allowed:
                raise SpecError(spec.file, f"{key}.{k}", f"unknown key for compare='{compare}'{suggest(k, allowed)}; "
                                f"expected one of {', '.join(allowed)}")
        if compare == "allclose":
            if name not in spec.output_names:
                raise SpecError(spec.file, key, f"'{name}' is not an ONNX output ({spec.output_names}); "
                                "a derived output needs a detection comparator and a decoder")
            continue
        decoder = entry.get("decoder")
        if not isinstance(decoder, str) or ":" not in decoder:
            raise SpecError(spec.file, f"{key}.decoder", f"compare='{compare}' needs decoder='module.path:callable' "
                            f"turning the outputs into detections per batch element, got {decoder!r}")
        kwargs = entry.get("decoder_kwargs", {})
        if not isinstance(kwargs, dict):
            raise SpecError(spec.file, f"{key}.decoder_kwargs", f"expected a dict, got {kwargs!r}")
        policies = entry.get("policies", {})
        if not isinstance(policies, dict):
            raise SpecError(spec.file, f"{key}.policies", f"expected policy -> dict(tolerance keys), got {policies!r}")
        tol_cls = DETECTION_COMPARATORS[compare][0]
        tol = tol_cls(**_tolerance({k: entry[k] for k in tol_keys if k in entry}, spec.file, key, tol_keys))
        per_policy = {}
        for p, v in policies.items():
            if not isinstance(v, dict):
                raise SpecError(spec.file, f"{key}.policies.{p}", f"expected dict(tolerance keys), got {v!r}")
            per_policy[p] = _tolerance(v, spec.file, f"{key}.policies.{p}", tol_keys)
        covers = entry.get("covers", [])
        if not isinstance(covers, (list, tuple)) or any(c not in spec.output_names for c in covers):
            raise SpecError(spec.file, f"{key}.covers", f"expected a list of the outputs {spec.output_names} this "
                            f"check compares (they get no element-wise test of their own), got {covers!r}")
        checks[name] = DetectionCheck(name, compare, decoder, dict(kwargs), tol, per_policy, tuple(covers))
    return checks


def verified_outputs(spec) -> list[str]:
    """Output names that get verification tests: the outputs (less those a detection check ``covers``),
    then the derived ones."""
    checks = output_checks(spec)
    covered = {c for check in checks.values() for c in check.covers if c != check.name}
    return [n for n in spec.output_names if n not in covered] + [n for n in checks if n not in spec.output_names]


def _decode(spec, check, outputs):
    from ..spec.resolve import resolve_callable

    key = f"verification.outputs.{check.name}"
    fn = resolve_callable(check.decoder, spec, f"{key}.decoder")
    try:
        dets = fn(outputs, **check.decoder_kwargs)
    except TypeError as exc:
        raise SpecError(spec.file, f"{key}.decoder_kwargs", f"{check.decoder} rejected them: {exc}") from None
    except (KeyError, ValueError, IndexError) as exc:  # e.g. an output name the graph does not have
        raise SpecError(spec.file, f"{key}.decoder", f"{check.decoder} failed on outputs "
                        f"{ {k: tuple(getattr(v, 'shape', ())) for k, v in outputs.items()} }: "
                        f"{type(exc).__name__}: {exc}") from None
    if check.compare in RAW_DECODED:
        return list(dets)
    try:
        return [d if isinstance(d, Detections) else Detections(d["boxes"], d["scores"], d["labels"]) for d in dets]
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecError(spec.file, f"{key}.decoder", f"{check.decoder} must return one Detections (or dict of boxes, "
                        f"scores, labels) per batch element: {type(exc).__name__}: {exc}") from None


def run_detection_check(spec, check: DetectionCheck, reference: dict, actual: dict, policy: str,
                        where: str, device: str | None = None) -> Comparison:
    """Decode both backends' outputs the same way and match the detections (the tolerance of ``policy`` on
    ``device``: ``DetectionCheck.tolerance_for``)."""
    refs = _decode(spec, check, reference)
    acts = _decode(spec, check, actual)
    return DETECTION_COMPARATORS[check.compare][1](refs, acts, check.tolerance_for(policy, device), where)
