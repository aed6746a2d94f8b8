"""A pipeline's stage files carry ``onnx_config.metadata`` too (what Autoware's nodes read from each ONNX they
load), and ``test_stage_export_onnx`` checks it as ``test_export_onnx`` does for a single graph."""

from __future__ import annotations

from pathlib import Path

import onnx

from pytest_autoware_deploy.models.lidar_common.synthetic import small_split

from ..test_plugin import run

SPEC = Path(__file__).resolve().parents[2] / "deploy_specs" / "centerpoint.py"


def test_each_stage_file_carries_the_declared_metadata(pytester, tmp_path):
    key, path = small_split(tmp_path / "data", 2)
    work = tmp_path / "work"
    result = run(pytester, f"--deploy-config={SPEC}", "--deploy-cfg-options", f"{key}={path}",
                 "onnx_config.metadata={'producer_name': 'autoware-ml', 'producer_version': 'v0.7.1', 'model_version': 3}",
                 f"--deploy-work-dir={work}", "-k", "test_stage_export_onnx", "-v")
    result.assert_outcomes(passed=2)
    stage_files = sorted((work / "centerpoint").rglob("cache/onnx/*/model.onnx"))
    assert len(stage_files) == 2
    for f in stage_files:
        model = onnx.load(str(f), load_external_data=False)
        assert (model.producer_name, model.producer_version, model.model_version) == ("autoware-ml", "v0.7.1", 3), f
