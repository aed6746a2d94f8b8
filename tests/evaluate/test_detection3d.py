"""nuScenes-style BEV mAP: exact on known cases, invariances (hypothesis), and equal to nuscenes-devkit."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoware_deploy.evaluate.base import make_evaluator  # noqa: F401  (the registry path below)
from pytest_autoware_deploy.evaluate.detection3d import Detection3DEvaluator
from pytest_autoware_deploy.registry import evaluator_ref

CLASSES = ["car", "pedestrian"]


def _box(x, y, yaw=0.0, l=4.0, w=2.0, h=1.5, vx=0.0, vy=0.0):
    return [x, y, -1.8, l, w, h, yaw, vx, vy]


def _frames(seed, n_frames=4):
    """Random ground truth and noisy detections (some missed, some false), per frame."""
    rng = np.random.default_rng(seed)
    frames = []
    for _ in range(n_frames):
        n = rng.integers(0, 6)
        gt = np.array([_box(*rng.uniform(-30, 30, 2), rng.uniform(-3, 3), *rng.uniform([3, 1.5, 1.2], [5, 2.2, 1.9]),
                            *rng.normal(0, 1, 2)) for _ in range(n)]).reshape(-1, 9)
        gl = rng.integers(0, 2, n)
        keep = rng.random(n) < 0.8
        det = gt[keep] + np.concatenate([rng.normal(0, 0.8, (keep.sum(), 2)), np.zeros((keep.sum(), 1)),
                                         rng.normal(0, 0.2, (keep.sum(), 3)), rng.normal(0, 0.3, (keep.sum(), 3))], 1)
        fp = rng.integers(0, 3)
        det = np.concatenate([det, np.array([_box(*rng.uniform(-30, 30, 2)) for _ in range(fp)]).reshape(-1, 9)])
        dl = np.concatenate([gl[keep], rng.integers(0, 2, fp)])
        frames.append((gt, gl, det, rng.random(len(det)), dl))
    return frames


def _evaluate(frames, **kw):
    ev = Detection3DEvaluator(CLASSES, **kw)
    for gt, gl, det, sc, dl in frames:
        ev.update({"boxes_3d": det, "scores": sc, "labels": dl}, {"boxes_3d": gt, "labels": gl})
    return ev.compute()


def test_perfect_detections_score_one_and_registry_knows_the_evaluator():
    assert evaluator_ref("detection3d").endswith("detection3d:Detection3DEvaluator")
    gt = np.array([_box(5, 5), _box(-10, 3, yaw=1.0)])
    res = _evaluate([(gt, np.array([0, 1]), gt, np.array([0.9, 0.8]), np.array([0, 1]))])
    assert res["mAP"] == pytest.approx(1.0) and res["mATE"] == pytest.approx(0.0) and res["NDS"] == pytest.approx(1.0)


def test_distance_thresholds_and_errors_on_a_known_offset():
    gt = np.array([_box(0, 0)])
    det = np.array([_box(0.8, 0, yaw=0.3, l=5.0)])  # 0.8 m off: a miss at 0.5 m, a hit at 1, 2, 4 m
    res = _evaluate([(gt, np.array([0]), det, np.array([0.9]), np.array([0]))])["per_class_detail"]["car"]
    assert res["AP@0.5m"] == 0.0 and res["AP@1m"] == pytest.approx(1.0) and res["AP"] == pytest.approx(0.75)
    assert res["ATE"] == pytest.approx(0.8) and res["AOE"] == pytest.approx(0.3)
    assert res["ASE"] == pytest.approx(1 - 4 / 5)


def test_class_awareness_and_zero_point_ground_truth():
    gt = np.array([_box(0, 0), _box(10, 0)])
    det = np.array([_box(0, 0)])
    res = _evaluate([(gt, np.array([0, 0]), det, np.array([0.9]), np.array([1]))])  # right place, wrong class
    assert res["AP_car"] == 0.0
    ev = Detection3DEvaluator(CLASSES)
    ev.update({"boxes_3d": det, "scores": [0.9], "labels": [0]},
              {"boxes_3d": gt, "labels": [0, 0], "num_points": [12, 0]})  # the unseen car is not evaluated
    assert ev.compute()["AP_car"] == pytest.approx(1.0)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 10_000))
def test_ap_ignores_frame_order_and_never_gains_from_a_false_positive(seed):
    frames = _frames(seed)
    base = _evaluate(frames)
    assert 0.0 <= base["mAP"] <= 1.0
    assert _evaluate(frames[::-1])["mAP"] == pytest.approx(base["mAP"])
    gt, gl, det, sc, dl = frames[0]
    extra = (gt, gl, np.concatenate([det, [_box(500, 500)]]), np.concatenate([sc, [-1.0]]), np.concatenate([dl, [0]]))
    # ranked last it can only lower the interpolated precision at the highest recall (as in the devkit)
    assert _evaluate([extra] + frames[1:])["mAP"] <= base["mAP"] + 1e-12


_DEVKIT = textwrap.dedent('''
    import json, sys, types, importlib.util
    import numpy as np
    # The devkit's package __init__ imports NuScenes (OpenCV) and eval.common.utils imports Box (OpenCV,
    # matplotlib); the metric code uses neither, so both are shielded in this throw-away process only.
    spec = importlib.util.find_spec("nuscenes")
    pkg = types.ModuleType("nuscenes"); pkg.__path__ = list(spec.submodule_search_locations)
    sys.modules["nuscenes"] = pkg
    dc = types.ModuleType("nuscenes.utils.data_classes"); dc.Box = None
    sys.modules["nuscenes.utils.data_classes"] = dc
    from pyquaternion import Quaternion
    from nuscenes.eval.common.data_classes import EvalBoxes
    from nuscenes.eval.common.utils import center_distance
    from nuscenes.eval.detection.algo import accumulate, calc_ap, calc_tp
    from nuscenes.eval.detection.data_classes import DetectionBox
    frames = json.load(sys.stdin)
    names = ["car", "pedestrian"]
    gts, preds = EvalBoxes(), EvalBoxes()
    def box(tok, b, name, score=-1.0):
        return DetectionBox(sample_token=tok, translation=(b[0], b[1], b[2] + b[5] / 2), size=(b[4], b[3], b[5]),
                            rotation=tuple(Quaternion(axis=[0, 0, 1], radians=b[6])), velocity=(b[7], b[8]),
                            detection_name=name, detection_score=float(score))
    for i, (gt, gl, det, sc, dl) in enumerate(frames):
        gts.add_boxes(str(i), [box(str(i), b, names[l]) for b, l in zip(gt, gl)])
        preds.add_boxes(str(i), [box(str(i), b, names[l], s) for b, l, s in zip(det, dl, sc)])
    out = {}
    for name in names:
        for th in (0.5, 1.0, 2.0, 4.0):
            md = accumulate(gts, preds, name, center_distance, th)
            out[f"{name}@{th}"] = calc_ap(md, 0.1, 0.1)
            if th == 2.0:
                for m in ("trans_err", "scale_err", "orient_err", "vel_err"):
                    out[f"{name}:{m}"] = calc_tp(md, 0.1, m)
    print(json.dumps(out))
''')


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_nuscenes_devkit_on_the_same_boxes(seed):
    """nuscenes-devkit 1.2.0 (installed with --no-deps, plus pyquaternion) computes the same numbers."""
    pytest.importorskip("pyquaternion")
    import importlib.util

    if importlib.util.find_spec("nuscenes") is None:
        pytest.skip("nuscenes-devkit not installed (pip install --no-deps nuscenes-devkit==1.2.0 pyquaternion)")
    frames = _frames(seed, n_frames=6)
    payload = json.dumps([[a.tolist() for a in f] for f in frames])
    run = subprocess.run([sys.executable, "-c", _DEVKIT], input=payload, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr[-2000:]
    ref = json.loads(run.stdout)
    ours = _evaluate(frames)["per_class_detail"]
    for name in CLASSES:
        if ours[name] is None:
            continue
        for th in (0.5, 1.0, 2.0, 4.0):
            assert ours[name][f"AP@{th:g}m"] == pytest.approx(ref[f"{name}@{th}"], abs=1e-9)
        for key, m in (("ATE", "trans_err"), ("ASE", "scale_err"), ("AOE", "orient_err"), ("AVE", "vel_err")):
            assert ours[name][key] == pytest.approx(ref[f"{name}:{m}"], abs=1e-6)


def test_plot_renders_bev_frames(tmp_path):
    frames = _frames(3)
    ev = Detection3DEvaluator(CLASSES, primary_metric="AP_car")
    for gt, gl, det, sc, dl in frames:
        ev.update({"boxes_3d": det, "scores": sc, "labels": dl}, {"boxes_3d": gt, "labels": gl})
    paths = ev.plot(ev.compute(), tmp_path, "spec/onnx")
    assert paths and paths[0].stat().st_size > 5000
    with pytest.raises(TypeError, match="primary_metric 'AP_bus'"):
        Detection3DEvaluator(CLASSES, primary_metric="AP_bus")
    with pytest.raises(ValueError, match="missing 'scores'"):
        ev.update({"boxes_3d": np.zeros((0, 9)), "labels": []}, {"boxes_3d": np.zeros((0, 9)), "labels": []})
