"""report/summary.py: the cross-backend summary names what onnxslim did to each graph (the spec's and its stages')."""

from __future__ import annotations

from pytest_autoware_deploy.report.store import ReportStore
from pytest_autoware_deploy.report.summary import render_summary


def test_the_summary_lists_the_simplification_of_the_graph_and_of_each_stage():
    store = ReportStore()
    store.set_spec_info("cp", ".", onnx_simplify={"onnxslim": "0.1.98", "nodes_before": 40, "nodes_after": 31})
    store.set_spec_info("cp/head", ".", onnx_simplify={"onnxslim": "0.1.98", "nodes_before": 120, "nodes_after": 97})
    store.set_spec_info("plain", ".")
    text = render_summary({"specs": store.specs})
    assert "  cp: onnxslim 0.1.98, 40 -> 31 nodes" in text and "  cp/head: onnxslim 0.1.98, 120 -> 97 nodes" in text
    assert text.count("ONNX simplified (onnx_config.simplify):") == 1  # the plain spec simplified nothing
