"""The regression gate: pure comparisons (hypothesis) and a planted regression through the plugin."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pytest_autoware_deploy import machine
from pytest_autoware_deploy.errors import DeployError, SpecError
from pytest_autoware_deploy.report.baseline import (NO_FINGERPRINT, accuracy_breach, latency_breaches, load_baseline,
                                                    machine_differences, read_baseline, save_baseline)
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


def test_gate_latency_run_alone_measures_what_it_compares(pytester, tiny_spec, tmp_path, one_torch_thread):
    """`-k test_gate_latency` used to skip ('no latency measured in this run'): the gate read what test_latency
    wrote. It times the backend itself now, through the session state, and catches a planted slowdown."""
    baseline = tmp_path / "baseline.json"
    torch_only = ["--deploy-backends=pytorch", "--deploy-cfg-options", "gate.latency_min_delta_ms=10",
                  "benchmark.rounds=7"]
    run(pytester, f"--deploy-config={tiny_spec}", f"--deploy-save-baseline={baseline}", "-k", "test_latency",
        *torch_only).assert_outcomes(passed=1)
    alone = [f"--deploy-config={tiny_spec}", f"--deploy-baseline={baseline}", "-k", "test_gate_latency", "-v",
             *torch_only]
    # no timing asserted on a shared machine: a tolerance nothing breaches, so only "it measured and compared"
    clean = run(pytester, *alone, "--deploy-latency-tolerance=1e9")
    clean.assert_outcomes(passed=1)
    clean.stdout.fnmatch_lines(["*test_gate_latency[[]tiny-pytorch[]] PASSED*"])
    measured = json.loads((tiny_spec.parent / "out" / "deploy_report.json").read_text())["specs"]["tiny"]["backends"]
    assert measured["pytorch"]["latency_ms"]["rounds"] == 7
    assert "evaluation" not in measured["pytorch"]  # nothing but what the gate compares was run

    planted = run(pytester, *alone, "model.kwargs.delay_ms=200")
    planted.assert_outcomes(failed=1)
    planted.stdout.fnmatch_lines(["*tiny, backend pytorch: latency regressed vs baseline: latency median (ms): "
                                  "baseline *, current *, limit * (+10%, at least +10 ms)*"])
    measured = json.loads((tiny_spec.parent / "out" / "deploy_report.json").read_text())["specs"]["tiny"]["backends"]
    assert measured["pytorch"]["latency_ms"]["min"] >= 200


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
