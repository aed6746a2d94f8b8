"""Precision policies as ONNX transforms, on small real graphs."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from torch import nn

from pytest_autoware_deploy.errors import SpecError
from pytest_autoware_deploy.export.precision import derive, max_drop_for, node_output_ranges, tolerance_for
from pytest_autoware_deploy.spec.load import load_spec, parse_backend

from ..conftest import write_tiny_spec


class Sensitive(nn.Module):
    """conv -> huge scale (leaves the fp16 range) -> softmax: both must stay fp32 under the fp16 policy."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)

    def forward(self, x):
        y = self.conv(x) * 1.0e5
        return torch.softmax(y.mean(dim=(2, 3)) / 1.0e5, dim=1)


def _export(model, path, shape=(1, 3, 8, 8)):
    torch.onnx.export(model.eval(), (torch.randn(*shape),), str(path), input_names=["image"],
                      output_names=["logits"], dynamic_axes={"image": {0: "b"}, "logits": {0: "b"}},
                      opset_version=17, dynamo=False)
    return path


def _samples(n=4, shape=(1, 3, 8, 8)):
    rng = np.random.default_rng(0)
    return [{"inputs": {"image": rng.standard_normal(shape).astype(np.float32)}, "target": 0} for _ in range(n)]


@pytest.fixture
def spec(tmp_path):
    return load_spec(write_tiny_spec(tmp_path / "p"))


def test_unchanged_policies_reuse_the_base_graph(spec, tmp_path):
    base = _export(Sensitive(), tmp_path / "m.onnx")
    for policy in ("auto", "fp32_tf32", "strongly_typed"):
        art = derive(spec, base, policy, _samples())
        assert art.path == base and not art.built


def test_fp16_keeps_sensitive_ops_and_overflowing_nodes_in_fp32(spec, tmp_path):
    base = _export(Sensitive(), tmp_path / "m.onnx")
    ranges = node_output_ranges(base, [s["inputs"] for s in _samples()])
    assert max(ranges.values()) > 65504 / 2
    art = derive(spec, base, "fp16", _samples())
    assert art.built and art.info["fp32_nodes_for_range"]
    model = onnx.load(str(art.path))
    assert model.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.FLOAT  # keep_io_types
    has_fp16 = any(i.data_type == onnx.TensorProto.FLOAT16 for i in model.graph.initializer)
    assert has_fp16 or any(n.op_type == "Cast" for n in model.graph.node)
    feed = _samples()[0]["inputs"]
    ref = ort.InferenceSession(str(base)).run(None, feed)[0]
    out = ort.InferenceSession(str(art.path)).run(None, feed)[0]
    assert np.isfinite(out).all()
    np.testing.assert_allclose(out, ref, atol=2e-2)
    again = derive(spec, base, "fp16", _samples())
    assert not again.built and again.path == art.path and again.info == art.info


def test_int8_is_explicit_qdq_calibrated_on_samples(spec, tmp_path):
    base = _export(Sensitive(), tmp_path / "m.onnx")
    art = derive(spec, base, "int8", _samples(8))
    ops = {n.op_type for n in onnx.load(str(art.path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    assert art.info["format"] == "QDQ" and art.info["calibration_samples"] == 8
    out = ort.InferenceSession(str(art.path)).run(None, _samples()[0]["inputs"])[0]
    assert out.shape == (1, 4)


def test_changed_base_graph_rederives(spec, tmp_path):
    base = _export(Sensitive(), tmp_path / "m.onnx")
    first = derive(spec, base, "fp16", _samples())
    torch.manual_seed(1)
    other = Sensitive()
    nn.init.normal_(other.conv.weight)
    _export(other, base)
    second = derive(spec, base, "fp16", _samples())
    assert second.built and second.key != first.key


def test_policy_backend_names(tmp_path):
    assert str(parse_backend("onnx:fp16@cuda:0", "s.py")) == "onnx:fp16@cuda:0"
    assert parse_backend("onnx:fp16@cuda:0", "s.py").test_id == "onnx-fp16-cuda0"
    assert parse_backend("onnx:auto", "s.py").policy is None
    with pytest.raises(SpecError, match="did you mean 'fp16'"):
        parse_backend("onnx:fp61", "s.py")
    with pytest.raises(SpecError, match="not to the pytorch reference"):
        parse_backend("pytorch:fp16", "s.py")


def test_policies_expand_exported_backends_only(tmp_path):
    spec = load_spec(write_tiny_spec(tmp_path), cfg_options={"precision.policies": ["auto", "fp16", "int8"]})
    assert [str(b) for b in spec.backends] == ["pytorch", "onnx", "onnx:fp16", "onnx:int8"]
    seed_style = load_spec(write_tiny_spec(tmp_path / "s"),
                           cfg_options={"backend_config.common_config.precision_policy": "fp16"})
    assert [str(b) for b in seed_style.backends] == ["pytorch", "onnx:fp16"]


def test_per_policy_tolerances_and_drop(tmp_path):
    spec = load_spec(write_tiny_spec(tmp_path), cfg_options={
        "precision.tolerances": {"int8": {"atol": 0.2}}, "precision.max_drop": {"fp16": 0.002}})
    assert tolerance_for(spec, "auto") == {"atol": 1e-4, "rtol": 1e-3, "min_cosine": None}
    assert tolerance_for(spec, "int8")["atol"] == 0.2 and tolerance_for(spec, "int8")["min_cosine"] == 0.98
    assert max_drop_for(spec, "fp16") == 0.002
    assert max_drop_for(spec, "int8") == 0.03  # spec's max_drop 0.0, int8 default allowance


def test_auto_on_cuda_is_verified_as_tf32_with_the_spec_as_floor(tmp_path):
    from pytest_autoware_deploy.export.precision import effective_policy, tolerance_for
    from pytest_autoware_deploy.spec.load import load_spec

    from ..conftest import write_tiny_spec

    spec = load_spec(write_tiny_spec(tmp_path))  # atol 1e-4, rtol 1e-3
    assert effective_policy("auto", "cuda:0") == "fp32_tf32" and effective_policy("auto", "cpu") == "auto"
    assert effective_policy("fp16", "cuda:0") == "fp16"
    assert tolerance_for(spec, "auto", "cpu")["atol"] == 1e-4
    assert tolerance_for(spec, "auto", "cuda:0")["atol"] == 5e-3
    loose = load_spec(write_tiny_spec(tmp_path / "loose"), cfg_options={"verification.atol": 0.1})
    assert tolerance_for(loose, "auto", "cuda:0")["atol"] == 0.1


def test_repeated_identical_casts_are_dropped_and_different_ones_kept():
    import onnx
    from onnx import TensorProto, helper

    from pytest_autoware_deploy.export.precision import drop_duplicate_producers

    cast = helper.make_node("Cast", ["x"], ["x32"], to=TensorProto.FLOAT)
    graph = helper.make_graph(
        [cast, helper.make_node("Cast", ["x"], ["x32"], to=TensorProto.FLOAT),
         helper.make_node("Relu", ["x32"], ["y"])], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    model = helper.make_model(graph)
    assert drop_duplicate_producers(model) == 1
    onnx.checker.check_model(model)
    other = helper.make_model(helper.make_graph(
        [cast, helper.make_node("Cast", ["x"], ["x32"], to=TensorProto.DOUBLE)], "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT16, [2])],
        [helper.make_tensor_value_info("x32", TensorProto.FLOAT, [2])]))
    assert drop_duplicate_producers(other) == 0
