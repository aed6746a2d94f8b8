"""Detection-aware verification of 3D boxes: two backends' final detections matched by BEV centre distance.

The lidar counterpart of ``detections.py`` (same ``Detections`` container and ``Comparison`` result;
there matching is by 2D IoU). 3D detectors are evaluated by BEV centre distance (nuScenes, AWML's
T4Metric), and tiny or thin objects (pedestrians, cones) have near-zero BEV IoU for offsets that do
not matter, so matching here is by centre distance too: reference detections in descending score
order each take the nearest free backend detection of the same class within ``match_dist`` metres.
Boxes are ``[x, y, z, l, w, h, yaw, (vx, vy)]``. For every match the errors are checked:

- ``center_atol``: 3D centre distance; ``size_atol``: max |dl|, |dw|, |dh|; ``yaw_atol``: wrapped yaw
  difference (radians; ``yaw_period=pi`` ignores a flipped heading), weighed by the reference's heading
  magnitude (below); ``velocity_atol``: velocity L2; ``score_atol``: |score difference|

Yaw is ``atan2(sin, cos)`` of two head outputs. A trained head's ``(sin, cos)`` has magnitude ~1, and an
error ``e`` in those outputs turns the yaw by about ``e`` radians; a head that has not learned an orientation
(magnitude ``r`` near 0) turns it by about ``e / r``, so its yaw swings by radians under the last digits of
fp32/TF32 while every output it computes agrees. When the detections carry the magnitude (``heading_norm``,
which the bundled lidar and camera 3D decoders output), the yaw error checked is ``|dyaw| * min(1, r_ref)``:
the angle itself for a committed heading, the perturbation of the head's outputs for an uncommitted one.
A committed heading that turns is caught as before; the raw angle is reported beside it.
- unmatched detections on either side <= ``max_unmatched`` per case; an unmatched detection scoring
  below ``min_score`` is *borderline* (its twin may sit just under the score threshold on the other
  backend): counted, never a failure.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .compare import Comparison
from .detections import Detections, Matching, greedy_match


@dataclass(frozen=True)
class Detection3DTolerance:
    match_dist: float = 1.0
    center_atol: float = 0.1
    size_atol: float = 0.1
    yaw_atol: float = 0.1
    velocity_atol: float = 0.2
    score_atol: float = 0.05
    max_unmatched: int = 0
    min_score: float = 0.0
    yaw_period: float = 2 * np.pi

    def __str__(self):
        return ", ".join(f"{f.name}={getattr(self, f.name):g}" for f in fields(self))


TOLERANCE_KEYS = tuple(f.name for f in fields(Detection3DTolerance))
ERRORS = ("center", "size", "yaw", "velocity", "score")


def wrap_angle(diff, period=2 * np.pi):
    """|diff| folded into [0, period / 2]."""
    return np.abs((np.asarray(diff, np.float64) + period / 2) % period - period / 2)


def match_by_center(ref: Detections, act: Detections, match_dist: float) -> Matching:
    """Pairs whose BEV centres lie within ``match_dist`` metres, nearest first (``values`` are the distances)."""
    if len(ref) and len(act):
        dist = np.linalg.norm(ref.boxes[:, None, :2] - act.boxes[None, :, :2], axis=2)
    else:
        dist = np.zeros((len(ref), len(act)))
    return greedy_match(ref, act, dist, dist <= match_dist, higher_is_better=False)


def match_errors(r: np.ndarray, a: np.ndarray, rs: float, as_: float, yaw_period=2 * np.pi,
                 heading_norm: float | None = None) -> dict:
    """The five errors of one matched pair of boxes (and scores); ``heading_norm``: the reference box's
    ``|(sin, cos)|``, which weighs the yaw error (module docstring)."""
    vel = float(np.linalg.norm(a[7:9] - r[7:9])) if len(r) >= 9 and len(a) >= 9 else 0.0
    yaw = float(wrap_angle(a[6] - r[6], yaw_period))
    weight = 1.0 if heading_norm is None else min(1.0, float(heading_norm))
    return {"center": float(np.linalg.norm(a[:3] - r[:3])), "size": float(np.abs(a[3:6] - r[3:6]).max()),
            "yaw": yaw * weight, "velocity": vel, "score": abs(float(as_) - float(rs)), "yaw_angle": yaw}


def detection3d_stats(refs, acts, tol: Detection3DTolerance) -> dict:
    """Matching statistics over a batch (lists of Detections, one per frame), plus the worst match."""
    stats = {"frames": len(refs), "ref_detections": 0, "actual_detections": 0, "matched": 0, "unmatched_ref": 0,
             "unmatched_actual": 0, "borderline": 0, **{f"max_{e}_err": 0.0 for e in ERRORS},
             "max_yaw_angle_err": 0.0, "mean_center_err": 0.0, "worst": None}
    center_sum, worst = 0.0, -np.inf
    atol = {e: getattr(tol, f"{e}_atol") for e in ERRORS}
    for frame, (ref, act) in enumerate(zip(refs, acts)):
        m = match_by_center(ref, act, tol.match_dist)
        stats["ref_detections"] += len(ref)
        stats["actual_detections"] += len(act)
        stats["matched"] += len(m.pairs)
        for side, dets, idx in (("ref", ref, m.unmatched_ref), ("actual", act, m.unmatched_act)):
            low = int((dets.scores[idx] < tol.min_score).sum()) if idx else 0
            stats["borderline"] += low
            stats[f"unmatched_{side}"] += len(idx) - low
        for i, j in m.pairs:
            heading = None if ref.heading_norm is None else ref.heading_norm[i]
            err = match_errors(ref.boxes[i], act.boxes[j], ref.scores[i], act.scores[j], tol.yaw_period, heading)
            stats["max_yaw_angle_err"] = max(stats["max_yaw_angle_err"], err["yaw_angle"])
            center_sum += err["center"]
            for e in ERRORS:
                stats[f"max_{e}_err"] = max(stats[f"max_{e}_err"], err[e])
            excess = max(err[e] / atol[e] if atol[e] else err[e] * np.inf if err[e] else 0.0 for e in ERRORS)
            if excess > worst:
                worst = excess
                stats["worst"] = {"frame": frame, "label": int(ref.labels[i]), "errors": err,
                                  "heading_norm": None if heading is None else round(float(heading), 4),
                                  "ref_score": float(ref.scores[i]), "actual_score": float(act.scores[j]),
                                  "ref_box": [round(float(v), 3) for v in ref.boxes[i]],
                                  "actual_box": [round(float(v), 3) for v in act.boxes[j]]}
    if stats["matched"]:
        stats["mean_center_err"] = center_sum / stats["matched"]
    return stats


def compare_detections3d(refs, acts, tol: Detection3DTolerance, where: str) -> Comparison:
    """Pass/fail of one case; ``where`` names spec/backend/output/sample for the message."""
    if len(refs) != len(acts):
        return Comparison(False, {}, f"{where}: {len(acts)} frames of detections, reference has {len(refs)}")
    stats = detection3d_stats(refs, acts, tol)
    weighed = " (x min(1, heading magnitude))" if any(r.heading_norm is not None for r in refs) else ""
    problems = [f"matched {e} error{weighed if e == 'yaw' else ''} {stats[f'max_{e}_err']:.4g} > {e}_atol "
                f"{getattr(tol, f'{e}_atol'):g}" for e in ERRORS if stats[f"max_{e}_err"] > getattr(tol, f"{e}_atol")]
    unmatched = stats["unmatched_ref"] + stats["unmatched_actual"]
    if unmatched > tol.max_unmatched:
        problems.append(f"{stats['unmatched_ref']} reference and {stats['unmatched_actual']} backend detections "
                        f"unmatched within {tol.match_dist:g} m (same class) > max_unmatched {tol.max_unmatched}")
    if not problems:
        return Comparison(True, stats)
    w = stats["worst"]
    heading = (f", yaw {w['errors']['yaw_angle']:.4g} rad at heading magnitude {w['heading_norm']:g}"
               if w and w.get("heading_norm") is not None else "")
    detail = (f"; worst match: frame {w['frame']}, class {w['label']}, score {w['actual_score']:.4f} vs "
              f"{w['ref_score']:.4f}, box {w['actual_box']} vs {w['ref_box']}{heading}") if w else ""
    summary = (f" [{stats['matched']} matched of {stats['ref_detections']} reference / "
               f"{stats['actual_detections']} backend detections, mean centre error {stats['mean_center_err']:.4g} m, "
               f"{stats['borderline']} borderline below min_score]")
    return Comparison(False, stats, f"{where}: " + "; ".join(problems) + detail + summary)


def detections_from_outputs(outputs: dict, boxes="boxes_3d", scores="scores", labels="labels",
                            heading_norm="heading_norm") -> list:
    """A pipeline's final outputs (one frame) as ``[Detections]``: the decoder for ``verification.outputs``
    (``heading_norm`` is used when the outputs have it)."""
    return [Detections(np.asarray(outputs[boxes]).reshape(-1, np.asarray(outputs[boxes]).shape[-1]),
                       outputs[scores], outputs[labels], outputs.get(heading_norm))]
