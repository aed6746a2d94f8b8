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

from dataclasses import dataclass, replace

from ..errors import SpecError
from ..spec.schema import suggest
from .compare import Comparison
from .detections import IOU_FUNCTIONS, TOLERANCE_KEYS, DetectionTolerance, Detections, compare_detections

COMPARATORS = ("allclose",) + tuple(IOU_FUNCTIONS)
ENTRY_KEYS = ("compare", "decoder", "decoder_kwargs", "policies") + TOLERANCE_KEYS


@dataclass(frozen=True)
class DetectionCheck:
    name: str
    compare: str
    decoder: str
    decoder_kwargs: dict
    tolerance: DetectionTolerance
    policies: dict

    def tolerance_for(self, policy: str) -> DetectionTolerance:
        return replace(self.tolerance, **self.policies.get(policy, {}))


def _tolerance(values, spec_file, key) -> dict:
    out = {}
    for k, v in values.items():
        if k not in TOLERANCE_KEYS:
            raise SpecError(spec_file, f"{key}.{k}", f"unknown key{suggest(k, TOLERANCE_KEYS)}; expected one of "
                            f"{', '.join(TOLERANCE_KEYS)}")
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
        for k in entry:
            if k not in ENTRY_KEYS:
                raise SpecError(spec.file, f"{key}.{k}", f"unknown key{suggest(k, ENTRY_KEYS)}; expected one of "
                                f"{', '.join(ENTRY_KEYS)}")
        compare = entry.get("compare", "allclose")
        if compare not in COMPARATORS:
            raise SpecError(spec.file, f"{key}.compare", f"{compare!r} is not one of {', '.join(COMPARATORS)}"
                            f"{suggest(str(compare), COMPARATORS)}")
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
        tol = DetectionTolerance(**_tolerance({k: entry[k] for k in TOLERANCE_KEYS if k in entry}, spec.file, key))
        per_policy = {}
        for p, v in policies.items():
            if not isinstance(v, dict):
                raise SpecError(spec.file, f"{key}.policies.{p}", f"expected dict(tolerance keys), got {v!r}")
            per_policy[p] = _tolerance(v, spec.file, f"{key}.policies.{p}")
        checks[name] = DetectionCheck(name, compare, decoder, dict(kwargs), tol, per_policy)
    return checks


def verified_outputs(spec) -> list[str]:
    """Output names that get verification tests: the ONNX outputs, then the derived ones."""
    return spec.output_names + [n for n in output_checks(spec) if n not in spec.output_names]


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
    try:
        return [d if isinstance(d, Detections) else Detections(d["boxes"], d["scores"], d["labels"]) for d in dets]
    except (KeyError, TypeError, ValueError) as exc:
        raise SpecError(spec.file, f"{key}.decoder", f"{check.decoder} must return one Detections (or dict of boxes, "
                        f"scores, labels) per batch element: {type(exc).__name__}: {exc}") from None


def run_detection_check(spec, check: DetectionCheck, reference: dict, actual: dict, policy: str,
                        where: str) -> Comparison:
    """Decode both backends' outputs the same way and match the detections."""
    refs = _decode(spec, check, reference)
    acts = _decode(spec, check, actual)
    return compare_detections(refs, acts, check.tolerance_for(policy), where, IOU_FUNCTIONS[check.compare])
