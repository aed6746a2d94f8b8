"""Host post-processing of the decoded YOLOX tensor: what runs after the engine in deployment.

mmdet's ``YOLOXHead.predict_by_feat``: per anchor the best class, score = objectness x class score,
``score_thr``, class-aware NMS at ``nms_iou``, at most ``max_per_img``. Applied identically to every
backend's output, by the evaluator and by the detection comparator (``verification.outputs``).
"""

from __future__ import annotations

import numpy as np

from pytest_autoware_deploy.verify.detections import Detections, iou_xyxy


def nms(boxes: np.ndarray, scores: np.ndarray, iou_thr: float) -> np.ndarray:
    """Greedy NMS; indices kept, in descending score order."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        i = order[0]
        keep.append(i)
        if order.size == 1:
            break
        ious = iou_xyxy(boxes[i:i + 1], boxes[order[1:]])[0]
        order = order[1:][ious <= iou_thr]
    return np.asarray(keep, dtype=np.int64)


def postprocess(pred: np.ndarray, score_thr=0.3, nms_iou=0.65, max_per_img=100) -> Detections:
    """One image's ``(N, 5 + C)`` rows ``[cx, cy, w, h, obj, cls...]`` -> detections (x1y1x2y2 boxes)."""
    pred = np.asarray(pred, dtype=np.float32)
    cls = pred[:, 5:]
    labels = cls.argmax(1)
    scores = pred[:, 4] * cls[np.arange(len(cls)), labels]
    keep = scores >= score_thr
    p, scores, labels = pred[keep], scores[keep], labels[keep]
    boxes = np.concatenate([p[:, :2] - p[:, 2:4] / 2, p[:, :2] + p[:, 2:4] / 2], 1)
    kept = []
    for c in np.unique(labels):  # class-aware NMS (mmdet's batched_nms)
        idx = np.where(labels == c)[0]
        kept.extend(idx[nms(boxes[idx], scores[idx], nms_iou)])
    kept = np.asarray(kept, dtype=np.int64)
    kept = kept[np.argsort(-scores[kept], kind="stable")][:max_per_img]
    return Detections(boxes[kept], scores[kept], labels[kept])


def decode_detections(outputs: dict, output_name="output", score_thr=0.3, nms_iou=0.65, max_per_img=100):
    """``verification.outputs`` decoder: one Detections per batch element of ``outputs[output_name]``."""
    if output_name not in outputs:
        raise KeyError(f"no output '{output_name}' to decode detections from (outputs: {sorted(outputs)})")
    return [postprocess(p, score_thr, nms_iou, max_per_img) for p in np.asarray(outputs[output_name])]
