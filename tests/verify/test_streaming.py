"""Streaming agreement over every evaluated sample: the maths (hypothesis) and real planted divergences."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pytest_autoware_deploy.verify.compare import Comparison
from pytest_autoware_deploy.verify.detections import DetectionTolerance, Detections, compare_detections
from pytest_autoware_deploy.verify.stats import tolerance_ratio
from pytest_autoware_deploy.verify.streaming import (BackendAgreement, Criterion, DetectionAgreement, Limit,
                                                     OutputAgreement, batch_invariance, check_sample, limit_for,
                                                     parse_statistic)

from . import planted
from .planted import torch_one_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("torch_one_thread")

finite = st.floats(-100, 100, allow_nan=False, width=32)
tols = st.tuples(st.floats(0, 1), st.floats(0, 0.5))


# -- the per-sample maths ----------------------------------------------------------------------------------
@given(ref=arrays(np.float64, st.integers(1, 30), elements=finite), tol=tols, data=st.data())
def test_tolerance_ratio_is_the_allclose_rule(ref, tol, data):
    atol, rtol = tol
    act = ref + data.draw(arrays(np.float64, ref.shape, elements=st.floats(-3, 3))) * (atol + 1e-3)
    ratio = tolerance_ratio(ref, act, atol, rtol)
    assert not np.isnan(ratio).any()
    np.testing.assert_array_equal(ratio <= 1, np.abs(act - ref) <= atol + rtol * np.abs(ref))


def test_tolerance_ratio_new_nonfinite_fails_and_shared_is_not_judged():
    ref = np.array([1.0, np.nan, 2.0, np.inf])
    act = np.array([np.nan, np.nan, np.inf, 5.0])
    np.testing.assert_array_equal(tolerance_ratio(ref, act, 1e-3, 0), [np.inf, 0, np.inf, 0])


@given(q=st.floats(0.0001, 100, allow_nan=False))
def test_parse_statistic_round_trips_percentiles(q):
    canonical = parse_statistic(f"p{q!r}")
    assert canonical == parse_statistic(canonical)
    assert canonical == "max" or abs(float(canonical[1:]) - q) <= 1e-6 * max(1, q)


@pytest.mark.parametrize("bad", ["p0", "p101", "median", "", -0.5, 0, 1.5, True, None, "q99"])
def test_parse_statistic_rejects_with_what_is_accepted(bad):
    with pytest.raises(ValueError, match=r"expected 'max', 'mean', 'pQ'"):
        parse_statistic(bad)


@settings(max_examples=150)
@given(ratio=arrays(np.float64, st.integers(1, 80), elements=st.floats(0, 3)), m=st.integers(1, 64))
def test_quantile_statistic_bounds_the_fraction_of_elements_over_tolerance(ratio, m):
    q = m / 64  # exact in binary, so the count is exact too
    crit = Criterion(0.1, 0.0, statistic=q)
    allowed_bad = math.floor((1 - q) * ratio.size)
    assert (crit.score(ratio) <= 1) == (int((ratio > 1).sum()) <= allowed_bad)


@given(ref=arrays(np.float64, st.integers(1, 30), elements=finite), data=st.data(), tol=tols)
def test_mean_statistic_is_mean_error_against_mean_allowance(ref, data, tol):
    act = ref + data.draw(arrays(np.float64, ref.shape, elements=st.floats(-2, 2)))
    check = check_sample(ref, act, Criterion(*tol, statistic="mean"))
    expected = np.abs(act - ref).mean() <= tol[0] + tol[1] * np.abs(ref).mean()
    assert check.passed == expected or math.isclose(check.score, 1.0, rel_tol=1e-9)


def test_criterion_rejects_negative_tolerance():
    with pytest.raises(ValueError, match="atol and rtol must be >= 0"):
        Criterion(-1e-3, 0)


def test_new_nan_fails_whatever_the_statistic():
    ref, act = np.zeros(1000), np.zeros(1000)
    act[3] = np.nan
    for stat in ("max", "mean", "p99"):
        check = check_sample(ref, act, Criterion(1e-3, 0, statistic=stat))
        assert not check.passed and check.stats["new_nan"] == 1


def test_quantile_tolerates_a_few_outliers_max_does_not():
    ref = np.zeros(1000)
    act = ref.copy()
    act[:5] = 1.0  # 0.5% of the elements far off
    assert check_sample(ref, act, Criterion(1e-3, 0, statistic="p99")).passed
    assert not check_sample(ref, act, Criterion(1e-3, 0, statistic="p99.9")).passed
    assert not check_sample(ref, act, Criterion(1e-3, 0)).passed


# -- the streaming bookkeeping -----------------------------------------------------------------------------
samples_st = st.lists(st.tuples(arrays(np.float64, 4, elements=st.floats(-10, 10)),
                                arrays(np.float64, 4, elements=st.floats(-0.02, 0.02))), min_size=1, max_size=25)


def _stream(pairs, start=0, k=3, crit=Criterion(0.01, 0.0)):
    acc = OutputAgreement("out", crit, k=k, top1_axis=-1)
    for i, (ref, noise) in enumerate(pairs):
        acc.update(start + i, ref, ref + noise)
    return acc


@given(pairs=samples_st)
def test_streaming_equals_the_batch_computation(pairs):
    crit = Criterion(0.01, 0.0)
    acc = _stream(pairs, crit=crit)
    checks = [check_sample(r, r + n, crit, i) for i, (r, n) in enumerate(pairs)]
    assert acc.samples == len(pairs)
    assert acc.failed == sum(not c.passed for c in checks)
    assert acc.first_failed == next((c.sample for c in checks if not c.passed), None)
    diffs = np.abs(np.stack([n for _, n in pairs]))
    assert acc.max_abs == pytest.approx(diffs.max())
    assert acc.mean_abs == pytest.approx(diffs.mean())
    expected_worst = sorted(checks, key=lambda c: (not c.passed, c.score, -c.sample), reverse=True)[:3]
    assert [c.sample for c in acc.worst.items()] == [c.sample for c in expected_worst]
    refs, acts = np.stack([r for r, _ in pairs]), np.stack([r + n for r, n in pairs])
    assert acc.top1_agree == int((refs.argmax(-1) == acts.argmax(-1)).sum())
    assert acc.top1_rows == len(pairs)


@given(pairs=samples_st, cut=st.integers(0, 25))
def test_merging_two_streams_equals_one_stream(pairs, cut):
    cut = min(cut, len(pairs))
    whole = _stream(pairs).to_dict()
    merged = _stream(pairs[:cut]).merge(_stream(pairs[cut:], start=cut)).to_dict()
    assert merged.pop("mean_abs") == pytest.approx(whole.pop("mean_abs"))
    assert merged == whole


def test_memory_is_flat_in_the_sample_count():
    acc = _stream([(np.arange(4.0), np.full(4, 0.5 if i % 7 == 0 else 0.0)) for i in range(2000)], k=4)
    assert acc.failed == 286 and len(acc.worst) == 4 and len(acc.top1_worst) == 0
    assert [c.sample for c in acc.worst.items()] == [0, 7, 14, 21]  # ties: lowest sample index first


@given(n=st.integers(1, 500), failed=st.integers(0, 500), rate=st.floats(0, 1))
def test_limit_allows_floor_of_rate_times_samples(n, failed, rate):
    failed = min(failed, n)
    acc = OutputAgreement("out", Criterion())
    acc.samples, acc.failed = n, failed
    assert acc.verdict(Limit(rate)).passed == (failed <= math.floor(rate * n + 1e-9))


def test_no_sample_is_never_a_pass():
    verdict = OutputAgreement("out", Criterion()).verdict()
    assert not verdict.passed and "no sample was compared" in verdict.message


def test_policy_limits_none_for_fp32_a_rate_for_reduced_precision():
    assert limit_for("auto") == limit_for(None) == limit_for("fp32_tf32") == Limit(0.0, None, None)
    assert 0 < limit_for("fp16").max_failed_rate < limit_for("int8").max_failed_rate


def test_top1_disagreements_ranked_by_reference_margin():
    acc = OutputAgreement("logits", Criterion(10.0, 0), top1_axis=-1)
    acc.update(0, np.array([[1.0, 0.9]]), np.array([[0.9, 1.0]]))    # near tie flipped
    acc.update(1, np.array([[5.0, 0.0]]), np.array([[0.0, 5.0]]))    # confident answer flipped
    acc.update(2, np.array([[0.0, 1.0]]), np.array([[0.0, 1.0]]))
    verdict = acc.verdict(Limit(min_top1=0.9))
    assert not verdict.passed
    assert "top-1 agreement 1/3 (33.33%) < 90.00%" in verdict.message
    assert [d["sample"] for d in acc.top1_worst.items()] == [1, 0]


# -- real models: every sample judged ----------------------------------------------------------------------
@pytest.fixture(scope="module")
def net_graph(tmp_path_factory):
    net = planted.build_net()
    path = planted.export(net, planted.images(1)[0], tmp_path_factory.mktemp("streaming") / "net.onnx")
    return net, path


def _agreement(net, model, xs, crit=Criterion(1e-4, 1e-3)):
    session = planted.ort_session(model)
    agreement = BackendAgreement("onnx", "pytorch", crit, classifier_outputs=("logits",))
    for i, x in enumerate(xs):
        agreement.update(i, {"logits": planted.torch_outputs(net, x)}, {"logits": session.run(None, {"x": x})[0]})
    return agreement


def test_clean_export_raises_no_alarm_over_every_sample(net_graph):
    net, path = net_graph
    agreement = _agreement(net, planted.onnx.load(str(path)), planted.images(50))
    verdict = agreement.verdicts()["logits"]
    assert verdict.passed, verdict.message
    assert verdict.summary["samples"] == 50 and verdict.summary["top1"]["rate"] == 1.0


def test_one_frame_in_two_hundred_fails_and_is_named(net_graph):
    net, path = net_graph
    xs = planted.images(200, seed=1)
    xs[137][0, 1, 5, 5] = 9.0  # the only sample over the planted branch's threshold
    model = planted.plant_data_dependent(planted.onnx.load(str(path)), threshold=6.0)
    agreement = _agreement(net, model, xs)
    first_three = _agreement(net, model, xs[:3]).verdicts()["logits"]
    assert first_three.passed  # what verification.num_samples=3 saw
    verdict = agreement.verdicts()["logits"]
    assert not verdict.passed
    assert verdict.message.startswith("backend onnx vs pytorch, output 'logits': 1 of 200 samples (0.50%) break "
                                      "atol=0.0001, rtol=0.001 (statistic max); allowed 0")
    assert "worst samples: 137\n    #137 max_abs=3" in verdict.message
    assert verdict.summary["first_failed"] == 137 and verdict.summary["worst"][0]["sample"] == 137


def test_missing_output_fails_the_sample_with_its_name():
    agreement = BackendAgreement("onnx", "pytorch", Criterion())
    agreement.update(0, {"logits": np.zeros(3)}, {"scores": np.zeros(3)})
    verdict = agreement.verdicts()["logits"]
    assert not verdict.passed and "backend produced no output 'logits' (got ['scores'])" in verdict.message


def test_batch_invariance_catches_batchnorm_left_in_training_mode():
    net = planted.build_net()
    xs = planted.images(4, seed=3)

    def infer(feed):
        with torch.no_grad():
            return {"logits": net(torch.from_numpy(feed["x"])).numpy()}

    clean = batch_invariance(infer, [{"x": x} for x in xs], Criterion(1e-4, 1e-3))
    assert clean["logits"].verdict().passed
    net.train()  # batch statistics: each sample's output depends on the others in its batch
    broken = batch_invariance(infer, [{"x": x} for x in xs], Criterion(1e-4, 1e-3))["logits"].verdict()
    assert not broken.passed
    assert broken.message.startswith("output 'logits', batch of 4 vs one by one: 4 of 4 samples")


def test_batch_invariance_rejects_outputs_without_a_batch_axis():
    with pytest.raises(ValueError, match="output 'n' has shape \\(\\): its first axis is not the batch"):
        batch_invariance(lambda feed: {"n": np.float32(1)}, [{"x": np.zeros((1, 2))}], Criterion())


def test_detection_agreement_counts_matches_and_names_the_failing_sample():
    tol = DetectionTolerance(iou=0.5, score_atol=0.05, box_atol=2.0)
    box = np.array([[10.0, 10.0, 50.0, 50.0], [60.0, 60.0, 90.0, 90.0]])
    ref = Detections(box, [0.9, 0.8], [0, 1])
    acc = DetectionAgreement("dets", where="backend onnx:int8 vs pytorch, output 'dets'")
    for i in range(40):
        act = Detections(box[:1], [0.9], [0]) if i == 23 else Detections(box + 0.5, [0.88, 0.81], [0, 1])
        acc.add(i, compare_detections([ref], [act], tol, f"sample {i}"))
    assert acc.match_rate == pytest.approx(79 / 80)
    verdict = acc.verdict(Limit(0.0, min_match_rate=0.99))
    assert not verdict.passed
    assert "1 of 40 samples (2.50%) fail the detection match; allowed 0" in verdict.message
    assert "match rate 79/80 (98.75%) < 99.00%" in verdict.message
    assert "worst samples: 23\n    #23: sample 23: 1 reference and 0 backend detections unmatched" in verdict.message
    assert acc.verdict(limit_for("int8")).passed  # 2.5% of samples is within int8's rate
    merged = DetectionAgreement("dets").merge(acc)
    assert merged.to_dict()["matched"] == 79 and merged.first_failed == 23


def test_detection_agreement_takes_any_comparison():
    acc = DetectionAgreement("boxes")
    acc.add(0, Comparison(True, {"matched": 3, "ref_detections": 3, "max_center_err": 0.01}))
    assert acc.verdict().passed and acc.to_dict()["max_center_err"] == 0.01


def test_detection_agreement_with_no_detection_on_either_side_says_nothing_was_compared():
    tol = DetectionTolerance(iou=0.5, score_atol=0.05, box_atol=2.0)
    empty = Detections(np.zeros((0, 4)), [], [])
    acc = DetectionAgreement("boxes_3d", where="output 'boxes_3d'")
    for i in range(3):
        acc.add(i, compare_detections([empty], [empty], tol, f"sample {i}"))
    verdict = acc.verdict()
    assert verdict.passed and verdict.nothing_compared.startswith(
        "output 'boxes_3d': no detection on either side over 3 sample(s), so nothing was compared")
    one = Detections(np.array([[0.0, 0, 10, 10]]), [0.9], [0])
    acc.add(3, compare_detections([one], [one], tol, "sample 3"))  # one compared box makes it a claim
    assert acc.verdict().passed and acc.verdict().nothing_compared == ""
    lost = DetectionAgreement("boxes_3d")
    lost.add(0, compare_detections([empty], [one], tol, "sample 0"))  # detections on one side only: a failure
    assert not lost.verdict().passed and lost.verdict().nothing_compared == ""
