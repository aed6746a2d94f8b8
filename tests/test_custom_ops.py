"""custom_ops.py: a graph with custom ops runs in ONNX Runtime through a registered op set's reference kernel;
the file on disk keeps its domain; a graph whose custom op nobody implements is one error naming it."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from pytest_autoware_deploy import custom_ops
from pytest_autoware_deploy.backends.onnxruntime import OnnxRuntimeRunner
from pytest_autoware_deploy.errors import ArtifactError

ort = pytest.importorskip("onnxruntime")
ortx = pytest.importorskip("onnxruntime_extensions")


def _graph(path, domain="test.autoware", op="ScaleRows"):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 3])
    nodes = [helper.make_node("Relu", ["x"], ["r"]),
             helper.make_node(op, ["r"], ["y"], domain=domain, scale=3)]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]),
                              opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(domain, 1)])
    onnx.save(model, path)
    return path


class ScaleRowsOps:
    """An op set the way a family writes one: a Python kernel in onnxruntime-extensions' domain, the model's
    domain aliased to it in the in-memory copy, the integer attribute passed as PyOps take it."""

    domain = "test.autoware"
    ops = frozenset({"ScaleRows"})
    calls = 0

    def prepare(self, model, opts):
        from onnxruntime_extensions import PyCustomOpDef, get_library_path, onnx_op

        @onnx_op(op_type="ScaleRows", inputs=[PyCustomOpDef.dt_float], outputs=[PyCustomOpDef.dt_float],
                 attrs={"scale": PyCustomOpDef.dt_int64})
        def scale_rows(x, scale):
            type(self).calls += 1
            return (np.asarray(x) * scale).astype(np.float32)

        opts.register_custom_ops_library(get_library_path())
        for node in model.graph.node:
            if node.domain == self.domain:
                node.domain = "ai.onnx.contrib"
        for opset in model.opset_import:
            if opset.domain == self.domain:
                opset.domain = "ai.onnx.contrib"
        return model


@pytest.fixture
def registered(monkeypatch):
    monkeypatch.setattr(custom_ops, "op_sets", lambda: {"test.autoware": [ScaleRowsOps()]})


def test_a_standard_graph_is_loaded_from_its_path_unchanged(tmp_path):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])
    model = helper.make_model(helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x],
                                                [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])]))
    onnx.save(model, tmp_path / "m.onnx")
    assert custom_ops.session_source(tmp_path / "m.onnx", ort.SessionOptions()) == str(tmp_path / "m.onnx")


def test_the_runner_runs_the_custom_op_through_its_reference_kernel(tmp_path, registered):
    path = _graph(str(tmp_path / "custom.onnx"))
    runner = OnnxRuntimeRunner(path)
    with runner:
        out = runner.infer({"x": np.array([[-1, 2, 3], [4, -5, 6]], np.float32)})
    np.testing.assert_array_equal(out["y"], np.array([[0, 6, 9], [12, 0, 18]], np.float32))
    assert ScaleRowsOps.calls >= 1
    on_disk = onnx.load(path)  # what Autoware loads keeps its own domain
    assert {n.domain for n in on_disk.graph.node} == {"", "test.autoware"}


def test_an_unimplemented_custom_op_is_one_error_naming_domain_and_op(tmp_path, registered):
    path = _graph(str(tmp_path / "other.onnx"), op="QuickCumsum")
    with pytest.raises(ArtifactError, match=r"other\.onnx: custom ops test\.autoware::QuickCumsum have no "
                                            r"ONNX Runtime reference kernel.*\['ScaleRows'\]"):
        custom_ops.session_source(path, ort.SessionOptions())


def test_the_callers_model_is_not_edited(registered, tmp_path):
    model = onnx.load(_graph(str(tmp_path / "m.onnx")))
    blob = custom_ops.session_source(model, ort.SessionOptions())
    assert {n.domain for n in model.graph.node} == {"", "test.autoware"}
    assert {n.domain for n in onnx.load_from_string(blob).graph.node} == {"", "ai.onnx.contrib"}
