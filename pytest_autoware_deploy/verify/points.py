"""Per-point verification of a segmentation output: two backends' class scores for the same points.

Element-wise ``allclose`` on ``(N, C)`` scores fails a whole sample for one point whose two best classes are
nearly tied, while a deployment cares whether each point keeps its label. ``compare='points'`` in
``verification.outputs`` checks, point by point (the points are the same on both sides, in the same order):

- ``min_agreement``: the share of points whose label (argmax) equals the reference's, over the points that
  are not *borderline*; a point is borderline when the reference's two best scores lie within ``margin``
  (its label may flip on any backend: counted, never a failure);
- ``score_atol``: the largest |score difference| over all points and classes.

The decoder (``points_from_outputs``) hands the comparator one ``Detections`` per frame whose ``boxes`` are
the ``(N, C)`` scores, ``scores`` the best score and ``labels`` the argmax, so the detection plumbing
(report table, streaming agreement over every sample) carries it unchanged: ``matched`` = points with the
same label, ``unmatched_ref`` = non-borderline points whose label differs, ``borderline`` = borderline
points that differ.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np

from .compare import Comparison
from .detections import Detections


@dataclass(frozen=True)
class PointTolerance:
    min_agreement: float = 0.999
    score_atol: float = 0.05
    margin: float = 0.0

    def __str__(self):
        return ", ".join(f"{f.name}={getattr(self, f.name):g}" for f in fields(self))


def points_from_outputs(outputs: dict, scores="pred_probs") -> list:
    """A segmentation pipeline's outputs (one frame) as ``[Detections]`` of per-point scores: the decoder."""
    s = np.asarray(outputs[scores], np.float64)
    s = s.reshape(-1, s.shape[-1])
    return [Detections(s, s.max(-1) if len(s) else np.zeros(0), s.argmax(-1) if len(s) else np.zeros(0, np.int64))]


def _top2_gap(scores):
    if scores.shape[1] < 2:
        return np.full(len(scores), np.inf)
    part = np.partition(scores, -2, axis=1)
    return part[:, -1] - part[:, -2]


def point_stats(refs, acts, tol: PointTolerance) -> dict:
    stats = {"frames": len(refs), "ref_detections": 0, "actual_detections": 0, "matched": 0, "unmatched_ref": 0,
             "unmatched_actual": 0, "borderline": 0, "max_score_err": 0.0, "mean_score_err": 0.0, "worst": None}
    err_sum = 0.0
    for frame, (ref, act) in enumerate(zip(refs, acts)):
        stats["ref_detections"] += len(ref)
        stats["actual_detections"] += len(act)
        same = ref.labels == act.labels
        border = _top2_gap(ref.boxes) <= tol.margin
        stats["matched"] += int(same.sum())
        stats["unmatched_ref"] += int((~same & ~border).sum())
        stats["borderline"] += int((~same & border).sum())
        if len(ref):
            diff = np.abs(act.boxes - ref.boxes)
            err_sum += float(diff.max(1).sum())
            i, c = np.unravel_index(int(np.argmax(diff)), diff.shape)
            if diff[i, c] >= stats["max_score_err"]:
                stats["max_score_err"] = float(diff[i, c])
                stats["worst"] = {"frame": frame, "point": int(i), "class": int(c), "ref": float(ref.boxes[i, c]),
                                  "actual": float(act.boxes[i, c]), "ref_label": int(ref.labels[i]),
                                  "actual_label": int(act.labels[i])}
    if stats["ref_detections"]:
        stats["mean_score_err"] = err_sum / stats["ref_detections"]
    return stats


def compare_points(refs, acts, tol: PointTolerance, where: str) -> Comparison:
    """Pass/fail of one case; ``where`` names spec/backend/output/sample for the message."""
    if len(refs) != len(acts) or any(len(r) != len(a) for r, a in zip(refs, acts)):
        return Comparison(False, {}, f"{where}: {[len(a) for a in acts]} points per frame, reference has "
                                     f"{[len(r) for r in refs]} (a per-point output must keep every point)")
    stats = point_stats(refs, acts, tol)
    counted = stats["ref_detections"] - stats["borderline"]
    agreement = (stats["matched"] / counted) if counted else 1.0
    stats["agreement"] = agreement
    problems = []
    if agreement < tol.min_agreement:
        problems.append(f"label agreement {agreement:.5f} ({stats['unmatched_ref']} of {counted} points differ) "
                        f"< min_agreement {tol.min_agreement:g}")
    if stats["max_score_err"] > tol.score_atol:
        problems.append(f"score error {stats['max_score_err']:.4g} > score_atol {tol.score_atol:g}")
    if not problems:
        return Comparison(True, stats)
    w = stats["worst"]
    detail = (f"; worst: frame {w['frame']}, point {w['point']}, class {w['class']}: {w['actual']:.5f} vs "
              f"{w['ref']:.5f} (labels {w['actual_label']} vs {w['ref_label']})") if w else ""
    summary = (f" [{stats['matched']} of {stats['ref_detections']} points agree, {stats['borderline']} borderline "
               f"within margin {tol.margin:g}, mean per-point max score error {stats['mean_score_err']:.3g}]")
    return Comparison(False, stats, f"{where}: " + "; ".join(problems) + detail + summary)
