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


# -- int8 on every x86 CPU (issue 10) ------------------------------------------------------------------------

class Saturating(nn.Module):
    """relu -> conv whose weights are all positive: every (u8 activation, s8 weight) pair is large and of one
    sign, so ONNX Runtime's non-VNNI x86 kernel (VPMADDUBSW: pairs summed into a saturating int16) clips
    them with 8-bit weights (2*255*127 > 32767) and cannot with 7-bit ones (2*255*64 <= 32767)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(16, 4, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.uniform_(0.5, 1.0)

    def forward(self, x):
        return self.conv(torch.relu(x))


def _positive_samples(n=4, shape=(1, 16, 8, 8)):
    rng = np.random.default_rng(0)
    return [{"inputs": {"image": (2 * rng.random(shape)).astype(np.float32)}, "target": 0} for _ in range(n)]


def _fused_and_exact(path, feed):
    """The int8 graph run as ONNX Runtime runs it (Q/DQ fused into int8 kernels) and run exactly: with
    session.disable_quant_qdq each DQ -> op -> Q stays fp32 arithmetic on the quantized values."""
    fused = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, feed)[0]
    opts = ort.SessionOptions()
    opts.add_session_config_entry("session.disable_quant_qdq", "1")
    exact = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"]).run(None, feed)[0]
    return fused, exact


def _int8_weight_peak(path) -> int:
    from onnx import numpy_helper

    model = onnx.load(str(path))
    return max(int(np.abs(numpy_helper.to_array(t).astype(np.int32)).max()) for t in model.graph.initializer
               if t.data_type == onnx.TensorProto.INT8 and len(t.dims) == 4)


def test_int8_default_computes_the_graph_exactly_on_this_cpu(tmp_path):
    """Regression (issue 10): on an AVX2 CPU without VNNI the default int8 graph gave the bundled spec 0.555
    accuracy instead of 0.985. The default now has 7-bit weights wherever ONNX Runtime's CPU EP runs it."""
    spec = load_spec(write_tiny_spec(tmp_path / "p"), cfg_options={"precision.policies": ["auto", "int8"]})
    base = _export(Saturating(), tmp_path / "m.onnx", shape=(1, 16, 8, 8))
    art = derive(spec, base, "int8", _positive_samples())
    assert art.info["targets"] == ["onnxruntime-cpu"] and art.info["reduce_range"] is True
    assert art.info["weight_bits"] == 7 and art.info["avx2_pair_sum_bound"] == 32640
    assert art.info["avx2_saturation_free"] and art.info["activation_type"] == art.info["weight_type"] == "int8"
    assert _int8_weight_peak(art.path) <= 64
    for sample in _positive_samples():
        fused, exact = _fused_and_exact(art.path, sample["inputs"])
        np.testing.assert_allclose(fused, exact, atol=1e-3 * np.abs(exact).max())
    cached = derive(spec, base, "int8", _positive_samples())
    assert not cached.built and cached.info["reduce_range"] is True and cached.info["cpu"]["int8_kernel"]


def test_full_range_int8_saturates_exactly_where_the_machine_says(tmp_path):
    """8-bit weights (what TensorRT-only specs get): wrong on this CPU if and only if machine.py says ONNX
    Runtime's kernels here use VPMADDUBSW (x86 without VNNI/AMX). Checks machine.int8_may_saturate against the
    runtime itself, on whatever CPU runs the suite."""
    from pytest_autoware_deploy import machine

    spec = load_spec(write_tiny_spec(tmp_path / "p"), cfg_options={
        "precision.policies": ["int8"], "precision.int8.reduce_range": False})
    base = _export(Saturating(), tmp_path / "m.onnx", shape=(1, 16, 8, 8))
    art = derive(spec, base, "int8", _positive_samples())
    assert art.info["reduce_range"] is False and art.info["reduce_range_reason"] == "set in the spec"
    assert art.info["avx2_pair_sum_bound"] == 64770 and not art.info["avx2_saturation_free"]
    assert _int8_weight_peak(art.path) == 127
    fused, exact = _fused_and_exact(art.path, _positive_samples()[0]["inputs"])
    saturated = np.abs(fused - exact).max() > 0.05 * np.abs(exact).max()
    assert saturated == machine.int8_may_saturate(machine.cpu_info()), (
        f"int8 kernel {machine.cpu_info()['int8_kernel']!r}: max |fused - exact| {np.abs(fused - exact).max():.3g}")


@pytest.mark.parametrize("backends, policies, extra, reduce_range, targets", [
    (["pytorch", "onnx"], ["auto", "int8"], {}, True, ["onnxruntime-cpu"]),
    (["pytorch", "onnx"], ["auto"], {}, True, []),  # nothing says where: the graph must hold everywhere
    (["pytorch", "tensorrt"], ["int8"], {}, False, ["tensorrt"]),
    (["pytorch", "tensorrt_rtx"], ["int8"], {}, False, ["tensorrt"]),  # the registry's int8_target
    (["pytorch", "onnxruntime@cuda:0"], ["int8"], {}, False, ["onnxruntime-cuda"]),  # an alias
    (["pytorch", "onnx@cuda:0"], ["int8"], {}, False, ["onnxruntime-cuda"]),
    (["pytorch", "onnx", "tensorrt"], ["int8"], {}, True, ["onnxruntime-cpu", "tensorrt"]),  # CPU correctness wins
    (["pytorch", "onnx"], ["int8"], {"export.mode": "both"}, True, ["onnxruntime-cpu", "tensorrt"]),
    (["pytorch", "tensorrt"], ["int8"], {"precision.int8.reduce_range": True}, True, ["tensorrt"]),
    (["pytorch", "onnx"], ["int8"], {"precision.int8.reduce_range": False}, False, ["onnxruntime-cpu"]),
])
def test_int8_defaults_follow_where_the_graph_runs(tmp_path, backends, policies, extra, reduce_range, targets):
    from pytest_autoware_deploy.export.precision import int8_settings

    spec = load_spec(write_tiny_spec(tmp_path), cfg_options={
        "evaluation.models_to_evaluate": backends, "precision.policies": policies, **extra})
    settings, why = int8_settings(spec)
    assert settings["reduce_range"] is reduce_range and why["targets"] == targets
    assert settings["activation_type"] == settings["weight_type"] == "int8" and settings["symmetric"]
    assert spec.cfg["precision"]["int8"]["reduce_range"] == extra.get("precision.int8.reduce_range")  # not mutated


@pytest.mark.parametrize("backends, extra, key", [
    (["pytorch", "tensorrt"], {"precision.int8.activation_type": "uint8"}, "precision.int8.activation_type"),
    (["pytorch", "tensorrt"], {"precision.int8.symmetric": False}, "precision.int8.symmetric"),
    (["pytorch", "onnx"], {"precision.int8.weight_type": "uint8"}, "precision.int8.weight_type"),
])
def test_int8_settings_a_consumer_cannot_run_are_one_error(tmp_path, backends, extra, key):
    from pytest_autoware_deploy.export.precision import int8_settings

    spec = load_spec(write_tiny_spec(tmp_path), cfg_options={
        "evaluation.models_to_evaluate": backends, "precision.policies": ["int8"], **extra})
    with pytest.raises(SpecError, match=key.replace(".", r"\.")) as err:
        int8_settings(spec)
    assert str(spec.file) in str(err.value)


def test_int8_keys_are_validated(tmp_path):
    with pytest.raises(SpecError, match=r"precision\.int8\.reduce_range: expected bool or None"):
        load_spec(write_tiny_spec(tmp_path / "a"), cfg_options={"precision.int8.reduce_range": "yes"})
    with pytest.raises(SpecError, match=r"precision\.int8\.activation_type: 'unit8' is not one of .*did you mean 'uint8'"):
        load_spec(write_tiny_spec(tmp_path / "b"), cfg_options={"precision.int8.activation_type": "unit8"})


def test_uint8_activations_on_cpu_only_quantize_asymmetrically(tmp_path):
    """ORT's CPU recommendation (u8 activations, s8 weights, 7-bit) is available to specs without TensorRT."""
    spec = load_spec(write_tiny_spec(tmp_path / "p"), cfg_options={
        "precision.policies": ["int8"], "precision.int8.activation_type": "uint8", "precision.int8.symmetric": False})
    base = _export(Saturating(), tmp_path / "m.onnx", shape=(1, 16, 8, 8))
    art = derive(spec, base, "int8", _positive_samples())
    model = onnx.load(str(art.path))
    q_types = {init.data_type for init in model.graph.initializer if init.name.endswith("zero_point")}
    assert onnx.TensorProto.UINT8 in q_types and art.info["activation_type"] == "uint8"
    fused, exact = _fused_and_exact(art.path, _positive_samples()[0]["inputs"])
    np.testing.assert_allclose(fused, exact, atol=1e-3 * np.abs(exact).max())


def test_bundled_spec_int8_holds_on_this_cpu(pytester, tmp_path):
    """Regression (issue 10), the reported failure itself: the bundled spec's onnx:int8 gave accuracy 0.555
    (pytorch 0.985) and failed verification on an AVX2 EPYC without VNNI, and passed on a VNNI Xeon."""
    import json
    from pathlib import Path

    from pytest_autoware_deploy.models.calibration_status_classification.synthetic import SEEDS, write_split

    spec_file = Path(__file__).resolve().parents[2] / "deploy_specs" / "calibration_status_classification.py"
    val = write_split(tmp_path / "calib", "val", 80, SEEDS["val"], 120, 192)  # 80 of the 200: the test's time
    work = tmp_path / "wd"
    result = pytester.runpytest_inprocess(
        f"--deploy-config={spec_file}", "--deploy-cfg-options", f"runtime_io.info_pkl={val}",
        "precision.policies=['auto','int8']", f"--deploy-work-dir={work}", "-k", "onnx-int8",
        "--benchmark-disable", "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert result.ret == 0 and outcomes.get("passed", 0) >= 6 and not outcomes.get("failed"), result.stdout.str()[-3000:]
    report = json.loads((work / "deploy_report.json").read_text())
    body = report["specs"]["calibration_status_classification"]
    int8, fp32 = body["backends"]["onnx:int8"], body["backends"]["pytorch"]
    assert int8["evaluation"]["accuracy"] >= fp32["evaluation"]["accuracy"] - 0.01  # 0.985 = 0.985 here
    assert int8["verification"]["passed"] and int8["verification"]["outputs"]["output"]["cosine"] >= 0.99
    assert body["precision_int8"]["reduce_range"] is True and body["precision_int8"]["weight_bits"] == 7
    assert report["machine"]["cpu"]["int8_kernel"] == body["precision_int8"]["cpu"]["int8_kernel"]
    assert "- int8: activation_type=int8" in (work / "deploy_report.md").read_text()


# -- fp32 islands: precision.fp16.node_block_list / precision.int8.nodes_to_exclude (issue 13 §3) ---------------
def test_fp16_node_block_list_keeps_the_named_nodes_in_fp32_and_is_in_the_key(spec, tmp_path):
    from pytest_autoware_deploy.export.precision import with_fp32_nodes

    base = _export(Sensitive(), tmp_path / "m.onnx")
    pure = derive(spec, base, "fp16", _samples())
    conv = next(n.name for n in onnx.load(str(base)).graph.node if n.op_type == "Conv")
    mixed = derive(with_fp32_nodes(spec, "fp16", [conv]), base, "fp16", _samples())
    assert mixed.built and mixed.key != pure.key and mixed.info["fp32_nodes_from_spec"] == [conv]

    def conv_weight_type(path):
        model = onnx.load(str(path))
        node = next(n for n in model.graph.node if n.name == conv)
        producers = {o: n for n in model.graph.node for o in n.output}
        inits = {i.name: i.data_type for i in model.graph.initializer}
        w = node.input[1]
        return inits.get(w) or inits.get(producers[w].input[0])  # an fp16 weight reaches it through a Cast
    assert conv_weight_type(pure.path) == onnx.TensorProto.FLOAT16
    assert conv_weight_type(mixed.path) == onnx.TensorProto.FLOAT
    assert spec.cfg["precision"]["fp16"]["node_block_list"] == []  # the copy, not the spec, changed


def test_int8_nodes_to_exclude_leaves_the_named_node_unquantized(spec, tmp_path):
    from pytest_autoware_deploy.export.precision import with_fp32_nodes

    base = _export(Sensitive(), tmp_path / "m.onnx")
    conv = next(n.name for n in onnx.load(str(base)).graph.node if n.op_type == "Conv")

    def reads_dequantized(path):
        model = onnx.load(str(path))
        dq = {o for n in model.graph.node if n.op_type == "DequantizeLinear" for o in n.output}
        return bool(dq.intersection(next(n for n in model.graph.node if n.name == conv).input))
    assert reads_dequantized(derive(spec, base, "int8", _samples(4)).path)
    art = derive(with_fp32_nodes(spec, "int8", [conv]), base, "int8", _samples(4))
    assert not reads_dequantized(art.path) and art.info["nodes_excluded"] == [conv]


@pytest.mark.parametrize("policy,key", [("fp16", "node_block_list"), ("int8", "nodes_to_exclude")])
def test_unknown_island_node_is_one_error_naming_the_key(tmp_path, policy, key):
    spec = load_spec(write_tiny_spec(tmp_path / "p"), cfg_options={f"precision.{policy}.{key}": ["/conv/Cnv"]})
    base = _export(Sensitive(), tmp_path / "m.onnx")
    with pytest.raises(SpecError, match=rf"precision\.{policy}\.{key}: '/conv/Cnv' is not a node of the exported "
                                        r"graph .*did you mean '/conv/Conv'"):
        derive(spec, base, policy, _samples())
