"""The report names the machine (CPU ISA included) and what the int8 settings mean on its CPU (issue 10)."""

from __future__ import annotations

import json

from pytest_autoware_deploy import machine
from pytest_autoware_deploy.report.store import ReportStore
from pytest_autoware_deploy.report.writer import render_markdown, write_reports

EPYC = {"model": "AMD EPYC", "vendor": "AuthenticAMD", "machine": "x86_64", "int8_kernel": "avx2",
        "flags": {"avx2": True, "fma": True, "f16c": True, "avx512f": False, "avx512_vnni": False}}
FINGERPRINT = {"cpu": EPYC, "python": "3.11.7", "versions": {"onnxruntime": "1.30.0", "torch": "2.13.0"},
               "gpu": [{"name": "NVIDIA H100", "compute_capability": "9.0", "driver": "580.159.04"}]}


def _int8_info(reduce_range, targets=("onnxruntime-cpu",)):
    return {"activation_type": "int8", "weight_type": "int8", "symmetric": True, "per_channel": True,
            "reduce_range": reduce_range, "targets": list(targets), "reduce_range_reason": "set in the spec",
            "avx2_pair_sum_bound": 32640 if reduce_range else 64770, "avx2_saturation_free": reduce_range}


def _doc(info, fp=FINGERPRINT):
    store = ReportStore()
    store.set_spec_info("s", ".", precision_int8=info)
    store.set_evaluation("s", "onnx:int8", {"accuracy": 0.985, "primary_metric": "accuracy", "num_samples": 200})
    return {"generated": "now", "machine": fp, "specs": store.specs}


def test_markdown_names_cpu_isa_and_gpu():
    text = render_markdown(_doc(_int8_info(True)))
    assert "- CPU: AMD EPYC (AuthenticAMD, x86_64); ISA: avx2 fma f16c; int8 kernel: avx2" in text
    assert "- GPU: NVIDIA H100 (sm 9.0, driver 580.159.04)" in text and "onnxruntime 1.30.0" in text
    assert "- int8: activation_type=int8, weight_type=int8, symmetric=True, per_channel=True, reduce_range=True" in text
    assert "pair sums bounded by 32640 (no int16 saturation)" in text and "may saturate" not in text


def test_markdown_warns_when_the_int8_graph_can_saturate_on_this_cpu():
    text = render_markdown(_doc(_int8_info(False)))
    assert "**int8 on this CPU may saturate**: AMD EPYC has no VNNI" in text and "64770 > 32767" in text
    vnni = dict(FINGERPRINT, cpu=dict(EPYC, int8_kernel="vnni"))
    assert "may saturate" not in render_markdown(_doc(_int8_info(False), vnni))
    assert "may saturate" not in render_markdown(_doc(_int8_info(False, targets=("tensorrt",))))  # not run on CPU
    spec_cpu = dict(_int8_info(False), cpu={"model": "AMD EPYC", "int8_kernel": "avx2"})  # the spec's own record wins
    assert "may saturate" in render_markdown(_doc(spec_cpu, vnni))


def test_markdown_without_machine_still_renders():
    text = render_markdown({"generated": "now", "specs": _doc(_int8_info(True))["specs"]})
    assert "- CPU:" not in text and "- int8: activation_type=int8" in text


def test_report_json_records_this_machine(tmp_path):
    store = ReportStore()
    store.set_spec_info("s", tmp_path)
    store.set_evaluation("s", "onnx", {"accuracy": 1.0, "primary_metric": "accuracy", "num_samples": 1})
    write_reports(store)
    doc = json.loads((tmp_path / "deploy_report.json").read_text())
    assert doc["machine"] == machine.fingerprint() and doc["machine"]["cpu"]["flags"] == machine.cpu_info()["flags"]
    assert f"int8 kernel: {machine.cpu_info()['int8_kernel']}" in (tmp_path / "deploy_report.md").read_text()
