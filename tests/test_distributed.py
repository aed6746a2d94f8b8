"""pytest-xdist scale-out: device and CPU share per worker, one export per spec, one merged report."""

from __future__ import annotations

import json

import pytest

from pytest_autoware_deploy.distributed import cpu_threads_per_worker, device_for_worker
from pytest_autoware_deploy.errors import DeployError
from pytest_autoware_deploy.report.store import ReportStore

from .conftest import write_tiny_spec


def test_workers_map_round_robin_onto_devices(monkeypatch):
    devices = ["cuda:0", "cuda:1"]
    for worker, expected in (("gw0", "cuda:0"), ("gw1", "cuda:1"), ("gw2", "cuda:0"), ("gw3", "cuda:1")):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        assert device_for_worker(devices) == expected
    assert device_for_worker([]) is None


def test_threads_are_split_between_workers_only_under_xdist(monkeypatch):
    assert cpu_threads_per_worker() is None  # the autouse fixture removed PYTEST_XDIST_WORKER
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "64")
    assert cpu_threads_per_worker() == 1
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "1")
    assert cpu_threads_per_worker() >= 1


def test_merge_unites_backends_of_a_spec():
    store = ReportStore()
    store.merge({"a": {"backends": {"onnx": {"latency_ms": {"median": 1.0}}}}}, {"a": "/w"})
    store.merge({"a": {"backends": {"onnx": {"evaluation": {"accuracy": 0.5}}, "pytorch": {}}}}, {"a": "/w"})
    assert store.specs["a"]["backends"]["onnx"] == {"latency_ms": {"median": 1.0}, "evaluation": {"accuracy": 0.5}}
    assert set(store.specs["a"]["backends"]) == {"onnx", "pytorch"}


def test_four_workers_two_specs_one_export_each_one_report(pytester, tmp_path):
    pytest.importorskip("xdist")
    work = tmp_path / "work"
    a = write_tiny_spec(tmp_path / "a", name="alpha")
    b = write_tiny_spec(tmp_path / "b", name="beta")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "4", f"--deploy-config={a}",
                                           f"--deploy-config={b}", f"--deploy-work-dir={work}")
    result.assert_outcomes(passed=30)
    report = json.loads((work / "deploy_report.json").read_text())
    assert set(report["specs"]) == {"alpha", "beta"}
    for name in ("alpha", "beta"):
        body = report["specs"][name]
        assert set(body["backends"]) == {"pytorch", "onnx"}
        assert body["backends"]["onnx"]["verification"]["passed"] is True
        assert body["backends"]["onnx"]["latency_ms"]["rounds"] == 5  # timed although pytest-benchmark is off
        entries = [p for p in (work / name / "cache" / "onnx").iterdir() if p.is_dir()]
        assert len(entries) == 1 and (entries[0] / "meta.json").is_file()
        assert not list((work / name).rglob("*.tmp"))  # no torn or abandoned files


def test_merge_keeps_pipeline_stages_apart():
    store = ReportStore()
    store.set_latency("p/encoder", "onnx", {"median": 1.0})
    other = ReportStore()
    other.set_latency("p/head", "onnx", {"median": 2.0})
    other.set_latency("p", "onnx", {"median": 3.0})
    store.merge(other.specs, other.work_dirs)
    assert set(store.specs) == {"p"}
    assert store.specs["p"]["stages"]["encoder"]["backends"]["onnx"]["latency_ms"] == {"median": 1.0}
    assert store.specs["p"]["stages"]["head"]["backends"]["onnx"]["latency_ms"] == {"median": 2.0}
    assert store.specs["p"]["backends"]["onnx"]["latency_ms"] == {"median": 3.0}


def test_named_remote_workers_take_their_named_device(monkeypatch):
    devices = ["hostA-0=cuda:0", "hostA-1=cuda:1", "hostB-0=cuda:0"]
    for worker, expected in (("hostA-0", "cuda:0"), ("hostA-1", "cuda:1"), ("hostB-0", "cuda:0")):
        monkeypatch.setenv("PYTEST_XDIST_WORKER", worker)
        assert device_for_worker(devices) == expected
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "hostC-0")
    with pytest.raises(DeployError, match=r"worker 'hostC-0' has no device .*name it as hostC-0=DEVICE"):
        device_for_worker(devices)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw1")
    assert device_for_worker(["cuda:0", "cuda:1", "hostA-0=cuda:3"]) == "cuda:1"


def test_execnet_workers_named_per_host_run_the_specs_and_merge_one_report(pytester, tmp_path):
    """xdist's own remote-worker path (``--tx``; popen here, ssh=HOST on a cluster), workers named per host
    and mapped to devices by name; each spec runs whole on one worker and the controller writes one report."""
    pytest.importorskip("xdist")
    work = tmp_path / "work"
    a = write_tiny_spec(tmp_path / "a", name="alpha")
    b = write_tiny_spec(tmp_path / "b", name="beta")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--tx", "popen//id=hostA-0",
                                           "--tx", "popen//id=hostB-0", "--dist", "loadfile",
                                           "--deploy-devices", "hostA-0=cpu,hostB-0=cpu", f"--deploy-config={a}",
                                           f"--deploy-config={b}", f"--deploy-work-dir={work}", "-v")
    result.assert_outcomes(passed=30)
    result.stdout.fnmatch_lines(["*hostA-0*PASSED*", "*hostB-0*PASSED*"], consecutive=False)
    report = json.loads((work / "deploy_report.json").read_text())
    assert set(report["specs"]) == {"alpha", "beta"}


def test_a_named_worker_without_a_device_is_a_usage_error(pytester, tmp_path):
    pytest.importorskip("xdist")
    a = write_tiny_spec(tmp_path / "a", name="alpha")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--tx", "popen//id=hostA-0", "--dist",
                                           "loadfile", "--deploy-devices", "hostB-0=cpu", f"--deploy-config={a}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*xdist workers [[]'hostA-0'[]] (--tx ...//id=) have no device*"])
