"""Detection-aware verification: two backends' final detections matched box to box.

Element-wise comparison of a detector's final boxes breaks as soon as two boxes swap places in
the output (fp16/int8 reorder near-equal scores) or one crosses the score threshold, although
the detections are the same. Here detections of the reference and of the backend are matched
greedily, class-aware, by IoU (reference boxes in descending score order, each taking the free
backend box of its class with the highest IoU >= ``iou``), and the check is about the matches:

- every match's score error <= ``score_atol`` and box coordinate error <= ``box_atol``
- unmatched detections on either side <= ``max_unmatched`` (per compared case, over the batch);
  an unmatched detection scoring below ``min_score`` is *borderline* (its twin may sit just under
  the decoder's score threshold on the other side): counted in the stats, never a failure

The IoU function is the only geometry: ``detections2d`` uses axis-aligned ``x1, y1, x2, y2`` boxes;
a 3D family registers its own (e.g. BEV IoU) in ``IOU_FUNCTIONS`` and reuses the matching and checks.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from .compare import Comparison


@dataclass
class Detections:
    """One image's (or point cloud's) detections: ``boxes (n, D)``, ``scores (n,)``, ``labels (n,)``; for 3D
    boxes optionally ``heading_norm (n,)``, the magnitude of the head's (sin, cos) behind each yaw."""

    boxes: np.ndarray
    scores: np.ndarray
    labels: np.ndarray
    heading_norm: np.ndarray | None = None

    def __post_init__(self):
        self.scores = np.asarray(self.scores, dtype=np.float64).reshape(-1)
        boxes = np.asarray(self.boxes, dtype=np.float64)
        dim = boxes.shape[-1] if boxes.ndim == 2 else 4
        self.boxes = boxes.reshape(len(self.scores), -1) if len(self.scores) else boxes.reshape(0, dim)
        self.labels = np.asarray(self.labels, dtype=np.int64).reshape(-1)
        if not len(self.boxes) == len(self.scores) == len(self.labels):
            raise ValueError(f"detections have {len(self.boxes)} boxes, {len(self.scores)} scores and "
                             f"{len(self.labels)} labels")
        if self.heading_norm is not None:
            self.heading_norm = np.asarray(self.heading_norm, dtype=np.float64).reshape(-1)
            if len(self.heading_norm) != len(self.scores):
                raise ValueError(f"detections have {len(self.scores)} boxes and {len(self.heading_norm)} "
                                 "heading norms")

    def __len__(self):
        return len(self.scores)


def iou_xyxy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of axis-aligned boxes ``(n, 4)`` x ``(m, 4)`` given as x1, y1, x2, y2."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(rb - lt, 0, None), axis=2)
    area_a = np.prod(np.clip(a[:, 2:] - a[:, :2], 0, None), axis=1)
    area_b = np.prod(np.clip(b[:, 2:] - b[:, :2], 0, None), axis=1)
    union = area_a[:, None] + area_b[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


IOU_FUNCTIONS = {"detections2d": iou_xyxy}


@dataclass
class Matching:
    """Index pairs ``(ref_i, act_j)`` with their affinity (IoU, or centre distance); the indices left over."""

    pairs: list = field(default_factory=list)
    values: list = field(default_factory=list)
    unmatched_ref: list = field(default_factory=list)
    unmatched_act: list = field(default_factory=list)


def greedy_match(ref: Detections, act: Detections, affinity: np.ndarray, accept: np.ndarray,
                 higher_is_better: bool) -> Matching:
    """Greedy class-aware one-to-one matching, reference boxes by descending score (COCO evaluation's rule with
    the reference as ground truth): each takes the best still-free, same-class, acceptable backend box."""
    out = Matching()
    taken = np.zeros(len(act), dtype=bool)
    same = ref.labels[:, None] == act.labels[None, :]
    worst = -np.inf if higher_is_better else np.inf
    pick = np.argmax if higher_is_better else np.argmin
    for i in np.argsort(-ref.scores, kind="stable"):
        cand = np.where(same[i] & ~taken & accept[i], affinity[i], worst)
        j = int(pick(cand)) if len(act) else -1
        if j >= 0 and np.isfinite(cand[j]):
            taken[j] = True
            out.pairs.append((int(i), j))
            out.values.append(float(affinity[i, j]))
        else:
            out.unmatched_ref.append(int(i))
    out.unmatched_ref.sort()
    out.unmatched_act = [int(j) for j in np.where(~taken)[0]]
    return out


def match_detections(ref: Detections, act: Detections, iou_thr: float, iou_fn=iou_xyxy) -> Matching:
    """Pairs with IoU >= ``iou_thr``, highest IoU first."""
    ious = iou_fn(ref.boxes, act.boxes) if len(ref) and len(act) else np.zeros((len(ref), len(act)))
    return greedy_match(ref, act, ious, ious >= iou_thr, higher_is_better=True)


@dataclass(frozen=True)
class DetectionTolerance:
    iou: float = 0.5
    score_atol: float = 0.05
    box_atol: float = 2.0
    max_unmatched: int = 0
    min_score: float = 0.0

    def __str__(self):
        return (f"iou>={self.iou:g}, score_atol={self.score_atol:g}, box_atol={self.box_atol:g}, "
                f"max_unmatched={self.max_unmatched}, min_score={self.min_score:g}")


TOLERANCE_KEYS = tuple(f.name for f in fields(DetectionTolerance))


def detection_stats(refs, acts, tol: DetectionTolerance, iou_fn=iou_xyxy) -> dict:
    """Matching statistics over a batch (lists of Detections, one per image), plus the worst match."""
    stats = {"images": len(refs), "ref_detections": 0, "actual_detections": 0, "matched": 0,
             "unmatched_ref": 0, "unmatched_actual": 0, "borderline": 0, "max_score_err": 0.0,
             "max_box_err": 0.0, "mean_iou": 1.0, "worst": None}
    iou_sum, worst = 0.0, -np.inf
    for image, (ref, act) in enumerate(zip(refs, acts)):
        m = match_detections(ref, act, tol.iou, iou_fn)
        stats["ref_detections"] += len(ref)
        stats["actual_detections"] += len(act)
        stats["matched"] += len(m.pairs)
        iou_sum += sum(m.values)
        for side, dets, idx in (("ref", ref, m.unmatched_ref), ("actual", act, m.unmatched_act)):
            low = int((dets.scores[idx] < tol.min_score).sum()) if idx else 0
            stats["borderline"] += low
            stats[f"unmatched_{side}"] += len(idx) - low
        for (i, j), iou in zip(m.pairs, m.values):
            s_err = abs(act.scores[j] - ref.scores[i])
            b_err = float(np.abs(act.boxes[j] - ref.boxes[i]).max()) if ref.boxes.shape[1] else 0.0
            stats["max_score_err"] = max(stats["max_score_err"], float(s_err))
            stats["max_box_err"] = max(stats["max_box_err"], b_err)
            excess = max(s_err / tol.score_atol if tol.score_atol else s_err,
                         b_err / tol.box_atol if tol.box_atol else b_err)
            if excess > worst:
                worst = excess
                stats["worst"] = {"image": image, "label": int(ref.labels[i]), "iou": round(iou, 4),
                                  "ref_score": float(ref.scores[i]), "actual_score": float(act.scores[j]),
                                  "ref_box": [round(float(v), 3) for v in ref.boxes[i]],
                                  "actual_box": [round(float(v), 3) for v in act.boxes[j]]}
    if stats["matched"]:
        stats["mean_iou"] = iou_sum / stats["matched"]
    return stats


def compare_detections(refs, acts, tol: DetectionTolerance, where: str, iou_fn=iou_xyxy) -> Comparison:
    """Pass/fail of one case (a batch of images); ``where`` names spec/backend/output/sample/shape."""
    if len(refs) != len(acts):
        return Comparison(False, {}, f"{where}: {len(acts)} images of detections, reference has {len(refs)}")
    stats = detection_stats(refs, acts, tol, iou_fn)
    problems = []
    if stats["max_score_err"] > tol.score_atol:
        problems.append(f"matched score error {stats['max_score_err']:.4g} > score_atol {tol.score_atol:g}")
    if stats["max_box_err"] > tol.box_atol:
        problems.append(f"matched box error {stats['max_box_err']:.4g} > box_atol {tol.box_atol:g}")
    unmatched = stats["unmatched_ref"] + stats["unmatched_actual"]
    if unmatched > tol.max_unmatched:
        problems.append(f"{stats['unmatched_ref']} reference and {stats['unmatched_actual']} backend detections "
                        f"unmatched at IoU>={tol.iou:g} (same class) > max_unmatched {tol.max_unmatched}")
    if not problems:
        return Comparison(True, stats)
    worst = stats["worst"]
    detail = (f"; worst match: image {worst['image']}, class {worst['label']}, IoU {worst['iou']}, score "
              f"{worst['actual_score']:.4f} vs {worst['ref_score']:.4f}, box {worst['actual_box']} vs "
              f"{worst['ref_box']}") if worst else ""
    summary = (f" [{stats['matched']} matched of {stats['ref_detections']} reference / "
               f"{stats['actual_detections']} backend detections, mean IoU {stats['mean_iou']:.4f}, "
               f"{stats['borderline']} borderline below min_score]")
    return Comparison(False, stats, f"{where}: " + "; ".join(problems) + detail + summary)


COUNT_KEYS = ("matched", "unmatched_ref", "unmatched_actual", "borderline", "ref_detections", "actual_detections")


def merge_detection_stats(agg: dict, stats: dict) -> dict:
    """Fold one case's statistics into an output's report entry: counts summed, ``max_*`` errors worst-case,
    ``mean_*`` weighted by matches (the ``deploy_report.json`` entry of a 2D or 3D detection output)."""
    if not agg:
        agg.update({"compare": "detections", "cases": 0, **{k: 0 for k in COUNT_KEYS}})
    matched = agg["matched"] + stats["matched"]
    for k, v in stats.items():
        if k.startswith("max_"):
            agg[k] = max(agg.get(k, 0.0), v)
        elif k.startswith("mean_"):
            agg[k] = (agg.get(k, 0.0) * agg["matched"] + v * stats["matched"]) / matched if matched else agg.get(k, v)
    for k in COUNT_KEYS:
        agg[k] += stats[k]
    agg["cases"] += 1
    return agg
