"""fp16 verification measures fp16 arithmetic: ONNX Runtime's CPU EP computes an fp16 graph in fp32 and hides
fp16 cancellation and overflow; the emulated graph shows them as numpy's float16 does, and localization
names the node where they first appear."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from pytest_autoware_deploy.export.precision import DEFAULT_TOLERANCES
from pytest_autoware_deploy.verify.compare import Tolerance
from pytest_autoware_deploy.verify.fp16_emulation import (Fp16NotMeasured, emulate_fp16, fp16_plan, rounding_kept,
                                                          save_emulated, upcast_nodes)
from pytest_autoware_deploy.verify.localize import localize_against_onnx
from pytest_autoware_deploy.verify.streaming import BackendAgreement, Criterion, limit_for

from . import planted
from .planted import torch_one_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("torch_one_thread")
H = np.float16
FP16_TOL = DEFAULT_TOLERANCES["fp16"]


class Cancellation(nn.Module):
    def forward(self, x):
        return (x + 2048.0) - 2048.0


class Chain(nn.Module):
    def forward(self, x):
        return (((x + 2048.0) - 2048.0) * 3.0) / 7.0 + 0.1


class Overflow(nn.Module):
    def forward(self, x):
        return (x * 1000.0) * 0.001


def numpy_chain(x):
    """What fp16 arithmetic gives for ``Chain``: every op's result rounded to float16 (numpy's half ops)."""
    v = x.astype(H)
    return (((((v + H(2048)) - H(2048)) * H(3)) / H(7)) + H(0.1)).astype(np.float32)


def graphs(module, example, tmp_path, keep_io_types=True):
    fp32 = onnx.load(str(planted.export(module, example, tmp_path / f"{type(module).__name__}.onnx", output_name="y")))
    return fp32, planted.to_fp16(fp32, keep_io_types=keep_io_types)


def run(model, x):
    return planted.ort_session(model).run(None, {"x": x})[0]


@pytest.fixture(scope="module")
def chain(tmp_path_factory):
    fp32, fp16 = graphs(Chain(), np.zeros((1, 16), np.float32), tmp_path_factory.mktemp("fp16"))
    emulated, info = emulate_fp16(fp16)
    return fp32, fp16, emulated, info


def test_cpu_ep_computes_fp16_graphs_in_fp32_and_hides_cancellation(tmp_path):
    x = np.linspace(0, 30, 64, dtype=np.float32)[None]
    fp32, fp16 = graphs(Cancellation(), x, tmp_path)
    assert {"/Add", "/Sub"} <= set(upcast_nodes(fp16))
    expected_fp16 = ((x.astype(H) + H(2048)) - H(2048)).astype(np.float32)
    assert np.abs(expected_fp16 - x).max() >= 0.9  # fp16 spacing at 2048 is 2
    assert np.abs(run(fp16, x) - x).max() < 0.02  # ... and the plain CPU run shows (almost) none of it
    emulated, _ = emulate_fp16(fp16)
    np.testing.assert_array_equal(run(emulated, x), expected_fp16)


@settings(max_examples=60, deadline=None)
@given(x=arrays(np.float32, (1, 16), elements=st.floats(-3000, 3000, width=32)))
def test_emulation_is_numpy_float16_bit_for_bit(chain, x):
    _, _, emulated, _ = chain
    np.testing.assert_array_equal(run(emulated, x), numpy_chain(x))


def test_emulated_graph_keeps_names_and_io_types(chain):
    _, fp16, emulated, info = chain
    assert [(i.name, i.type.tensor_type.elem_type) for i in emulated.graph.input] == \
        [(i.name, i.type.tensor_type.elem_type) for i in fp16.graph.input]
    assert [o.name for o in emulated.graph.output] == [o.name for o in fp16.graph.output]
    onnx.checker.check_model(emulated, full_check=True)
    produced = {o for n in emulated.graph.node for o in n.output}
    assert {o for n in fp16.graph.node for o in n.output} <= produced  # every tensor name is still there
    assert {"/Add_output_0", "/Sub_output_0", "/Mul_output_0", "/Div_output_0"} <= set(info.rounded)
    assert not any(n.op_type not in ("Cast", "Constant") and any(
        a.type == onnx.AttributeProto.TENSOR and a.t.data_type == TensorProto.FLOAT16 for a in n.attribute)
        for n in emulated.graph.node)


def test_fp16_io_graph_takes_and_returns_fp16(tmp_path):
    x = np.linspace(-5, 30, 16, dtype=np.float32)[None]
    _, fp16 = graphs(Chain(), x, tmp_path, keep_io_types=False)
    emulated, info = emulate_fp16(fp16)
    assert info.boundary_casts == 2
    out = run(emulated, x.astype(H))
    assert out.dtype == np.float16
    np.testing.assert_array_equal(out.astype(np.float32), numpy_chain(x))


def test_overflow_becomes_inf_as_in_fp16(tmp_path):
    x = np.linspace(0, 100, 32, dtype=np.float32)[None]
    fp32, fp16 = graphs(Overflow(), x, tmp_path)
    assert np.isfinite(run(fp16, x)).all()  # the plain CPU run never leaves fp32's range
    emulated, _ = emulate_fp16(fp16)
    with np.errstate(over="ignore"):
        expected = ((x.astype(H) * H(1000)) * H(0.001)).astype(np.float32)
    assert np.isinf(expected).sum() == 11
    np.testing.assert_array_equal(run(emulated, x), expected)


def test_every_rounded_tensor_holds_fp16_values_and_ort_keeps_the_roundings(tmp_path):
    net = planted.build_net()
    x = planted.images(1, seed=12)[0]
    _, fp16 = graphs(net, x, tmp_path)
    emulated, info = emulate_fp16(fp16)
    assert rounding_kept(emulated) == []
    assert len(info.rounded) >= 6
    exposed = onnx.ModelProto()
    exposed.CopyFrom(emulated)
    del exposed.graph.output[:]
    exposed.graph.output.extend(onnx.ValueInfoProto(name=n) for n in info.rounded)
    for name, value in zip(info.rounded, planted.ort_session(exposed).run(None, {"x": x})):
        assert value.dtype == np.float32
        np.testing.assert_array_equal(value, value.astype(H).astype(np.float32), err_msg=name)
    plain, emu = run(fp16, x), run(emulated, x)
    assert not np.array_equal(plain, emu)  # the plain run is not fp16 arithmetic
    assert np.abs(emu - planted.torch_outputs(net, x)).max() < 0.05  # ... and the emulation still is the model


def test_fp16_verification_reflects_fp16_arithmetic(tmp_path):
    """The issue's case: with the fp16 policy's tolerance the plain CPU run passes, the emulated one fails and
    names the output and the samples."""
    xs = [np.full((1, 4), v, np.float32) + np.arange(4, dtype=np.float32) for v in np.linspace(3, 25, 20)]
    fp32, fp16 = graphs(Cancellation(), xs[0], tmp_path)
    emulated, _ = emulate_fp16(fp16)
    crit = Criterion(FP16_TOL["atol"], FP16_TOL["rtol"], FP16_TOL["min_cosine"])
    plain, emu = (BackendAgreement("onnx:fp16", "pytorch", crit) for _ in range(2))
    for i, x in enumerate(xs):
        reference = {"y": x}
        plain.update(i, reference, {"y": run(fp16, x)})
        emu.update(i, reference, {"y": run(emulated, x)})
    assert plain.verdicts(limit_for("fp16"))["y"].passed  # fp32 arithmetic reported as fp16
    verdict = emu.verdicts(limit_for("fp16"))["y"]
    assert not verdict.passed
    assert verdict.message.startswith("backend onnx:fp16 vs pytorch, output 'y': ")
    assert "worst samples: " in verdict.message and verdict.summary["max_abs"] >= 0.9


def test_localization_names_the_cancelling_node(tmp_path):
    x = np.linspace(3, 30, 16, dtype=np.float32)[None]
    fp32, fp16 = graphs(Cancellation(), x, tmp_path)
    emulated, _ = emulate_fp16(fp16)
    tol = Tolerance(FP16_TOL["atol"], FP16_TOL["rtol"])
    result = localize_against_onnx(emulated, {"x": x}, fp32, tol)
    assert (result.node, result.op_type, result.tensor) == ("/Sub", "Sub", "y")
    assert result.last_agreeing == "/Add_output_0"  # 2048 + x is within fp16's relative precision
    assert "first diverging node: '/Sub' (Sub, the model's top level), tensor 'y'" in result.message()
    assert not localize_against_onnx(fp16, {"x": x}, fp32, tol).found  # the plain CPU run hides it


def test_localization_names_the_overflowing_node(tmp_path):
    x = np.linspace(0, 100, 32, dtype=np.float32)[None]
    fp32, fp16 = graphs(Overflow(), x, tmp_path)
    emulated, _ = emulate_fp16(fp16)
    result = localize_against_onnx(emulated, {"x": x}, fp32, Tolerance(FP16_TOL["atol"], FP16_TOL["rtol"]))
    assert (result.node, result.op_type, result.tensor) == ("/Mul", "Mul", "/Mul_output_0")
    assert result.stats["inf"] == 11
    assert "0 NaN and 11 Inf values in the output where the reference is finite" in result.message()


def test_plan_native_for_fp32_emulated_for_upcast_fp16(chain):
    fp32, fp16, _, _ = chain
    native = fp16_plan(fp32)
    assert native.mode == "native" and native.upcast == []
    plan = fp16_plan(fp16)
    assert plan.mode == "emulated" and {"/Add", "/Sub", "/Mul", "/Div"} <= set(plan.upcast)
    assert plan.to_dict()["reason"].startswith("CPUExecutionProvider computes ")


def _if_graph():
    f16 = TensorProto.FLOAT16
    branch = {k: helper.make_graph([helper.make_node(op, ["x16", "c"], [k], name=f"{k}_{op}")], k, [],
                                   [helper.make_tensor_value_info(k, f16, [2])]) for k, op in (("t", "Add"),
                                                                                                ("e", "Sub"))}
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["x16"], to=f16, name="in"),
         helper.make_node("ReduceMax", ["x"], ["m"], keepdims=0, name="max"),
         helper.make_node("Greater", ["m", "z"], ["cond"], name="gt"),
         helper.make_node("If", ["cond"], ["y16"], then_branch=branch["t"], else_branch=branch["e"], name="branch"),
         helper.make_node("Cast", ["y16"], ["y"], to=TensorProto.FLOAT, name="out")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])],
        [numpy_helper.from_array(np.array(2048, H), "c"), numpy_helper.from_array(np.array(0, np.float32), "z")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_graph_that_cannot_be_emulated_claims_no_fp16_result():
    model = _if_graph()
    with pytest.raises(Fp16NotMeasured, match="does not rewrite control-flow subgraphs: node 'branch' \\(If\\)"):
        emulate_fp16(model)
    with pytest.raises(Fp16NotMeasured, match=r"computes 2 fp16 node\(s\) in fp32 \(t_Add, e_Sub\) and the graph "
                                              "cannot be emulated"):
        fp16_plan(model)


def test_save_emulated_writes_a_checked_graph(chain, tmp_path):
    _, fp16, _, _ = chain
    src = tmp_path / "fp16.onnx"
    onnx.save(fp16, str(src))
    info = save_emulated(src, tmp_path / "out" / "emulated.onnx")
    assert info.to_dict()["rounded"] == len(info.rounded) > 0
    x = np.linspace(0, 9, 16, dtype=np.float32)[None]
    np.testing.assert_array_equal(run(onnx.load(str(tmp_path / "out" / "emulated.onnx")), x), numpy_chain(x))
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["emulated.onnx"]  # no temporary left



def _shape_scaled_graph():
    """fp16 ``x / sqrt(x.shape[1]) * (x > 0)``: the scale comes from a static shape (ONNX Runtime folds the chain,
    rounding Casts included, into a constant) and the mask is a bool -> fp16 Cast (exact)."""
    f16 = TensorProto.FLOAT16
    graph = helper.make_graph(
        [helper.make_node("Cast", ["x"], ["x16"], to=f16, name="in"),
         helper.make_node("Shape", ["x16"], ["shape"], name="shape"),
         helper.make_node("Gather", ["shape", "one"], ["dim"], axis=0, name="dim"),
         helper.make_node("Cast", ["dim"], ["dim16"], to=f16, name="dim16"),
         helper.make_node("Sqrt", ["dim16"], ["scale"], name="sqrt"),
         helper.make_node("Div", ["x16", "scale"], ["scaled"], name="div"),
         helper.make_node("Greater", ["x16", "zero"], ["pos"], name="gt"),
         helper.make_node("Cast", ["pos"], ["mask"], to=f16, name="mask"),
         helper.make_node("Mul", ["scaled", "mask"], ["y16"], name="mul"),
         helper.make_node("Cast", ["y16"], ["y"], to=TensorProto.FLOAT, name="out")],
        "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 6])],
        [numpy_helper.from_array(np.array(1, np.int64), "one"), numpy_helper.from_array(np.array(0, H), "zero")])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_roundings_ort_would_fold_away_run_unoptimized():
    """ORT's optimizations fold the shape-derived rounding chain (the rounding Casts' names vanish); unoptimized it
    keeps every rounding, so the plan runs the emulation unoptimized and its result is numpy's float16 one."""
    import onnxruntime as ort

    model = _shape_scaled_graph()
    emulated, info = emulate_fp16(model)
    assert "mask" not in info.rounded and info.exact >= 1  # bool -> fp16 is exact: no rounding
    assert rounding_kept(emulated)  # the default optimizations drop roundings (by name)
    assert rounding_kept(emulated, level=ort.GraphOptimizationLevel.ORT_DISABLE_ALL) == []
    plan = fp16_plan(model)
    assert plan.mode == "emulated" and plan.optimization_level == "disable_all" and "runs unoptimized" in plan.reason
    x = np.random.default_rng(0).normal(0, 300, (2, 6)).astype(np.float32)
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    got = ort.InferenceSession(emulated.SerializeToString(), opts, providers=["CPUExecutionProvider"]).run(
        None, {"x": x})[0]
    x16 = x.astype(H)
    want = ((x16 / np.sqrt(H(6))).astype(H) * (x16 > 0).astype(H)).astype(np.float32)
    np.testing.assert_array_equal(got, want)
