"""Localization: defects planted in exported graphs are traced to the node that introduces them, and clean
exports raise no alarm (BatchNorm folded into the Conv before it included)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest

from pytest_autoware_deploy.verify.compare import Tolerance
from pytest_autoware_deploy.verify.localize import (INSERTED_OPS, localize, localize_against_onnx,
                                                    localize_against_torch, module_path, scope_chain,
                                                    topological_nodes)
from pytest_autoware_deploy.verify.streaming import BackendAgreement, Criterion

from . import planted
from .planted import torch_one_thread  # noqa: F401  (fixture)

pytestmark = pytest.mark.usefixtures("torch_one_thread")
TOL = Tolerance(1e-4, 1e-3)


@pytest.fixture(scope="module")
def net():
    return planted.build_net()


@pytest.fixture(scope="module")
def net_path(net, tmp_path_factory):
    return planted.export(net, planted.images(1)[0], tmp_path_factory.mktemp("localize") / "net.onnx")


def fresh(path) -> onnx.ModelProto:
    return onnx.load(str(path))


def streamed(net, model, xs):
    """Every sample through both backends, as evaluation feeds them (the streaming verdict of ``logits``)."""
    session = planted.ort_session(model)
    agreement = BackendAgreement("onnx", "pytorch", Criterion(TOL.atol, TOL.rtol))
    for i, x in enumerate(xs):
        agreement.update(i, {"logits": planted.torch_outputs(net, x)}, {"logits": session.run(None, {"x": x})[0]})
    return agreement.verdicts()["logits"]


def test_clean_export_raises_no_alarm(net, net_path):
    for x in planted.images(3, seed=5):
        result = localize(net_path, {"x": x}, net, TOL, input_names=["x"])
        assert not result.found, result.message()
        assert result.compared >= 8  # every module call with a node, the folded BatchNorms through their Conv
    assert "no intermediate tensor breaks atol=0.0001, rtol=0.001" in result.message()


def test_export_only_divergence_in_a_middle_layer(net, net_path):
    def scale_channel(w):
        w[1] *= 1.3
        return w

    model = planted.edit_initializer(fresh(net_path), "/layer2/conv/Conv", 1, scale_channel)
    verdict = streamed(net, model, planted.images(12, seed=2))
    assert not verdict.passed and "output 'logits': 12 of 12 samples" in verdict.message
    worst = verdict.summary["worst"][0]["sample"]
    assert f"worst samples: {worst}," in verdict.message

    result = localize(model, {"x": planted.images(12, seed=2)[worst]}, net, TOL, input_names=["x"])
    assert result.found
    assert (result.node, result.op_type, result.module) == ("/layer2/conv/Conv", "Conv", "layer2.conv")
    assert result.tensor == "/layer2/conv/Conv_output_0"
    assert result.last_agreeing == "/layer1/Add_output_0"
    assert result.stats["max_abs"] > 0.01 and result.stats["nan"] == 0
    message = result.message()
    assert message.startswith("first diverging node: '/layer2/conv/Conv' (Conv, module 'layer2.conv'), tensor "
                              "'/layer2/conv/Conv_output_0' vs pytorch module 'layer2.bn' output (module "
                              "'layer2.conv' and 'layer2.bn' are one node in the graph): tensor")
    assert "elements exceed atol=0.0001, rtol=0.001" in message
    report = result.to_dict()
    assert report["node"] == "/layer2/conv/Conv" and report["module"] == "layer2.conv" and report["found"]


def test_nan_only_in_the_exported_graph(net, net_path):
    def nan_bias(b):
        b[2] = np.nan
        return b

    model = planted.edit_initializer(fresh(net_path), "/layer1/conv/Conv", 2, nan_bias)
    verdict = streamed(net, model, planted.images(5, seed=4))
    assert not verdict.passed
    assert "new NaN 20, new Inf 0" in verdict.message  # 4 logits x 5 samples
    result = localize(model, {"x": planted.images(1, seed=4)[0]}, net, TOL, input_names=["x"])
    assert (result.node, result.op_type, result.module) == ("/layer1/conv/Conv", "Conv", "layer1.conv")
    assert result.stats["nan"] == 12 * 12  # one channel of the feature map
    assert "144 NaN and 0 Inf values in the output where the reference is finite" in result.message()
    # deploy_report.json stays standard JSON: an infinite score or relative error is written as a string
    assert json.loads(json.dumps(verdict.summary, allow_nan=False))["worst"][0]["score"] == "inf"
    assert json.loads(json.dumps(result.to_dict(), allow_nan=False))["node"] == "/layer1/conv/Conv"


def test_divergence_on_one_sample_in_fifty(net, net_path):
    xs = planted.images(50, seed=6)
    xs[37][0, 0, 3, 4] = 9.0  # the only sample over the planted branch's threshold
    model = planted.plant_data_dependent(fresh(net_path), threshold=6.0)
    verdict = streamed(net, model, xs)
    assert not verdict.passed
    assert "1 of 50 samples (2.00%) break" in verdict.message and "worst samples: 37\n" in verdict.message

    result = localize(model, {"x": xs[37]}, net, TOL, input_names=["x"])
    assert (result.node, result.op_type, result.module) == ("planted/Add", "Add", "")
    assert result.tensor == "logits" and result.counterpart == "the pytorch model's output"
    assert result.last_agreeing == "logits_before_plant"  # the head agreed: the divergence is after it
    assert result.suspects == ["planted/ReduceMax", "planted/Greater", "planted/Cast", "planted/Mul"]
    assert "first diverging node: 'planted/Add' (Add, the model's top level)" in result.message()
    assert not localize(model, {"x": xs[0]}, net, TOL, input_names=["x"]).found


def test_chunks_bound_the_exposed_tensors_and_stop_at_the_divergence(net, net_path):
    model = planted.edit_initializer(fresh(net_path), "/layer1/conv/Conv", 1, lambda w: w * 1.5)
    x = planted.images(1, seed=8)[0]
    one = localize_against_torch(model, {"x": x}, net, ["x"], TOL, chunk_size=1)
    wide = localize_against_torch(model, {"x": x}, net, ["x"], TOL, chunk_size=64)
    assert one.node == wide.node == "/layer1/conv/Conv"
    assert wide.runs == 1
    assert one.runs == one.compared == 3  # stem conv, stem relu, then the divergence: nothing after it ran
    clean = localize_against_torch(fresh(net_path), {"x": x}, net, ["x"], TOL, chunk_size=3)
    assert clean.runs == -(-clean.compared // 3)


def test_graph_without_scope_names_falls_back_to_shape_and_order(tmp_path):
    mlp = planted.MLP().eval()
    x = np.random.default_rng(0).standard_normal((2, 6)).astype(np.float32)
    model = onnx.load(str(planted.export(mlp, x, tmp_path / "mlp.onnx")))
    for n in model.graph.node:
        n.name = ""
    assert not localize(model, {"x": x}, mlp, TOL, input_names=["x"]).found
    gemm2 = [n for n in model.graph.node if n.op_type == "Gemm"][1]
    gemm2.name = "fc2_renamed"
    planted.edit_initializer(model, "fc2_renamed", 2, lambda b: b + 0.25)
    gemm2.name = ""
    result = localize(model, {"x": x}, mlp, TOL, input_names=["x"])
    assert (result.op_type, result.module) == ("Gemm", "fc2")
    assert result.node.startswith("Gemm -> ")


def test_dynamo_export_scopes(net, tmp_path):
    x = planted.images(1, seed=9)[0]
    model = onnx.load(str(planted.export(net, x, tmp_path / "net_dynamo.onnx", dynamo=True, opset=18)))
    assert not localize(model, {"x": x}, net, TOL, input_names=["x"]).found
    conv = next(n for n in model.graph.node if n.op_type == "Conv" and scope_chain(n)[-1][0] == "layer2.bn")
    planted.edit_initializer(model, conv.name, 1, lambda w: w * 1.2)
    result = localize(model, {"x": x}, net, TOL, input_names=["x"])
    assert (result.node, result.op_type, result.module) == (conv.name, "Conv", "layer2.bn")


def test_int8_graph_against_the_fp32_graph_names_a_compute_node(net, net_path, tmp_path):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.feeds = iter({"x": x} for x in planted.images(8, seed=10))

        def get_next(self):
            return next(self.feeds, None)

    int8 = tmp_path / "net_int8.onnx"
    quantize_static(str(net_path), str(int8), Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8)
    assert {"QuantizeLinear", "DequantizeLinear"} <= {n.op_type for n in onnx.load(str(int8)).graph.node}
    x = planted.images(1, seed=11)[0]
    result = localize_against_onnx(int8, {"x": x}, net_path, Tolerance(1e-3, 1e-3))
    assert result.found and result.op_type not in INSERTED_OPS
    assert (result.node, result.op_type, result.module) == ("/stem/stem.0/Conv", "Conv", "stem.0")
    # the quantizer folds the Relu into the Conv before it: the Conv now writes the Relu's tensor
    assert result.counterpart == "the reference's tensor '/stem/stem.2/Relu_output_0'"
    assert str(net_path) in result.message()
    same = localize_against_onnx(net_path, {"x": x}, net_path, Tolerance(0, 0))
    assert not same.found and same.compared >= 10


def test_topological_order_does_not_trust_the_file_order(net_path):
    model = fresh(net_path)
    nodes = list(model.graph.node)
    del model.graph.node[:]
    model.graph.node.extend(reversed(nodes))
    assert [n.name for n in topological_nodes(model.graph)] != [n.name for n in model.graph.node]
    position = {o: i for i, n in enumerate(topological_nodes(model.graph)) for o in n.output}
    for i, n in enumerate(topological_nodes(model.graph)):
        assert all(position.get(x, -1) < i for x in n.input)


def test_scope_chain_reads_torchscript_names():
    node = onnx.helper.make_node("Conv", ["a"], ["b"], name="/stem/stem.0/Conv")
    assert scope_chain(node) == [("stem", 0), ("stem.0", 0)]
    shared = onnx.helper.make_node("Conv", ["a"], ["b"], name="/shared_1/Conv")
    assert scope_chain(shared, {"", "shared"}) == [("shared", 1)]
    assert scope_chain(shared) == [("shared_1", 0)]
    nested = onnx.helper.make_node("Relu", ["a"], ["b"], name="/layer1/act/Relu")
    assert scope_chain(nested) == [("layer1", 0), ("layer1.act", 0)]
    deep = onnx.helper.make_node("Conv", ["a"], ["b"], name="/backbone/stage1/stage1.0/conv/Conv")  # YOLOX's
    assert scope_chain(deep) == [("backbone", 0), ("backbone.stage1", 0), ("backbone.stage1.0", 0),
                                 ("backbone.stage1.0.conv", 0)]
    inner = onnx.helper.make_node("Conv", ["a"], ["b"], name="/neck/blocks/blocks.1/blocks.1.0/Conv")
    assert module_path(inner) == "neck.blocks.1.0"
    skipped = onnx.helper.make_node("Conv", ["a"], ["b"], name="/blocks/blocks.1/blocks.1.0/Conv")
    modules = {"", "neck", "neck.blocks", "neck.blocks.1", "neck.blocks.1.0"}
    assert module_path(skipped, modules) == "neck.blocks.1.0"  # ``self.neck.blocks(x)``: neck never called
    dynamo = onnx.helper.make_node("Conv", ["a"], ["b"], name="node_Conv_17")
    dynamo.metadata_props.add(key="pkg.torch.onnx.name_scopes", value="['', 'stem', 'stem.1', 'batch_norm']")
    assert scope_chain(dynamo) == [("stem", 0), ("stem.1", 0)]


def test_bad_calls_are_one_clear_error(net, net_path):
    with pytest.raises(ValueError, match=r"localization feed lacks inputs \['x'\] \(got \['image'\]\)"):
        localize(net_path, {"image": np.zeros((1, 3, 12, 12), np.float32)}, net, TOL, input_names=["x"])
    with pytest.raises(ValueError, match="needs input_names"):
        localize(net_path, {"x": np.zeros((1, 3, 12, 12), np.float32)}, net, TOL)
    with pytest.raises(ValueError, match=r"localization feed lacks graph inputs \['x'\] \(got \['image'\]\)"):
        localize(net_path, {"image": np.zeros((1, 3, 12, 12), np.float32)}, net_path, TOL)
    with pytest.raises(ValueError, match="chunk_size must be a positive number of tensors per run, got 0"):
        localize(net_path, {"x": np.zeros((1, 3, 12, 12), np.float32)}, net_path, TOL, chunk_size=0)
