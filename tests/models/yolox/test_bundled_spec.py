"""The bundled YOLOX_opt traffic-light spec end to end on a small synthetic split (first images of the
val split): shipped checkpoint, auto and int8 graphs, detection matching and mAP in the report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_autoware_deploy.models.yolox.synthetic import SEEDS, write_split
from pytest_autoware_deploy.spec.load import load_spec

REPO = Path(__file__).resolve().parents[3]
SPEC = REPO / "deploy_specs" / "yolox_opt_traffic_light.py"


@pytest.fixture(scope="module")
def val_split(tmp_path_factory):
    return write_split(tmp_path_factory.mktemp("tl"), "traffic_light", "val", 30, SEEDS["val"], 128)


def test_bundled_spec_passes_with_shipped_checkpoint(pytester, val_split, tmp_path):
    work = tmp_path / "wd"
    result = pytester.runpytest_inprocess(
        f"--deploy-config={SPEC}", "--deploy-cfg-options", f"data.kwargs.ann_file={val_split}",
        "precision.policies=['auto','int8']", "precision.int8.calibration_samples=8", "benchmark.rounds=3",
        "benchmark.warmup=1", "benchmark.batch_sizes=[1]", "verification.num_samples=1",
        f"--deploy-work-dir={work}", "-p", "no:cacheprovider")
    # export; verification 2 backends x 2 outputs x 3 shapes (min=opt, max, opt+1); accuracy, latency, throughput x 3
    result.assert_outcomes(passed=26)
    spec = json.loads((work / "deploy_report.json").read_text())["specs"]["yolox_opt_traffic_light"]
    backends = spec["backends"]
    for name in ("pytorch", "onnx", "onnx:int8"):
        ev = backends[name]["evaluation"]
        assert ev["primary_metric"] == "mAP" and ev["mAP"] >= 0.7 and ev["AP50"] >= 0.9 and ev["num_samples"] == 30
        assert ev["per_class"]["BACKGROUND"] is None and ev["per_class"]["traffic_light"] > 0.5
        assert (work / ev["figures"][0]).is_file()
    dets = backends["onnx:int8"]["verification"]["outputs"]["dets"]
    assert dets["matched"] > 0 and dets["unmatched_ref"] + dets["unmatched_actual"] <= dets["cases"]
    assert 0 < dets["max_score_err"] < 0.08 and dets["mean_iou"] > 0.8
    assert backends["onnx"]["verification"]["outputs"]["dets"]["max_box_err"] < 0.05
    assert "| onnx:int8 | dets | yes |" in (work / "deploy_report.md").read_text()


def test_full_size_specs_declare_awml_shapes():
    opt = load_spec(REPO / "deploy_specs" / "yolox_opt_traffic_light_full.py")
    assert opt.inputs[0].opt_shape == (1, 3, 416, 416) and opt.cfg["model"]["checkpoint"] is None
    assert opt.cfg["model"]["kwargs"] == {"num_classes": 3, "deepen_factor": 0.33, "widen_factor": 0.5}
    s = load_spec(REPO / "deploy_specs" / "yolox_s_full.py")
    assert s.inputs[0].opt_shape == (1, 3, 640, 640) and s.cfg["model"]["kwargs"]["num_classes"] == 80
    assert len(s.cfg["evaluation"]["kwargs"]["class_names"]) == 80


def test_too_tight_detection_tolerance_fails_with_the_worst_match(pytester, val_split, tmp_path):
    """int8 moves scores by ~0.02: a 1e-6 score_atol must fail, naming the case, the match and the limit."""
    result = pytester.runpytest_inprocess(
        f"--deploy-config={SPEC}", "--deploy-cfg-options", f"data.kwargs.ann_file={val_split}",
        "precision.policies=['int8']", "precision.int8.calibration_samples=8", "verification.num_samples=1",
        "verification.outputs.dets.policies.int8.score_atol=1e-6", "-k", "test_verification and dets",
        f"--deploy-work-dir={tmp_path / 'wd'}", "-p", "no:cacheprovider")
    result.assert_outcomes(failed=3)  # batch 1, opt and one off opt
    result.stdout.fnmatch_lines(["*backend onnx:int8 vs pytorch, output 'dets', sample 0, shape 1x3x128x128: "
                                 "matched score error * > score_atol 1e-06*worst match: image 0, class *"])
