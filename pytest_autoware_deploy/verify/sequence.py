"""Sequence verification of a stateful pipeline (``test_sequence_verification[spec-backend]``).

Why: a deployment that carries state across frames (StreamPETR's object-query memory) can agree with its
reference on every frame checked alone and still drift: each frame feeds its state, with its small error,
into the next, and the error grows along the sequence. ``test_verification`` cannot see that (a frame run
out of order is rebuilt from the sequence start on each backend alike); this check runs whole sequences
in order, from a memory reset, on the backend and on its reference, each with its own state, and
compares the stateful stage's outputs frame by frame.

The hook (no spec key): a pipeline host with ``sequences(samples) -> [[sample index, ...], ...]`` (each a
sequence in time order) and a ``sequence_check`` dict: ``stage`` (whose outputs are compared), ``outputs``
(those outputs; default all), ``frames`` (K first frames of each sequence), ``sequences`` (how many),
``max_growth`` (optional: also fail when an output's error, as a share of its tolerance, grows more than
this factor from frame 0 to a later frame, even within the tolerance). The host must key its state by the
``call_stage`` it is given (a fresh callable starts a fresh sequence). Tolerances are the backend's
policy's (``tolerance_for``), as ``test_verification``'s.

Ties. A state that is a top-k selection (StreamPETR pushes its ``topk_proposals`` best queries into the
memory) is not a function of the outputs within a tolerance: where two candidates' scores are closer than
the tolerance, the backends may keep different ones, in a different order, and from that frame on they carry
different (equally valid) states; element-wise, that is a failure no deployment can fix. A host declaring
``selection_margin(stage_outputs) -> (gap, score)`` (the smallest score gap its selection resolved, and the
score there) lets the check see it: frames from the first one whose *reference* gap is within the tolerance
on are not compared element-wise but by what the pipeline delivers, the host's final outputs, with the
spec's detection check (``verification.outputs``, the same matching as end to end, tie-free by
construction); the report names the frame and the gap. Without such a check the element-wise failure stands.
"""

from __future__ import annotations

import importlib

import numpy as np

from ..errors import InferenceError
from .compare import Tolerance, compare_output

GROWTH_FLOOR = 0.01  # errors under 1% of the tolerance do not count as growth (float32 noise)


def is_sequential(spec) -> bool:
    """Whether the spec's pipeline host declares sequences (its class has ``sequences`` and ``sequence_check``)."""
    ref = (spec.cfg.get("pipeline") or {}).get("host")
    if not ref or ":" not in ref:
        return False
    module, _, attr = ref.partition(":")
    try:
        cls = getattr(importlib.import_module(module), attr)
    except (ImportError, AttributeError):
        return False  # make_host reports it with the spec key when the pipeline runs
    return callable(getattr(cls, "sequences", None)) and isinstance(getattr(cls, "sequence_check", None), dict)


def _ratio(reference, actual, tol: Tolerance) -> float:
    """The worst element's error as a share of its allowed error (> 1 breaks the allclose rule)."""
    ref, act = np.asarray(reference, np.float64), np.asarray(actual, np.float64)
    if ref.shape != act.shape:
        return float("inf")
    finite = np.isfinite(ref) & np.isfinite(act)
    if not finite.all() and (np.isfinite(ref) != np.isfinite(act)).any():
        return float("inf")
    allowed = tol.atol + tol.rtol * np.abs(ref)
    return float(np.max(np.where(finite, np.abs(act - ref) / allowed, 0.0), initial=0.0))


def run_sequence(state, backend, frames, stage, finals=None) -> list[dict]:
    """The ``stage`` outputs of every frame of one sequence run in order on ``backend``, from a reset (and the
    host's final outputs per frame appended to ``finals``, when given)."""
    runner = state.runner(backend)
    host = state.host
    recorded = []

    def call_stage(name, feed):  # a fresh callable: the host starts this sequence from a reset
        out = runner.call_stage(name, feed)
        if name == stage:
            recorded.append({k: np.array(v, copy=True) for k, v in out.items()})
        return out

    for i in frames:
        n = len(recorded)
        final = host.run(state.samples[i]["inputs"], call_stage)
        if finals is not None:
            finals.append(final)
        if len(recorded) != n + 1:
            raise InferenceError(f"{state.spec.name}: the host ran stage {stage!r} {len(recorded) - n} times for "
                                 f"sample {i} of a sequence run in order; expected once (its state must be keyed "
                                 "by call_stage and continue from the previous frame)")
    return recorded


def sequence_failure(state, backend) -> str | None:
    """Run the first sequences on ``backend`` and its reference, compare per frame; the failure text or None.
    Every (output, sequence, frame) comparison goes to the report as ``sequence{s}-frame{k}``."""
    from ..export.precision import tolerance_for

    spec, host = state.spec, state.host
    cfg = {"frames": 8, "sequences": 1, "outputs": None, "max_growth": None, **host.sequence_check}
    reference = spec.reference_for(backend)
    tol = Tolerance(**tolerance_for(spec, backend.policy_name, state.device_of(backend)))
    seqs = [s[: int(cfg["frames"])] for s in host.sequences(state.samples)][: int(cfg["sequences"])]
    if not seqs:
        return f"{spec.name}: {spec.cfg['pipeline']['host']}.sequences() found no sequence in the data"
    failures = []
    for s, frames in enumerate(seqs):
        ref_final, act_final = [], []
        ref_out = run_sequence(state, reference, frames, cfg["stage"], ref_final)
        act_out = run_sequence(state, backend, frames, cfg["stage"], act_final)
        tie = _first_tie(host, ref_out, tol)
        if tie is not None:
            failures += _final_failures(state, backend, reference, s, frames, tie, ref_final, act_final)
            ref_out, act_out = ref_out[:tie[0]], act_out[:tie[0]]
        names = cfg["outputs"] or list(ref_out[0] if ref_out else [])
        for name in names:
            ratios = []
            first_bad = None
            for k, (r, a) in enumerate(zip(ref_out, act_out)):
                if name not in r or name not in a:
                    return f"{spec.name}: stage {cfg['stage']} returned no output {name!r} (got {sorted(a)})"
                where = (f"spec {spec.name}, backend {backend} vs {reference}, stage {cfg['stage']}, output "
                         f"'{name}', sequence {s} (samples {frames[0]}..{frames[-1]}), frame {k}")
                result = compare_output(r[name], a[name], tol, where)
                state.store.add_verification(spec.name, str(backend), f"{cfg['stage']}.{name}",
                                             f"sequence{s}-frame{k}", result.stats, result.passed, result.message)
                ratios.append(_ratio(r[name], a[name], tol))
                if not result.passed and first_bad is None:
                    first_bad = (k, result.message)
            series = ", ".join(f"{x:.3g}" for x in ratios)
            if first_bad is not None:
                k, message = first_bad
                kind = ("drift: frame 0 agrees, the error grows along the sequence" if k > 0
                        else "the first frame already disagrees")
                failures.append(f"{message}\n  error / tolerance per frame: [{series}] ({kind})")
            elif cfg["max_growth"] is not None:
                growth = max(ratios[1:], default=0.0) / max(ratios[0], GROWTH_FLOOR)
                if max(ratios[1:], default=0.0) > GROWTH_FLOOR and growth > float(cfg["max_growth"]):
                    failures.append(f"spec {spec.name}, backend {backend} vs {reference}, stage {cfg['stage']}, output "
                                    f"'{name}', sequence {s}: error grows {growth:.3g}x along {len(frames)} frames "
                                    f"(max_growth {cfg['max_growth']}), within {tol} so far; error / tolerance per "
                                    f"frame: [{series}]")
    return "\n".join(failures) or None


def _first_tie(host, outputs, tol: Tolerance):
    """``(frame, gap, score)`` of the first frame whose reference selection resolved two candidates closer than
    the tolerance allows, or None (also for a host without ``selection_margin``)."""
    margin = getattr(host, "selection_margin", None)
    if margin is None:
        return None
    for k, out in enumerate(outputs):
        gap, score = margin(out)
        if gap <= tol.atol + tol.rtol * abs(score):
            return k, float(gap), float(score)
    return None


def _final_failures(state, backend, reference, s, frames, tie, ref_final, act_final) -> list[str]:
    """From the tie frame on, the host's final outputs per frame through the spec's detection check(s)."""
    from .output_checks import output_checks, run_detection_check

    spec = state.spec
    k0, gap, score = tie
    head = (f"spec {spec.name}, backend {backend} vs {reference}, sequence {s} (samples {frames[0]}..{frames[-1]}): "
            f"top-k selection tie at frame {k0} (reference score gap {gap:.3g} at score {score:.3g}, within the "
            "tolerance): the backends may keep different entries from there on")
    checks = [c for name, c in output_checks(spec).items() if name in (ref_final[0] if ref_final else {})]
    if not checks:
        return [f"{head}, and the spec has no detection check (verification.outputs) of the final outputs "
                f"{sorted(ref_final[0]) if ref_final else []} to compare them by"]
    failures = []
    for check in checks:
        for k in range(k0, len(frames)):
            where = f"{head}; final output '{check.name}', frame {k}"
            result = run_detection_check(spec, check, ref_final[k], act_final[k], backend.policy_name, where,
                                         state.device_of(backend))
            state.store.add_verification(spec.name, str(backend), check.name, f"sequence{s}-frame{k}", result.stats,
                                         result.passed, result.message or where)
            if not result.passed:
                failures.append(result.message)
                break
    return failures
