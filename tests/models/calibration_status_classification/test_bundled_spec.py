"""The bundled spec end to end, as `make demo` runs it, on a freshly generated synthetic split."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_autoware_deploy.models.calibration_status_classification.synthetic import SEEDS, SPLITS, write_split
from pytest_autoware_deploy.spec.load import load_spec

REPO = Path(__file__).resolve().parents[3]
SPEC = REPO / "deploy_specs" / "calibration_status_classification.py"


@pytest.fixture(scope="module")
def val_split(tmp_path_factory):
    return write_split(tmp_path_factory.mktemp("calib"), "val", SPLITS["val"], SEEDS["val"], 120, 192)


def test_bundled_spec_passes_with_shipped_checkpoint(pytester, val_split, tmp_path):
    work = tmp_path / "wd"
    result = pytester.runpytest_inprocess(
        f"--deploy-config={SPEC}", "--deploy-cfg-options", f"runtime_io.info_pkl={val_split}",
        f"--deploy-work-dir={work}", "-p", "no:cacheprovider", "-v")
    result.assert_outcomes(passed=22)  # verification at min=opt, max and opt+1 (issue 13 §5)
    report = json.loads((work / "deploy_report.json").read_text())
    backends = report["specs"]["calibration_status_classification"]["backends"]
    for name in ("pytorch", "onnx"):
        ev = backends[name]["evaluation"]
        assert ev["accuracy"] >= 0.9 and ev["num_samples"] == 200
        assert set(ev["per_class"]) == {"miscalibrated", "calibrated"}
        assert (work / ev["figures"][0]).is_file()
        assert backends[name]["latency_ms"]["p99"] > 0
    assert backends["onnx"]["verification"]["passed"]
    assert (work / "calibration_status_classification.onnx").is_file()


def test_full_size_spec_declares_awml_shape():
    spec = load_spec(REPO / "deploy_specs" / "calibration_status_classification_full.py",
                     cfg_options={"runtime_io.info_pkl": None})
    assert spec.inputs[0].opt_shape == (1, 5, 1860, 2880)
    assert spec.cfg["model"]["kwargs"]["base_channels"] == 64
