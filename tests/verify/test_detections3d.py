"""3D detection comparator: centre-distance matching and per-parameter errors (hypothesis properties)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoware_deploy.verify.detections import Detections
from pytest_autoware_deploy.verify.detections3d import (Detection3DTolerance, compare_detections3d,
                                                        detections_from_outputs, match_by_center, wrap_angle)

box = st.tuples(st.floats(-50, 50), st.floats(-50, 50), st.floats(-2, 0), st.floats(0.5, 5), st.floats(0.5, 3),
                st.floats(1, 2), st.floats(-np.pi, np.pi), st.floats(-5, 5), st.floats(-5, 5))
dets = st.lists(st.tuples(box, st.floats(0.1, 1), st.integers(0, 2)), max_size=12)


def _dets(items):
    return Detections(np.array([b for b, _, _ in items]).reshape(-1, 9), [s for _, s, _ in items],
                      [lab for _, _, lab in items])


def _separated(items, gap=3.0):
    kept = []
    for it in items:
        if all(np.hypot(it[0][0] - k[0][0], it[0][1] - k[0][1]) > gap for k in kept):
            kept.append(it)
    return kept


@settings(max_examples=60, deadline=None)
@given(dets, st.randoms(use_true_random=False))
def test_identical_detections_in_any_order_pass_with_zero_error(items, rnd):
    items = _separated(items)  # two boxes on one centre are ambiguous by construction
    shuffled = list(items)
    rnd.shuffle(shuffled)
    cmp = compare_detections3d([_dets(items)], [_dets(shuffled)], Detection3DTolerance(center_atol=1e-9,
                               size_atol=1e-9, yaw_atol=1e-9, velocity_atol=1e-9, score_atol=1e-9), "w")
    assert cmp.passed, cmp.message
    assert cmp.stats["matched"] == len(items) and cmp.stats["max_center_err"] == 0


@settings(max_examples=60, deadline=None)
@given(dets, st.floats(0.0, 0.3), st.floats(0.0, 0.3))
def test_errors_within_tolerance_pass_and_beyond_fail_naming_the_parameter(items, shift, dyaw):
    items = _separated(items)
    ref = _dets(items)
    act = _dets([((b[0] + shift, *b[1:6], b[6] + dyaw + 2 * np.pi, *b[7:]), s, lab) for b, s, lab in items])
    tol = Detection3DTolerance(center_atol=0.31, yaw_atol=0.31)
    assert compare_detections3d([ref], [act], tol, "w").passed  # the 2 pi wrap is no error
    if items and dyaw > 0.05:
        tight = Detection3DTolerance(center_atol=0.31, yaw_atol=dyaw / 2)
        cmp = compare_detections3d([ref], [act], tight, "spec x, backend onnx")
        assert not cmp.passed and "matched yaw error" in cmp.message and cmp.message.startswith("spec x, backend onnx")


@settings(max_examples=60, deadline=None)
@given(dets)
def test_a_changed_class_is_two_unmatched_detections(items):
    items = _separated(items)
    if not items:
        return
    (b, s, lab), rest = items[0], items[1:]
    ref, act = _dets(items), _dets([(b, s, (lab + 1) % 3)] + rest)
    cmp = compare_detections3d([ref], [act], Detection3DTolerance(), "w")
    assert cmp.stats["unmatched_ref"] == cmp.stats["unmatched_actual"] == 1
    assert not cmp.passed and "unmatched within 1 m (same class) > max_unmatched 0" in cmp.message
    assert compare_detections3d([ref], [act], Detection3DTolerance(max_unmatched=2), "w").passed
    assert compare_detections3d([ref], [act], Detection3DTolerance(min_score=1.01), "w").stats["borderline"] == 2


def test_matching_takes_the_nearest_free_box_by_descending_reference_score():
    ref = Detections(np.array([[0, 0, 0, 4, 2, 1.5, 0, 0, 0], [1.0, 0, 0, 4, 2, 1.5, 0, 0, 0]]), [0.5, 0.9], [0, 0])
    act = Detections(np.array([[0.9, 0, 0, 4, 2, 1.5, 0, 0, 0], [0.2, 0, 0, 4, 2, 1.5, 0, 0, 0]]), [0.9, 0.5], [0, 0])
    m = match_by_center(ref, act, 1.0)
    assert sorted(m.pairs) == [(0, 1), (1, 0)] and not m.unmatched_ref and not m.unmatched_act
    assert wrap_angle(np.pi + 0.1, np.pi) == pytest.approx(0.1)  # yaw_period=pi ignores a flipped heading


def test_frame_count_mismatch_and_outputs_decoder():
    out = {"boxes_3d": np.zeros((2, 9), np.float32), "scores": np.array([0.5, 0.4]), "labels": np.array([0, 1])}
    d = detections_from_outputs(out)
    assert len(d) == 1 and len(d[0]) == 2
    cmp = compare_detections3d(d, d + d, Detection3DTolerance(), "spec s")
    assert not cmp.passed and "2 frames of detections, reference has 1" in cmp.message


@settings(max_examples=200, deadline=None)
@given(st.floats(1e-3, 1.5), st.floats(-np.pi, np.pi), st.floats(0, 0.5), st.floats(-np.pi, np.pi))
def test_yaw_error_is_weighed_by_the_reference_heading_magnitude(r, yaw, e, e_dir):
    """An error ``e`` in the head's (sin, cos) turns the yaw by up to ~e / r: weighed by min(1, r), the checked
    yaw error stays within (pi / 2) e while e < r, whatever the magnitude; r >= 1 checks the angle itself."""
    from pytest_autoware_deploy.models.lidar_common.boxes import yaw_from_heading
    from pytest_autoware_deploy.verify.detections3d import match_errors

    sin_r, cos_r = r * np.sin(yaw), r * np.cos(yaw)
    yaw_r, norm_r = yaw_from_heading(sin_r, cos_r)
    yaw_a, _ = yaw_from_heading(sin_r + e * np.sin(e_dir), cos_r + e * np.cos(e_dir))
    box = np.array([0, 0, 0, 4, 2, 1.5, 0, 0, 0], np.float64)
    err = match_errors(np.r_[box[:6], yaw_r, box[7:]], np.r_[box[:6], yaw_a, box[7:]], 0.5, 0.5,
                       heading_norm=norm_r)
    assert norm_r == pytest.approx(r)
    if e < r:
        assert err["yaw"] <= np.pi / 2 * e + 1e-9
    if r >= 1:
        assert err["yaw"] == err["yaw_angle"]
    assert err["yaw"] <= err["yaw_angle"] + 1e-12


def test_a_committed_heading_that_turns_fails_and_an_uncommitted_one_is_reported_with_its_magnitude():
    box = np.array([[5.0, 5, 0, 4, 2, 1.5, 0.2, 0, 0]])
    turned = box.copy()
    turned[0, 6] += 0.5
    tol = Detection3DTolerance(yaw_atol=0.1)
    committed = compare_detections3d([Detections(box, [0.9], [0], [0.98])], [Detections(turned, [0.9], [0])], tol,
                                     "w")
    assert not committed.passed and "matched yaw error (x min(1, heading magnitude)) 0.49" in committed.message
    assert "yaw 0.5 rad at heading magnitude 0.98" in committed.message
    loose = compare_detections3d([Detections(box, [0.9], [0], [0.03])], [Detections(turned, [0.9], [0])], tol, "w")
    assert loose.passed and loose.stats["max_yaw_angle_err"] == pytest.approx(0.5)
    assert loose.stats["max_yaw_err"] == pytest.approx(0.015)
    no_norm = compare_detections3d([Detections(box, [0.9], [0])], [Detections(turned, [0.9], [0])], tol, "w")
    assert not no_norm.passed and "matched yaw error 0.5 > yaw_atol 0.1" in no_norm.message
    out = {"boxes_3d": box, "scores": [0.9], "labels": [0], "heading_norm": np.array([0.5], np.float32)}
    assert detections_from_outputs(out)[0].heading_norm.tolist() == [0.5]
    with pytest.raises(ValueError, match="1 boxes and 2 heading norms"):
        Detections(box, [0.9], [0], [0.5, 0.5])
