"""Detection matching: properties of the matching maths (hypothesis) and the comparator's verdicts."""

from __future__ import annotations

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from pytest_autoware_deploy.verify.detections import (DetectionTolerance, Detections, compare_detections,
                                                      detection_stats, iou_xyxy, match_detections,
                                                      merge_detection_stats)


@st.composite
def separated_detections(draw, max_n=8, classes=3):
    """Boxes on a coarse grid (cell 100 px, box <= 60 px) so no two boxes overlap: ground truth for matching."""
    n = draw(st.integers(0, max_n))
    cells = draw(st.lists(st.integers(0, 24), min_size=n, max_size=n, unique=True))
    boxes = []
    for c in cells:
        x0, y0 = (c % 5) * 100 + draw(st.floats(0, 30)), (c // 5) * 100 + draw(st.floats(0, 30))
        boxes.append([x0, y0, x0 + draw(st.floats(10, 60)), y0 + draw(st.floats(10, 60))])
    scores = draw(st.lists(st.floats(0.05, 1.0), min_size=n, max_size=n))
    labels = draw(st.lists(st.integers(0, classes - 1), min_size=n, max_size=n))
    return Detections(np.array(boxes).reshape(-1, 4), np.array(scores), np.array(labels))


def _take(d: Detections, idx):
    idx = np.asarray(idx, dtype=np.int64)
    return Detections(d.boxes[idx], d.scores[idx], d.labels[idx])


@given(separated_detections())
def test_identical_detections_all_match_with_zero_error(dets):
    stats = detection_stats([dets], [dets], DetectionTolerance())
    assert stats["matched"] == len(dets)
    assert stats["unmatched_ref"] == stats["unmatched_actual"] == 0
    assert stats["max_score_err"] == 0 and stats["max_box_err"] == 0
    assert stats["mean_iou"] == 1.0


@given(separated_detections(), st.randoms(use_true_random=False))
def test_matching_ignores_the_order_of_the_backend_detections(dets, rnd):
    order = list(range(len(dets)))
    rnd.shuffle(order)
    shuffled = _take(dets, order)
    assert compare_detections([dets], [shuffled], DetectionTolerance(), "w").passed
    m = match_detections(dets, shuffled, 0.5)
    assert all(order[j] == i for i, j in m.pairs)


# A 10x10 box shrunk by 1.5 px on every side keeps 7x7 of its area: IoU 0.49, below 0.5 although every
# coordinate moved less than box_atol. So jitter within box_atol is no guarantee of a match; the verdict
# follows the moved box's IoU with its own original (the boxes are separated: it can match nothing else).
SHRINK_10PX = Detections(np.array([[0.0, 0.0, 10.0, 10.0]]), np.array([0.9]), np.array([0]))


@given(separated_detections(), st.floats(0, 1.5), st.floats(0, 0.02),
       st.lists(st.sampled_from([-1.0, 1.0]), min_size=4 * 8, max_size=4 * 8))
@example(SHRINK_10PX, 1.5, 0.0, [1.0, 1.0, -1.0, -1.0] * 8)  # IoU 0.49: unmatched, fails
@example(SHRINK_10PX, 1.4, 0.0, [1.0, 1.0, -1.0, -1.0] * 8)  # IoU 0.5184: matched, passes
def test_jitter_within_tolerance_passes_exactly_when_the_moved_box_keeps_the_iou(dets, shift, score_noise, signs):
    sign = np.array(signs[:4 * len(dets)]).reshape(-1, 4)
    moved = Detections(dets.boxes + sign * shift, np.clip(dets.scores - score_noise, 0, 1), dets.labels)
    tol = DetectionTolerance(iou=0.5, score_atol=0.021, box_atol=1.51)
    res = compare_detections([dets], [moved], tol, "w")
    kept = np.diag(iou_xyxy(dets.boxes, moved.boxes)) >= tol.iou
    assert res.passed == bool(kept.all()), res.message
    if not res.passed:
        assert f"{int((~kept).sum())} reference and {int((~kept).sum())} backend detections unmatched" in res.message
    elif len(dets):
        assert np.isclose(res.stats["max_box_err"], shift)
        assert res.stats["max_score_err"] <= score_noise + 1e-12


def test_a_10px_box_shrunk_by_1_5px_per_side_is_below_iou_half_and_unmatched():
    moved = Detections(SHRINK_10PX.boxes + np.array([[1.5, 1.5, -1.5, -1.5]]), SHRINK_10PX.scores, SHRINK_10PX.labels)
    assert np.isclose(iou_xyxy(SHRINK_10PX.boxes, moved.boxes)[0, 0], 0.49)
    res = compare_detections([SHRINK_10PX], [moved], DetectionTolerance(iou=0.5, box_atol=1.51), "w")
    assert not res.passed
    assert "1 reference and 1 backend detections unmatched at IoU>=0.5" in res.message


@given(separated_detections(), separated_detections(), st.floats(0.1, 0.9))
def test_matching_is_one_to_one_class_aware_and_accounts_for_everything(ref, act, thr):
    m = match_detections(ref, act, thr)
    refs, acts = [i for i, _ in m.pairs], [j for _, j in m.pairs]
    assert len(set(refs)) == len(refs) and len(set(acts)) == len(acts)
    assert sorted(refs + m.unmatched_ref) == list(range(len(ref)))
    assert sorted(acts + m.unmatched_act) == list(range(len(act)))
    for (i, j), iou in zip(m.pairs, m.values):
        assert ref.labels[i] == act.labels[j] and iou >= thr


@given(separated_detections(max_n=8), st.data())
def test_dropped_and_relabelled_detections_are_unmatched(dets, data):
    if not len(dets):
        return
    drop = data.draw(st.sets(st.integers(0, len(dets) - 1)))
    keep = [i for i in range(len(dets)) if i not in drop]
    act = _take(dets, keep)
    stats = detection_stats([dets], [act], DetectionTolerance())
    assert stats["unmatched_ref"] == len(drop) and stats["unmatched_actual"] == 0
    relabelled = Detections(dets.boxes, dets.scores, dets.labels + 1)  # same boxes, other class: no match
    stats = detection_stats([dets], [relabelled], DetectionTolerance())
    assert stats["matched"] == 0 and stats["unmatched_ref"] == stats["unmatched_actual"] == len(dets)


@given(st.lists(st.floats(0, 100), min_size=4, max_size=4), st.lists(st.floats(0, 100), min_size=4, max_size=4))
def test_iou_is_symmetric_bounded_and_one_on_itself(a, b):
    a = [min(a[0], a[2]), min(a[1], a[3]), max(a[0], a[2]) + 1, max(a[1], a[3]) + 1]
    b = [min(b[0], b[2]), min(b[1], b[3]), max(b[0], b[2]) + 1, max(b[1], b[3]) + 1]
    ab, ba = iou_xyxy([a], [b])[0, 0], iou_xyxy([b], [a])[0, 0]
    assert np.isclose(ab, ba) and 0 <= ab <= 1
    assert np.isclose(iou_xyxy([a], [a])[0, 0], 1.0)


def test_greedy_matching_gives_the_higher_scored_reference_the_better_box():
    ref = Detections([[0, 0, 10, 10], [1, 0, 11, 10]], [0.9, 0.8], [0, 0])
    act = Detections([[1, 0, 11, 10], [0, 0, 10, 10]], [0.8, 0.9], [0, 0])
    m = match_detections(ref, act, 0.5)
    assert sorted(m.pairs) == [(0, 1), (1, 0)]


def test_borderline_detections_below_min_score_are_not_failures():
    ref = Detections([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.31], [0, 1])
    act = Detections([[0, 0, 10, 10]], [0.9], [0])  # the 0.31 one fell under the decoder's 0.3 threshold
    strict = compare_detections([ref], [act], DetectionTolerance(), "w")
    lenient = compare_detections([ref], [act], DetectionTolerance(min_score=0.35), "w")
    assert not strict.passed and lenient.passed
    assert lenient.stats["borderline"] == 1 and lenient.stats["unmatched_ref"] == 0


def test_failure_message_names_the_case_the_worst_match_and_the_tolerance():
    ref = Detections([[0, 0, 10, 10], [50, 50, 60, 60]], [0.9, 0.8], [0, 1])
    act = Detections([[0, 0, 13, 10]], [0.7], [0])
    res = compare_detections([ref], [act], DetectionTolerance(iou=0.5, score_atol=0.05, box_atol=2.0),
                             "spec s, backend onnx:int8 vs pytorch, output 'dets', sample 0, shape b1")
    assert not res.passed
    msg = res.message
    assert msg.startswith("spec s, backend onnx:int8 vs pytorch, output 'dets', sample 0, shape b1: ")
    assert "matched score error 0.2 > score_atol 0.05" in msg
    assert "matched box error 3 > box_atol 2" in msg
    assert "1 reference and 0 backend detections unmatched at IoU>=0.5 (same class) > max_unmatched 0" in msg
    assert "worst match: image 0, class 0" in msg and "[0.0, 0.0, 13.0, 10.0] vs [0.0, 0.0, 10.0, 10.0]" in msg


def test_batch_size_mismatch_is_a_failure():
    d = Detections(np.zeros((0, 4)), [], [])
    assert "2 images of detections, reference has 1" in compare_detections([d], [d, d], DetectionTolerance(),
                                                                           "w").message


def test_report_entry_sums_counts_and_keeps_the_worst_errors():
    a = {"matched": 2, "unmatched_ref": 1, "unmatched_actual": 0, "borderline": 0, "ref_detections": 3,
         "actual_detections": 2, "max_score_err": 0.1, "max_box_err": 1.0, "mean_iou": 0.9}
    b = dict(a, matched=1, unmatched_ref=0, max_score_err=0.3, max_box_err=0.5, mean_iou=0.6)
    agg = merge_detection_stats(merge_detection_stats({}, a), b)
    assert agg["matched"] == 3 and agg["unmatched_ref"] == 1 and agg["cases"] == 2
    assert agg["max_score_err"] == 0.3 and agg["max_box_err"] == 1.0
    assert np.isclose(agg["mean_iou"], (0.9 * 2 + 0.6) / 3)
