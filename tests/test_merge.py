"""--deploy-shard and `autoware-deploy merge`, end to end: three shards of a bundled detection spec, merged,
give the metrics of one unsharded run exactly (COCO mAP is order-sensitive: the merge replays in index order)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pytest_autoware_deploy import cli
from pytest_autoware_deploy.models.yolox.synthetic import small_traffic_light_split

from .test_plugin import run

REPO = Path(__file__).resolve().parents[1]
SPEC = REPO / "deploy_specs" / "yolox_opt_traffic_light.py"


def _evaluations(report: Path) -> dict:
    backends = json.loads(report.read_text())["specs"]["yolox_opt_traffic_light"]["backends"]
    return {b: {k: v for k, v in body["evaluation"].items() if k not in ("figures", "merged_from", "shard")}
            for b, body in backends.items()}


def test_three_shards_merged_equal_one_run(pytester, tmp_path, capsys):
    key, path = small_traffic_light_split(tmp_path / "data", 7)
    work = tmp_path / "work"  # one work dir: the export is made once, each shard writes its own files
    common = [f"--deploy-config={SPEC}", "--deploy-backends=pytorch,onnx", "--deploy-cfg-options", f"{key}={path}",
              "precision.policies=['auto','fp16']", "--deploy-work-dir", str(work), "-k", "test_accuracy"]
    whole = run(pytester, *common)
    whole.assert_outcomes(passed=3)  # pytorch, onnx, onnx:fp16
    expected = _evaluations(work / "deploy_report.json")
    for i in (1, 2, 3):
        shard = run(pytester, *common, "--deploy-shard", f"{i}/3", "-rs")
        shard.assert_outcomes(skipped=3)
        shard.stdout.fnmatch_lines([f"*evaluation shard {i}/3: the accuracy threshold is checked over all shards*"])
    code = cli.main(["merge", str(work), "--out", str(tmp_path / "merged")])
    out = capsys.readouterr().out
    assert code == 0, out
    merged = _evaluations(tmp_path / "merged" / "deploy_report.json")
    assert merged == expected
    assert sorted(merged) == ["onnx", "onnx:fp16", "pytorch"] and merged["onnx"]["num_samples"] == 7
    assert "[deploy] merge: 3 (spec, backend) evaluations from shards, 0 failed check(s)" in out


def test_a_bad_shard_option_is_a_usage_error(pytester):
    result = run(pytester, f"--deploy-config={SPEC}", "--deploy-shard", "4/3")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*command line: --deploy-shard: expected 'I/N' with 1 <= I <= N*got '4/3'*"])
