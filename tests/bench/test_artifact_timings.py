"""deploy_report.json's ``artifacts``: per artifact whether the run built it and its step's seconds
(what benchmarks/cache_warm_cold.py reads); a warm re-run builds nothing and touches no cache file."""

from __future__ import annotations

import json

from pytest_autoware_deploy.bench.measure import tree_changes, tree_snapshot


def test_warm_run_reports_cache_hits_and_touches_nothing(pytester, tiny_spec):
    args = ["-p", "no:cacheprovider", "--benchmark-disable", f"--deploy-config={tiny_spec}",
            "-k", "export or (accuracy and onnx)"]
    out = tiny_spec.parent / "out"

    pytester.runpytest_inprocess(*args).assert_outcomes(passed=2)
    cold = json.loads((out / "deploy_report.json").read_text())["specs"]["tiny"]
    assert cold["onnx_rebuilt"] is True
    assert cold["artifacts"]["onnx"]["built"] is True and cold["artifacts"]["onnx"]["export_s"] > 0
    before = tree_snapshot(out / "tiny" / "cache")

    pytester.runpytest_inprocess(*args).assert_outcomes(passed=2)
    warm = json.loads((out / "deploy_report.json").read_text())["specs"]["tiny"]
    assert warm["onnx_rebuilt"] is False
    assert warm["artifacts"]["onnx"]["built"] is False
    assert tree_changes(before, tree_snapshot(out / "tiny" / "cache")) == []
