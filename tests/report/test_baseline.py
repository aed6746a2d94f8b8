"""The regression gate: pure comparisons (hypothesis) and a planted regression through the plugin."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoware_deploy import machine
from pytest_autoware_deploy.errors import DeployError, SpecError
from pytest_autoware_deploy.report.baseline import (NO_FINGERPRINT, NO_SAMPLES, SAMPLES_KEY, accuracy_breach,
                                                    latency_breaches, load_baseline, machine_differences,
                                                    read_baseline, save_baseline)
from pytest_autoware_deploy.spec.schema import GATED_LATENCY, validate

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


def test_a_gated_percentile_missing_on_either_side_is_an_error_not_a_pass():
    with pytest.raises(DeployError, match=r"gate.latency_percentiles has 'p95' but baseline has no latency 'p95' "
                                          r"\(it has \['median'\]\)"):
        latency_breaches({"median": 1.0}, {"median": 1.0, "p95": 9.0}, 10, 0, ["median", "p95"])
    with pytest.raises(DeployError, match="but this run has no latency 'median'"):
        latency_breaches({"median": 1.0}, {"p95": 9.0}, 10, 0, ["median"])


@given(name=st.text(min_size=1, max_size=6))
def test_gated_percentiles_are_validated(name):
    """A typo in gate.latency_percentiles used to gate nothing: now it is one SpecError naming the item."""
    if name in GATED_LATENCY:
        assert validate({"gate": {"latency_percentiles": [name]}}, "s.py")["gate"]["latency_percentiles"] == [name]
        return
    with pytest.raises(SpecError) as err:
        validate({"gate": {"latency_percentiles": ["median", name]}}, "s.py")
    assert str(err.value).startswith(f"s.py: gate.latency_percentiles[1]: {name!r} is not one of 'min', ")


def test_percentile_typo_suggests_the_key():
    with pytest.raises(SpecError, match=r"^s.py: gate.latency_percentiles\[0\]: 'medain' is not one of 'min', 'mean', "
                                        r"'median', 'max', 'p50', 'p90', 'p95', 'p99' \(did you mean 'median'\?\)$"):
        validate({"gate": {"latency_percentiles": ["medain"]}}, "s.py")
    with pytest.raises(SpecError, match=r"'std' is not one of"):  # a statistic, not a latency
        validate({"gate": {"latency_percentiles": ["std"]}}, "s.py")
    assert validate({}, "s.py")["gate"]["latency_percentiles"] == ["median", "p95"]


def test_saved_baseline_loads_back(tmp_path):
    specs = {"s": {"backends": {"onnx": {"latency_ms": {"median": 1.0}}}}}
    path = save_baseline(tmp_path / "b" / "baseline.json", specs)
    assert load_baseline(path) == specs
    assert json.loads(path.read_text())["schema"].startswith("pytest-autoware-deploy/baseline/")


def test_saved_baseline_records_this_machine(tmp_path):
    path = save_baseline(tmp_path / "baseline.json", {"s": {"backends": {}}})
    stored = read_baseline(path).machine
    assert stored == json.loads(json.dumps(machine.fingerprint()))
    assert stored["cpu"]["model"] and stored["versions"]["torch"] and stored["versions"]["onnxruntime"]
    assert machine_differences(stored, machine.fingerprint()) == []


def test_report_or_old_baseline_has_no_fingerprint(tmp_path):
    report = tmp_path / "deploy_report.json"
    report.write_text(json.dumps({"generated": "x", "specs": {"s": {"backends": {}}}}))
    old = tmp_path / "old.json"  # schema 1's "machine"
    old.write_text(json.dumps({"machine": {"node": "ci-7", "processor": "x86_64", "python": "3.11.9"},
                               "specs": {"s": {"backends": {}}}}))
    for path in (report, old):
        assert read_baseline(path).machine is None
        assert machine_differences(read_baseline(path).machine, machine.fingerprint()) == [NO_FINGERPRINT]


FP = {"cpu": {"model": "AMD EPYC 7B13", "vendor": "AuthenticAMD", "machine": "x86_64", "source": "/proc/cpuinfo",
              "int8_kernel": "avx2", "flags": {"avx2": True, "avx512f": False, "avx512_vnni": False}},
      "python": "3.11.9", "implementation": "CPython", "platform": "Linux-6.1-x86_64", "system": "Linux",
      "machine": "x86_64", "versions": {"torch": "2.13.0", "onnx": "1.19.0", "onnxruntime": "1.31.0", "numpy": "2.3.0"},
      "onnxruntime_providers": ["CPUExecutionProvider"],
      "gpu": [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "memory_gib": 79.1,
               "driver": "570.133.20", "cuda_runtime": "12.8"}]}
RELEVANT = [("cpu", "model"), ("cpu", "vendor"), ("cpu", "flags", "avx512f"), ("versions", "torch"),
            ("versions", "onnxruntime"), ("gpu", 0, "name"), ("gpu", 0, "driver"), ("gpu", 0, "compute_capability"),
            ("python",)]
IRRELEVANT = [("platform",), ("cpu", "source"), ("implementation",)]


def _changed(path, value):
    import copy

    fp = copy.deepcopy(FP)
    node = fp
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return fp


def _dotted(path):
    return ".".join(f"[{k}]" if isinstance(k, int) else k for k in path).replace(".[", "[")


@given(path=st.sampled_from(RELEVANT), value=st.one_of(st.text(max_size=8), st.booleans(), st.none()))
def test_a_latency_relevant_change_is_named(path, value):
    other = _changed(path, value)
    diffs = machine_differences(FP, other)
    if other == FP:
        assert diffs == []
    else:
        assert diffs == [f"{_dotted(path)}: baseline {_field(FP, path)!r}, here {value!r}"]


def _field(doc, path):
    for key in path:
        doc = doc[key]
    return doc


@given(path=st.sampled_from(IRRELEVANT), value=st.text(max_size=8))
def test_fields_that_do_not_move_latency_are_ignored(path, value):
    assert machine_differences(FP, _changed(path, value)) == []


def test_gpu_appearing_or_a_new_library_is_one_line_each():
    assert machine_differences(FP, {**FP, "gpu": None}) == [
        f"gpu: baseline {json.dumps(FP['gpu'], sort_keys=True)}, here None"]
    newer = {**FP, "versions": {**FP["versions"], "tensorrt": "10.9.0"}}
    assert machine_differences(FP, newer) == ["versions.tensorrt: baseline absent, here '10.9.0'"]


# 30 rounds (the schema's default; the tiny spec times 5): with 7, one load spike among the baseline's rounds could
# drag a bootstrap resample's median up to it often enough to leave a 50 ms planted slowdown "inconclusive" (a pass).
# 10 ms minimum delta: a clean re-run on a loaded machine is never that much slower at the median of a 0.1 ms model.
GATE = ["--deploy-cfg-options", "gate.latency_min_delta_ms=10", "benchmark.rounds=30"]
GATE_MESSAGE = ("tiny, backend pytorch: latency regressed vs baseline*: latency median: regressed, baseline * ms, "
                "current * ms, effect +*% (99% CI +*% .. +*%), threshold +*%, rounds 30 baseline / * current, "
                "Mann-Whitney p=*")


def _outcomes(result) -> dict:
    """test name -> PASSED/FAILED/SKIPPED from a -v run (robust to other tests being added to the suite)."""
    import re

    out = {}
    for line in result.stdout.lines:
        m = re.match(r"^(\S+\.py::\S+) (PASSED|FAILED|SKIPPED|ERROR)", line)
        if m:
            out[m.group(1).split("::", 1)[1]] = m.group(2)
    return out


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
    """Outcomes are read per test (the suite grows; counting all tests flaked on every new one) and only the
    gate tests' verdicts are asserted; the clean re-run may be slower than the baseline under load, just never by
    the 10 ms minimum delta."""
    baseline = tmp_path / "baseline.json"
    saved = run(pytester, f"--deploy-config={tiny_spec}", f"--deploy-save-baseline={baseline}", "-v", *GATE)
    assert saved.ret == 0 and "FAILED" not in set(_outcomes(saved).values())
    backends = load_baseline(baseline)["tiny"]["backends"]
    assert backends["onnx"]["latency_ms"]["median"] > 0
    for body in backends.values():  # every round's raw timing (ms, sorted) is in the baseline
        samples = body[SAMPLES_KEY]
        assert len(samples) == body["latency_ms"]["rounds"] == 30 and samples == sorted(samples)
        assert samples[0] == pytest.approx(body["latency_ms"]["min"])

    planted = run(pytester, f"--deploy-config={tiny_spec}", f"--deploy-baseline={baseline}", "-v", *GATE,
                  "model.kwargs.delay_ms=50", "data.kwargs.wrong_labels=3", "evaluation.thresholds.min_accuracy=0")
    # slower pytorch, lower accuracy on both backends; onnx latency untouched (the sleep is eager-only)
    outcomes = _outcomes(planted)
    failed = sorted(name for name, outcome in outcomes.items() if outcome == "FAILED")
    assert failed == ["test_gate_accuracy[tiny-onnx]", "test_gate_accuracy[tiny-pytorch]",
                      "test_gate_latency[tiny-pytorch]"], outcomes
    assert outcomes["test_gate_latency[tiny-onnx]"] == "PASSED"
    planted.stdout.fnmatch_lines([
        "tiny, backend pytorch: accuracy regressed vs baseline: accuracy: baseline 1, current 0.75, limit 1 "
        "(max drop 0)",
        "tiny, backend onnx: accuracy regressed vs baseline: accuracy: baseline 1, current 0.75, limit 1 (max drop 0)",
        GATE_MESSAGE,
    ])
    report = json.loads((tiny_spec.parent / "out" / "deploy_report.json").read_text())["specs"]["tiny"]["backends"]
    assert report["pytorch"]["latency_gate"]["verdict"] == "regressed"
    assert report["pytorch"]["latency_gate"]["verdicts"][0]["ci"][0] > 1

    clean = run(pytester, f"--deploy-config={tiny_spec}", f"--deploy-baseline={baseline}", *GATE, "-v")
    outcomes = _outcomes(clean)
    assert clean.ret == 0, outcomes
    assert outcomes["test_gate_latency[tiny-onnx]"] == outcomes["test_gate_latency[tiny-pytorch]"] == "PASSED"
    assert outcomes["test_gate_accuracy[tiny-onnx]"] == outcomes["test_gate_accuracy[tiny-pytorch]"] == "PASSED"


def test_missing_baseline_is_a_usage_error(pytester, tiny_spec, tmp_path):
    result = run(pytester, f"--deploy-config={tiny_spec}", f"--deploy-baseline={tmp_path / 'nope.json'}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--deploy-baseline:*nope.json does not exist*"])


def test_gate_latency_run_alone_measures_what_it_compares(pytester, tiny_spec, tmp_path, one_torch_thread):
    """`-k test_gate_latency` used to skip ('no latency measured in this run'): the gate read what test_latency
    wrote. It times the backend itself now, through the session state, and catches a planted slowdown."""
    baseline = tmp_path / "baseline.json"
    torch_only = ["--deploy-backends=pytorch", *GATE]
    run(pytester, f"--deploy-config={tiny_spec}", f"--deploy-save-baseline={baseline}", "-k", "test_latency",
        *torch_only).assert_outcomes(passed=1)
    alone = [f"--deploy-config={tiny_spec}", f"--deploy-baseline={baseline}", "-k", "test_gate_latency", "-v",
             *torch_only]
    # no timing asserted on a shared machine: a tolerance nothing breaches, so only "it measured and compared"
    clean = run(pytester, *alone, "--deploy-latency-tolerance=1e9")
    clean.assert_outcomes(passed=1)
    clean.stdout.fnmatch_lines(["*test_gate_latency[[]tiny-pytorch[]] PASSED*"])
    measured = json.loads((tiny_spec.parent / "out" / "deploy_report.json").read_text())["specs"]["tiny"]["backends"]
    assert measured["pytorch"]["latency_ms"]["rounds"] == len(measured["pytorch"][SAMPLES_KEY]) == 30
    assert "evaluation" not in measured["pytorch"]  # nothing but what the gate compares was run

    planted = run(pytester, *alone, "model.kwargs.delay_ms=100")
    planted.assert_outcomes(failed=1)
    planted.stdout.fnmatch_lines(["*" + GATE_MESSAGE])
    measured = json.loads((tiny_spec.parent / "out" / "deploy_report.json").read_text())["specs"]["tiny"]["backends"]
    assert measured["pytorch"]["latency_ms"]["min"] >= 100

    # a baseline saved before raw timings were kept: the point comparison, and the verdict says so
    doc = json.loads(baseline.read_text())
    del doc["specs"]["tiny"]["backends"]["pytorch"][SAMPLES_KEY]
    baseline.write_text(json.dumps(doc))
    old = run(pytester, *alone, "model.kwargs.delay_ms=100")
    old.assert_outcomes(failed=1)
    old.stdout.fnmatch_lines([f"*tiny, backend pytorch: latency regressed vs baseline: latency median: regressed, "
                              f"baseline * ms, current * ms, effect +*%, threshold +*%, rounds 30 baseline / 30 "
                              f"current; {NO_SAMPLES}*"])


def test_an_inconclusive_gate_extends_the_rounds_then_warns_or_fails(pytester, tiny_spec, tmp_path, one_torch_thread):
    """A baseline whose raw timings leave its median undetermined (16 rounds of 1 ns, 14 of 1 s: a bootstrap
    resample's median is either) keeps any real run 'inconclusive': the gate doubles this run's rounds 5 times
    (30 -> 960, the default gate.latency_max_extensions), then passes with a LatencyGateWarning, or fails with gate.latency_inconclusive='fail'."""
    baseline = tmp_path / "baseline.json"
    torch_only = ["--deploy-backends=pytorch", "--deploy-cfg-options", "benchmark.rounds=30",
                  "gate.latency_percentiles=['median']"]  # no minimum delta: the ratio (about 3e5) decides
    run(pytester, f"--deploy-config={tiny_spec}", f"--deploy-save-baseline={baseline}", "-k", "test_latency",
        *torch_only).assert_outcomes(passed=1)
    doc = json.loads(baseline.read_text())
    doc["specs"]["tiny"]["backends"]["pytorch"][SAMPLES_KEY] = [1e-6] * 16 + [1e3] * 14
    baseline.write_text(json.dumps(doc))
    alone = [f"--deploy-config={tiny_spec}", f"--deploy-baseline={baseline}", "-k", "test_gate_latency", "-v",
             *torch_only]

    warned = run(pytester, *alone)
    warned.assert_outcomes(passed=1, warnings=1)
    warned.stdout.fnmatch_lines(["*LatencyGateWarning: tiny, backend pytorch: latency gate inconclusive (after 5 "
                                 "extension(s) of the rounds), passed (gate.latency_inconclusive='fail' fails "
                                 "instead): latency median: inconclusive, baseline 1e-06 ms, *, rounds 30 baseline / "
                                 "960 current*"])
    gate = json.loads((tiny_spec.parent / "out" / "deploy_report.json").read_text())[
        "specs"]["tiny"]["backends"]["pytorch"]["latency_gate"]
    assert (gate["verdict"], gate["first"], gate["extensions"], gate["confirmed"]) == (
        "inconclusive", "inconclusive", 5, False)
    median = gate["verdicts"][0]
    assert median["rounds"] == [30, 960] and median["ci"][0] < 1 < median["ratio"]

    failed = run(pytester, *alone, "gate.latency_inconclusive='fail'")
    failed.assert_outcomes(failed=1)
    failed.stdout.fnmatch_lines(["*tiny, backend pytorch: latency inconclusive vs baseline (after 5 extension(s) of "
                                 "the rounds): latency median: inconclusive, *"])


def test_baseline_from_another_machine_warns_and_fails_on_request(pytester, tiny_spec, tmp_path, one_torch_thread):
    baseline = tmp_path / "baseline.json"
    onnx_only = ["--deploy-backends=onnx", *GATE]
    run(pytester, f"--deploy-config={tiny_spec}", f"--deploy-save-baseline={baseline}", "-k", "test_latency",
        *onnx_only).assert_outcomes(passed=1)
    report_file = tiny_spec.parent / "out" / "deploy_report.json"

    def gate(path, *extra):
        return run(pytester, f"--deploy-config={tiny_spec}", f"--deploy-baseline={path}", "-k", "gate_latency",
                   *onnx_only, "--deploy-latency-tolerance=1e9", *extra)  # about the machine, not the timing

    same = gate(baseline)
    same.assert_outcomes(passed=1)
    assert "measured on another machine" not in same.stdout.str()
    assert json.loads(report_file.read_text())["specs"]["tiny"]["baseline"] == {
        "file": str(baseline), "same_machine": True, "machine_differences": []}

    doc = json.loads(baseline.read_text())
    doc["machine"]["cpu"]["model"] = "Imaginary CPU 9000"
    doc["machine"]["versions"]["onnxruntime"] = "0.1.0"
    baseline.write_text(json.dumps(doc))
    here = machine.fingerprint()
    diffs = [f"cpu.model: baseline 'Imaginary CPU 9000', here {here['cpu']['model']!r}",
             f"versions.onnxruntime: baseline '0.1.0', here {here['versions']['onnxruntime']!r}"]
    warned = gate(baseline)
    warned.assert_outcomes(passed=1)  # a warning by default: the comparison still runs
    warned.stdout.fnmatch_lines(["*= deploy baseline: measured on another machine =*", f"*{baseline} vs this machine*",
                                 f"  {diffs[0]}", f"  {diffs[1]}",
                                 "*--deploy-baseline-same-machine makes this a failure*"])
    assert json.loads(report_file.read_text())["specs"]["tiny"]["baseline"] == {
        "file": str(baseline), "same_machine": False, "machine_differences": diffs}

    strict = gate(baseline, "--deploy-baseline-same-machine")
    strict.assert_outcomes(failed=1)
    strict.stdout.fnmatch_lines([f"*tiny, backend onnx: the baseline {baseline} was not measured on this machine "
                                 f"(--deploy-baseline-same-machine): {diffs[0]}; {diffs[1]}*"])

    report = json.loads(report_file.read_text())
    report.pop("machine", None)  # a report without a fingerprint (as every deploy_report.json was)
    bare = tmp_path / "report_as_baseline.json"
    bare.write_text(json.dumps(report))
    gate(bare).stdout.fnmatch_lines([f"  {NO_FINGERPRINT}"])
    gate(bare, "--deploy-baseline-same-machine").assert_outcomes(failed=1)


def test_misspelled_gate_percentile_is_a_usage_error(pytester, tiny_spec, tmp_path):
    result = run(pytester, f"--deploy-config={tiny_spec}", "--deploy-cfg-options", "gate.latency_percentiles=['p59']")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*tiny.py: gate.latency_percentiles[[]0[]]: 'p59' is not one of *"])


def test_the_retimed_gate_times_the_baselines_own_artifact_beside_this_runs(pytester, tiny_spec, tmp_path,
                                                                           one_torch_thread):
    """--deploy-baseline-retime: the baseline run's ONNX (found by the path its report recorded) and this run's
    are timed interleaved in one job; a clean re-run passes, a heavier graph is caught, a missing artifact is one
    error naming where it was looked for, and pytorch (no file artifact) keeps the stored timings."""
    baseline = tmp_path / "baseline.json"
    work = tiny_spec.parent / "out"
    run(pytester, f"--deploy-config={tiny_spec}", f"--deploy-save-baseline={baseline}", "-k", "test_latency",
        *GATE).assert_outcomes(passed=2)
    rel = load_baseline(baseline)["tiny"]["backends"]["onnx"]["artifact"]
    assert (work / rel).is_file() and rel.endswith(".onnx")
    gate = [f"--deploy-config={tiny_spec}", f"--deploy-baseline={baseline}", f"--deploy-baseline-retime={work}",
            "-k", "test_gate_latency", "-v", *GATE]
    clean = run(pytester, *gate)
    assert _outcomes(clean)["test_gate_latency[tiny-onnx]"] == "PASSED", clean.stdout.str()
    report = json.loads((work / "deploy_report.json").read_text())["specs"]["tiny"]["backends"]
    assert report["onnx"]["latency_gate"]["baseline"] == f"re-timed interleaved: {work / rel}"
    assert report["pytorch"]["latency_gate"]["baseline"] == "stored timings"

    heavier = run(pytester, *gate, "model.kwargs.width=512", "gate.latency_min_delta_ms=0")
    assert _outcomes(heavier)["test_gate_latency[tiny-onnx]"] == "FAILED", heavier.stdout.str()
    heavier.stdout.fnmatch_lines(["*tiny, backend onnx: latency regressed vs baseline*latency median: regressed*"])

    doc = json.loads(baseline.read_text())
    doc["specs"]["tiny"]["backends"]["onnx"]["artifact"] = "gone/model.onnx"
    baseline.write_text(json.dumps(doc))
    missing = run(pytester, *gate)
    missing.stdout.fnmatch_lines([f"*--deploy-baseline-retime: the baseline's artifact for tiny/onnx is not at "
                                  f"{work / 'gone/model.onnx'}*"])


def test_interleaving_cancels_a_drift_that_fools_stored_timings():
    """A machine that gets 2x slower between the baseline run and this one: stored timings call it a regression,
    the interleaved gate (both sides measured in the same drift) does not; a real 30 % slowdown is still caught."""
    from pytest_autoware_deploy.bench.gate_stats import gate_interleaved, gate_with_extensions

    rng = np.random.default_rng(0)

    def noisy(n, scale):
        return list(scale * (1.0 + 0.05 * rng.standard_normal(n)))

    stored = noisy(60, 1.0)
    slow_machine = gate_with_extensions(stored, noisy(60, 2.0), lambda n: noisy(n, 2.0), ["median"], 5.0)
    assert slow_machine.verdict == "regressed"
    same_code = gate_interleaved(lambda n: (noisy(n, 2.0), noisy(n, 2.0)), 60, ["median"], 5.0)
    assert same_code.verdict == "ok" and len(same_code.baseline) >= 60
    slower_code = gate_interleaved(lambda n: (noisy(n, 2.0), noisy(n, 2.6)), 60, ["median"], 5.0)
    assert slower_code.verdict == "regressed"
