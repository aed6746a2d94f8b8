"""Verification of generated token sequences: greedy decoding must give the same tokens on every backend.

A generative model's logits may differ by 1e-6 between runtimes and still pick the same token at every
step; once one step picks another token, everything after it is conditioned on different text, so an
element-wise check of later steps is meaningless. The comparison is therefore the *first divergent step*:
the first ``steps`` generated tokens (0: all of them) of every sequence in the batch must be equal, and a
failure names the step, the batch element and both tokens.

Statistics use the detection comparators' count keys (``verify/detections.py``), so the report and the
streaming agreement treat a token like a matched detection: ``matched`` = tokens of the common prefix,
``unmatched_ref``/``unmatched_actual`` = tokens from the first divergence on, ``ref_detections`` /
``actual_detections`` = tokens compared. ``first_divergent_step`` (-1: none) is in the statistics too.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .compare import Comparison


@dataclass(frozen=True)
class TokenTolerance:
    steps: int = 0  # leading steps that must agree; 0 = every generated step

    def __str__(self):
        return ", ".join(f"{f.name}={getattr(self, f.name)}" for f in fields(self))


def first_divergence(ref, act) -> int:
    """Index of the first position where two 1-D token sequences differ (a length difference counts
    at the shorter length); -1 when they are equal."""
    ref, act = np.asarray(ref).reshape(-1), np.asarray(act).reshape(-1)
    n = min(len(ref), len(act))
    diff = np.flatnonzero(ref[:n] != act[:n])
    if len(diff):
        return int(diff[0])
    return -1 if len(ref) == len(act) else n


def compare_tokens(refs, acts, tol: TokenTolerance, where: str) -> Comparison:
    """``refs``/``acts``: one 1-D token sequence per batch element (the decoder's result)."""
    if len(refs) != len(acts):
        return Comparison(False, {}, f"{where}: {len(acts)} sequences, reference has {len(refs)}")
    stats = {"matched": 0, "ref_detections": 0, "actual_detections": 0, "unmatched_ref": 0, "unmatched_actual": 0,
             "borderline": 0, "first_divergent_step": -1, "sequences": len(refs)}
    worst = None
    for b, (ref, act) in enumerate(zip(refs, acts)):
        ref, act = np.asarray(ref).reshape(-1), np.asarray(act).reshape(-1)
        horizon = int(tol.steps) or max(len(ref), len(act))
        ref, act = ref[:horizon], act[:horizon]
        step = first_divergence(ref, act)
        prefix = len(ref) if step < 0 else step
        stats["matched"] += prefix
        stats["ref_detections"] += len(ref)
        stats["actual_detections"] += len(act)
        stats["unmatched_ref"] += len(ref) - prefix
        stats["unmatched_actual"] += len(act) - prefix
        if step >= 0 and (worst is None or step < worst[1]):
            worst = (b, step, ref, act)
    if worst is None:
        return Comparison(True, stats)
    b, step, ref, act = worst
    stats["first_divergent_step"] = step
    r = int(ref[step]) if step < len(ref) else None
    a = int(act[step]) if step < len(act) else None
    return Comparison(False, stats, f"{where}: generated tokens diverge at step {step} (batch element {b}): token "
                      f"{a} vs {r} (reference); equal prefix {step} of {len(ref)} steps ({tol}); "
                      f"reference {ref.tolist()}, backend {act.tolist()}")


def sequences_from_outputs(outputs: dict, output_name: str = "output_ids") -> list:
    """A decoder for ``verification.outputs``: the ``(B, K)`` token output as one sequence per batch element."""
    ids = np.asarray(outputs[output_name])
    return [row for row in ids.reshape(ids.shape[0] if ids.ndim > 1 else 1, -1)]
