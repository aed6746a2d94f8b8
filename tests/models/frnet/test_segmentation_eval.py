"""The segmentation evaluator (mIoU as mmdet3d's seg_eval) and the per-point comparator (verification.outputs
compare='points')."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pytest_autoware_deploy.evaluate.segmentation3d import Segmentation3DEvaluator
from pytest_autoware_deploy.verify.points import PointTolerance, compare_points, points_from_outputs

NAMES = ["ground", "car", "bicycle", "pedestrian"]


def _labels(n):
    return arrays(np.int64, n, elements=st.integers(0, 3))


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 200).flatmap(lambda n: st.tuples(_labels(n), _labels(n))))
def test_iou_is_intersection_over_union_of_point_sets(pair):
    gt, pred = pair
    ev = Segmentation3DEvaluator(NAMES)
    half = len(gt) // 2  # two frames accumulate like one
    ev.update({"labels": pred[:half]}, {"labels": gt[:half]})
    ev.update({"labels": pred[half:]}, gt[half:])
    res = ev.compute()
    ious = []
    for c, name in enumerate(NAMES):
        inter, union = np.sum((gt == c) & (pred == c)), np.sum((gt == c) | (pred == c))
        if union:
            assert res["per_class_iou"][name] == pytest.approx(inter / union)
            ious.append(inter / union)
        else:
            assert res["per_class_iou"][name] is None  # absent from both: not in the mean
    assert res["mIoU"] == pytest.approx(np.mean(ious))
    assert res["accuracy"] == pytest.approx(np.mean(gt == pred))
    assert res["num_points"] == len(gt) and np.sum(res["confusion_matrix"]) == len(gt)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 100).flatmap(_labels), st.permutations(range(4)))
def test_perfect_prediction_scores_one_and_a_relabelling_does_not(gt, perm):
    ev = Segmentation3DEvaluator(NAMES)
    ev.update({"labels": gt}, gt)
    assert ev.compute()["mIoU"] == 1.0
    ev = Segmentation3DEvaluator(NAMES)
    swapped = np.asarray(perm)[gt]
    ev.update({"labels": swapped}, gt)
    assert ev.compute()["mIoU"] <= 1.0
    if (swapped != gt).any():
        assert ev.compute()["mIoU"] < 1.0


def test_ignore_index_counts_nowhere_and_scores_give_labels():
    ev = Segmentation3DEvaluator(NAMES, ignore_index=4)
    gt = np.array([0, 1, 4, 4, 2])
    probs = np.eye(4)[[0, 1, 3, 3, 1]]
    ev.update({"pred_probs": probs}, {"labels": gt})  # no 'labels' output: argmax of the (N, C) scores
    res = ev.compute()
    assert res["num_points"] == 3 and res["IoU_ground"] == 1.0 and res["IoU_car"] == 0.5
    assert res["per_class_iou"]["pedestrian"] is None


def test_bad_inputs_are_one_clear_error(tmp_path):
    ev = Segmentation3DEvaluator(NAMES)
    with pytest.raises(ValueError, match="3 labelled points but 2 predictions"):
        ev.update({"labels": np.zeros(2)}, np.zeros(3))
    with pytest.raises(ValueError, match=r"ground-truth label 7 outside the 4 classes"):
        ev.update({"labels": np.zeros(1)}, np.array([7]))
    with pytest.raises(ValueError, match="primary_metric 'mAP'"):
        Segmentation3DEvaluator(NAMES, primary_metric="mAP")
    ev.update({"labels": np.array([0, 1, 1])}, np.array([0, 1, 2]))
    paths = ev.plot(ev.compute(), tmp_path, "frnet/onnx")
    assert paths[0].is_file() and paths[0].stat().st_size > 1000


def _probs(rng, n, c=4):
    x = rng.random((n, c))
    return x / x.sum(1, keepdims=True)


def test_points_comparator_passes_identical_and_names_a_flipped_label():
    rng = np.random.default_rng(0)
    ref = _probs(rng, 500)
    tol = PointTolerance(min_agreement=0.999, score_atol=0.01, margin=0.0)
    ok = compare_points(points_from_outputs({"pred_probs": ref}), points_from_outputs({"pred_probs": ref.copy()}),
                        tol, "here")
    assert ok.passed and ok.stats["matched"] == 500 and ok.stats["agreement"] == 1.0
    act = ref.copy()
    i = int(np.argmax(ref.max(1) - np.sort(ref, 1)[:, -2]))  # a clear winner, moved to another class
    act[i] = act[i][::-1]
    bad = compare_points(points_from_outputs({"pred_probs": ref}), points_from_outputs({"pred_probs": act}),
                         tol, "spec frnet, output 'pred_probs'")
    assert not bad.passed
    assert "label agreement 0.99800 (1 of 500 points differ) < min_agreement 0.999" in bad.message
    assert f"point {i}" in bad.message and "score error" in bad.message


def test_near_ties_are_borderline_not_failures():
    ref = np.array([[0.5, 0.4999, 0.0001, 0.0], [0.9, 0.05, 0.05, 0.0]])
    act = np.array([[0.4999, 0.5, 0.0001, 0.0], [0.9, 0.05, 0.05, 0.0]])
    res = compare_points([points_from_outputs({"s": ref}, scores="s")[0]], points_from_outputs({"s": act}, "s"),
                         PointTolerance(min_agreement=1.0, score_atol=1e-3, margin=1e-3), "here")
    assert res.passed and res.stats["borderline"] == 1 and res.stats["unmatched_ref"] == 0
    res = compare_points(points_from_outputs({"s": ref}, "s"), points_from_outputs({"s": act}, "s"),
                         PointTolerance(min_agreement=1.0, score_atol=1e-3, margin=0.0), "here")
    assert not res.passed


def test_a_dropped_point_is_a_shape_failure():
    ref = np.full((3, 2), 0.5)
    res = compare_points(points_from_outputs({"p": ref}, "p"), points_from_outputs({"p": ref[:2]}, "p"),
                         PointTolerance(), "here")
    assert not res.passed and "[2] points per frame, reference has [3]" in res.message


def test_points_is_a_comparator_of_verification_outputs():
    from pytest_autoware_deploy.verify.output_checks import COMPARATORS, DETECTION_COMPARATORS

    assert "points" in COMPARATORS and DETECTION_COMPARATORS["points"][0] is PointTolerance
