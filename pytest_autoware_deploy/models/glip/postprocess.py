"""GLIP's host post-processing after the graph: mmdet ``ATSSVLFusionHead.predict_by_feat`` from its
score threshold on (the graph already gives the decoded ``boxes`` and ``phrase_scores``): every (anchor,
phrase) pair above ``score_thr`` is a candidate, class-aware NMS per phrase, at most ``max_per_img``.
Used by the evaluator (phrase-to-box AP) and the detection comparator alike."""

from __future__ import annotations

import numpy as np

from pytest_autoware_deploy.verify.detections import Detections

from ..yolox.postprocess import nms


def postprocess(boxes, scores, score_thr=0.05, nms_iou=0.6, max_per_img=100) -> Detections:
    """One image: ``boxes (N, 4)``, ``scores (N, P)`` -> detections labelled by phrase index."""
    boxes, scores = np.asarray(boxes, np.float32), np.asarray(scores, np.float32)
    anchor, label = np.nonzero(scores >= score_thr)
    s, b = scores[anchor, label], boxes[anchor]
    kept = []
    for c in np.unique(label):
        idx = np.where(label == c)[0]
        kept.extend(idx[nms(b[idx], s[idx], nms_iou)])
    kept = np.asarray(kept, np.int64)
    kept = kept[np.argsort(-s[kept], kind="stable")][:max_per_img]
    return Detections(b[kept], s[kept], label[kept].astype(np.int64))


def decode_grounding(outputs: dict, output_name="phrase_scores", score_thr=0.05, nms_iou=0.6, max_per_img=100,
                     boxes_name="boxes"):
    """``verification.outputs`` / evaluator decoder: one Detections per image of the batch."""
    missing = [n for n in (output_name, boxes_name) if n not in outputs]
    if missing:
        raise KeyError(f"no output(s) {missing} to decode GLIP detections from (outputs: {sorted(outputs)})")
    return [postprocess(b, s, score_thr, nms_iou, max_per_img)
            for b, s in zip(np.asarray(outputs[boxes_name]), np.asarray(outputs[output_name]))]
