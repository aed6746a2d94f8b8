"""The readable report shows what deploy_report.json holds: phases and the throughput sweep included."""

from __future__ import annotations

from pytest_autoware_deploy.report.store import ReportStore
from pytest_autoware_deploy.report.writer import render_markdown

LAT = {"min": 1.0, "max": 3.0, "mean": 2.0, "median": 2.0, "p50": 2.0, "p90": 2.5, "p95": 2.8, "p99": 2.9,
       "std": 0.1, "rounds": 10}


def test_markdown_has_latency_phases_and_throughput():
    store = ReportStore()
    store.set_latency("s", "onnx@cuda:0", LAT, e2e_ms=LAT)
    store.set_phases("s", "onnx@cuda:0", {"h2d": LAT, "compute": LAT, "d2h": LAT}, host_memory="pinned")
    store.note_backend("s", "onnx@cuda:0", latency_cuda_graph_ms=LAT)
    store.set_latency("s", "pytorch@cuda:0", LAT)
    store.note_backend("s", "pytorch@cuda:0", cuda_graph_unavailable="pytorch: torch could not capture")
    store.set_throughput("s", "onnx@cuda:0", 4, 2000.0, LAT)
    store.set_throughput("s", "onnx@cuda:0", 1, 500.0, LAT)
    text = render_markdown({"generated": "now", "specs": store.specs})
    assert "| onnx@cuda:0 [h2d, pinned host memory] |" in text and "| onnx@cuda:0 [d2h, pinned host memory] |" in text
    assert "| onnx@cuda:0 [compute] |" in text and "| onnx@cuda:0 (CUDA graph replay) | 1.000 |" in text
    assert "| pytorch@cuda:0 (CUDA graph) | pytorch: torch could not capture |" in text
    assert "(end to end, host copies)" in text
    rows = [line for line in text.splitlines() if line.startswith("| onnx@cuda:0 | ")]
    assert rows[-2].startswith("| onnx@cuda:0 | 1 | 500.0 |") and rows[-1].startswith("| onnx@cuda:0 | 4 | 2000.0 |")
