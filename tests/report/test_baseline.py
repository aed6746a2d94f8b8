"""The regression gate: pure comparisons (hypothesis) and a planted regression through the plugin."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoware_deploy.errors import DeployError
from pytest_autoware_deploy.report.baseline import (accuracy_breach, latency_breaches, load_baseline,
                                                    save_baseline)

from ..test_plugin import run

ms = st.floats(0.001, 1e4, allow_nan=False)


@given(base=ms, growth=st.floats(0, 5), tol=st.floats(0, 100), delta=st.floats(0, 10))
def test_latency_breach_iff_beyond_both_limits(base, growth, tol, delta):
    cur = base * (1 + growth)
    breaches = latency_breaches({"median": base}, {"median": cur}, tol, delta, ["median"])
    assert bool(breaches) == (cur > base * (1 + tol / 100) and cur > base + delta)
    for b in breaches:
        assert b.baseline == base and b.current == cur and b.limit >= base


@given(base=st.floats(0, 1), drop=st.floats(-1, 1), limit=st.floats(0, 1))
def test_accuracy_breach_iff_drop_exceeds_limit(base, drop, limit):
    cur = base - drop
    breach = accuracy_breach({"accuracy": base}, {"accuracy": cur, "primary_metric": "accuracy"}, limit)
    assert (breach is not None) == (cur < base - limit)


def test_unknown_percentiles_are_not_compared():
    assert latency_breaches({"median": 1.0}, {"p95": 9.0}, 10, 0, ["median", "p95"]) == []


def test_breach_message_shows_baseline_current_limit():
    (b,) = latency_breaches({"p95": 2.0}, {"p95": 3.0}, 10, 0, ["p95"])
    assert str(b) == "latency p95 (ms): baseline 2, current 3, limit 2.2 (+10%)"


def test_bad_baseline_files_get_one_clear_error(tmp_path):
    with pytest.raises(DeployError, match="does not exist"):
        load_baseline(tmp_path / "none.json")
    (tmp_path / "bad.json").write_text("{")
    with pytest.raises(DeployError, match="not readable JSON"):
        load_baseline(tmp_path / "bad.json")
    (tmp_path / "other.json").write_text('{"benchmarks": []}')
    with pytest.raises(DeployError, match="not a deploy report"):
        load_baseline(tmp_path / "other.json")


def test_saved_baseline_loads_back(tmp_path):
    specs = {"s": {"backends": {"onnx": {"latency_ms": {"median": 1.0}}}}}
    path = save_baseline(tmp_path / "b" / "baseline.json", specs)
    assert load_baseline(path) == specs
    assert json.loads(path.read_text())["schema"].startswith("pytest-autoware-deploy/baseline/")


GATE = ["--deploy-cfg-options", "gate.latency_min_delta_ms=10", "benchmark.rounds=7"]


@pytest.fixture
def one_torch_thread():
    """On a loaded machine (CI, parallel workers) torch's spinning OpenMP threads can turn a 0.1 ms model into
    20 ms: a real slowdown, but not the one planted here. One thread keeps the clean run's noise in the ms range."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_planted_regression_fails_the_gate_and_a_clean_rerun_passes(pytester, tiny_spec, tmp_path, one_torch_thread):
    baseline = tmp_path / "baseline.json"
    run(pytester, f"--deploy-config={tiny_spec}", f"--deploy-save-baseline={baseline}", *GATE) \
        .assert_outcomes(passed=13)
    assert load_baseline(baseline)["tiny"]["backends"]["onnx"]["latency_ms"]["median"] > 0

    planted = run(pytester, f"--deploy-config={tiny_spec}", f"--deploy-baseline={baseline}",
                  "--deploy-cfg-options", "gate.latency_min_delta_ms=10", "benchmark.rounds=7",
                  "model.kwargs.delay_ms=50", "data.kwargs.wrong_labels=3", "evaluation.thresholds.min_accuracy=0")
    # slower pytorch, lower accuracy on both backends; onnx latency untouched (the sleep is eager-only)
    planted.assert_outcomes(passed=14, failed=3)
    planted.stdout.fnmatch_lines([
        "tiny, backend pytorch: accuracy regressed vs baseline: accuracy: baseline 1, current 0.75, limit 1 "
        "(max drop 0)",
        "tiny, backend onnx: accuracy regressed vs baseline: accuracy: baseline 1, current 0.75, limit 1 (max drop 0)",
        "tiny, backend pytorch: latency regressed vs baseline: latency median (ms): baseline *, current *, "
        "limit * (+10%, at least +10 ms)*",
        "FAILED tiny.py::test_gate_accuracy[[]tiny-pytorch[]]*",
        "FAILED tiny.py::test_gate_accuracy[[]tiny-onnx[]]*",
        "FAILED tiny.py::test_gate_latency[[]tiny-pytorch[]]*",
    ])
    clean = run(pytester, f"--deploy-config={tiny_spec}", f"--deploy-baseline={baseline}", *GATE, "-v")
    clean.assert_outcomes(passed=17)
    clean.stdout.fnmatch_lines(["*test_gate_latency[[]tiny-onnx[]] PASSED*"])


def test_missing_baseline_is_a_usage_error(pytester, tiny_spec, tmp_path):
    result = run(pytester, f"--deploy-config={tiny_spec}", f"--deploy-baseline={tmp_path / 'nope.json'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--deploy-baseline:*nope.json does not exist*"])
