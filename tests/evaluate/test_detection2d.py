"""COCO mAP through faster-coco-eval on hand-made detections, and the rendered examples."""

from __future__ import annotations

import numpy as np
import pytest

from pytest_autoware_deploy.evaluate.detection2d import Detection2DEvaluator
from pytest_autoware_deploy.registry import evaluator_ref


def _dense(boxes, scores, labels, num_classes=2, n=6):
    """A decoded YOLOX tensor (1, n, 5 + C) holding these detections (cx, cy, w, h, obj=1, one-hot * score)."""
    out = np.zeros((1, n, 5 + num_classes), np.float32)
    for k, (b, s, c) in enumerate(zip(boxes, scores, labels)):
        out[0, k, :4] = [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2, b[2] - b[0], b[3] - b[1]]
        out[0, k, 4] = 1.0
        out[0, k, 5 + c] = s
    return {"output": out}


GT = [{"image_id": 1, "boxes": np.array([[10, 10, 50, 40], [60, 60, 90, 100]], np.float32), "labels": np.array([0, 1])},
      {"image_id": 2, "boxes": np.array([[5, 5, 30, 30]], np.float32), "labels": np.array([1])}]


def _run(preds, primary="mAP"):
    ev = Detection2DEvaluator(class_names=["a", "b"], primary_metric=primary)
    for p, t in zip(preds, GT):
        ev.update(_dense(*p), t)
    return ev, ev.compute()


def test_perfect_detections_score_one():
    _, r = _run([(GT[0]["boxes"], [0.9, 0.8], [0, 1]), (GT[1]["boxes"], [0.7], [1])])
    assert r["mAP"] == pytest.approx(1.0) and r["AP50"] == pytest.approx(1.0)
    assert r["per_class"] == {"a": pytest.approx(1.0), "b": pytest.approx(1.0)}
    assert r["num_gt"] == 3 and r["num_detections"] == 3 and r["num_samples"] == 2


def test_a_missed_class_halves_map_and_shows_per_class():
    _, r = _run([(GT[0]["boxes"][:1], [0.9], [0]), (np.zeros((0, 4)), [], [])])
    assert r["per_class"]["a"] == pytest.approx(1.0) and r["per_class"]["b"] == pytest.approx(0.0)
    assert r["mAP"] == pytest.approx(0.5)


def test_loose_boxes_count_at_ap50_not_at_ap75():
    shifted = GT[0]["boxes"] + np.array([6, 0, 6, 0], np.float32)  # IoU ~0.7 (box a) and ~0.67 (box b)
    _, r = _run([(shifted, [0.9, 0.8], [0, 1]), (GT[1]["boxes"], [0.7], [1])], primary="AP50")
    assert r["AP50"] == pytest.approx(1.0) and r["AP75"] < 0.7 and r["mAP"] < r["AP50"]


def test_no_detections_is_zero_not_an_error():
    _, r = _run([(np.zeros((0, 4)), [], []), (np.zeros((0, 4)), [], [])])
    assert r["mAP"] == 0.0 and r["num_detections"] == 0


def test_plot_draws_the_examples(tmp_path):
    from PIL import Image

    img = tmp_path / "im.png"
    Image.fromarray(np.zeros((120, 120, 3), np.uint8)).save(img)
    ev = Detection2DEvaluator(class_names=["a", "b"])
    ev.update(_dense(GT[0]["boxes"], [0.9, 0.8], [0, 1]), dict(GT[0], file=str(img)))
    paths = ev.plot(ev.compute(), tmp_path / "fig", "spec/onnx:int8")
    assert len(paths) == 1 and paths[0].stat().st_size > 1000


def test_registered_by_name_and_rejects_unknown_metric():
    assert evaluator_ref("detection2d").endswith("detection2d:Detection2DEvaluator")
    with pytest.raises(TypeError, match="primary_metric 'AP42'"):
        Detection2DEvaluator(class_names=["a"], primary_metric="AP42")
