"""Small real models for the verification tests, and the defects they plant in exported graphs.

Every defect is planted in the ONNX file only (the PyTorch model stays right), the way export bugs look:
a changed initializer, a NaN, a data-dependent branch the exporter got wrong.
"""

from __future__ import annotations

import warnings

import numpy as np
import onnx
import pytest
import torch
from onnx import helper, numpy_helper
from torch import nn


@pytest.fixture
def torch_one_thread():
    """Tiny models run faster on one thread than on two fighting over a shared machine's cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)
        self.bn = nn.BatchNorm2d(c)
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.bn(self.conv(x))) + x


class Net(nn.Module):
    """stem (Conv, BN, in-place ReLU) -> layer1 -> layer2 (residual blocks) -> pooled linear head: BatchNorms
    fold into the Convs at export, so matching must see through absorbed modules, and the in-place ReLU
    rewrites the BatchNorm's output after its hook ran (as mmpretrain's ResNet does)."""

    def __init__(self, width=8, classes=4):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.layer1 = Block(width)
        self.layer2 = Block(width)
        self.head = nn.Linear(width, classes)

    def forward(self, x):
        x = self.layer2(self.layer1(self.stem(x)))
        return self.head(torch.relu(x).mean((2, 3)))


def build_net(seed=0) -> Net:
    torch.manual_seed(seed)
    net = Net()
    for m in net.modules():  # BatchNorm statistics that matter, so a folded BN is visible in the numbers
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.5, 0.5)
    return net.eval()


class MLP(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 16)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(16, 12)
        self.fc3 = nn.Linear(12, 3)

    def forward(self, x):
        return self.fc3(torch.tanh(self.fc2(self.act(self.fc1(x)))))


def export(model, example: np.ndarray, path, input_name="x", output_name="logits", dynamo=False, opset=17):
    """As the project exports (``export/onnx.py``): legacy TorchScript exporter unless dynamo, batch dynamic."""
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        kwargs = {} if dynamo else {"dynamic_axes": {input_name: {0: "batch"}, output_name: {0: "batch"}}}
        torch.onnx.export(model, (torch.from_numpy(example),), str(path), input_names=[input_name],
                          output_names=[output_name], opset_version=opset, dynamo=dynamo, **kwargs)
    return path


def images(n, seed=0, shape=(1, 3, 12, 12)) -> list:
    rng = np.random.default_rng(seed)
    return [(0.5 * rng.standard_normal(shape)).astype(np.float32) for _ in range(n)]


def torch_outputs(model, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.from_numpy(x)).numpy()


def node(model: onnx.ModelProto, name: str) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.name == name)


def edit_initializer(model: onnx.ModelProto, node_name: str, index: int, edit) -> onnx.ModelProto:
    """Replace input ``index`` (an initializer) of node ``node_name`` by ``edit(array)``."""
    name = node(model, node_name).input[index]
    init = next(i for i in model.graph.initializer if i.name == name)
    array = numpy_helper.to_array(init).copy()
    init.CopyFrom(numpy_helper.from_array(edit(array).astype(array.dtype), name))
    return model


def plant_data_dependent(model: onnx.ModelProto, threshold: float, bump: float = 3.0,
                         input_name="x", output_name="logits") -> onnx.ModelProto:
    """``logits += bump * (max(x) > threshold)``: a divergence only on the samples that cross the threshold
    (an export that mis-handled a data-dependent branch). The planted nodes are named ``planted/...``."""
    producer = next(n for n in model.graph.node if output_name in n.output)
    inner = f"{output_name}_before_plant"
    producer.output[list(producer.output).index(output_name)] = inner
    model.graph.initializer.extend([numpy_helper.from_array(np.array(threshold, np.float32), "planted_threshold"),
                                    numpy_helper.from_array(np.array(bump, np.float32), "planted_bump")])
    model.graph.node.extend([
        helper.make_node("ReduceMax", [input_name], ["planted_max"], keepdims=0, name="planted/ReduceMax"),
        helper.make_node("Greater", ["planted_max", "planted_threshold"], ["planted_hit"], name="planted/Greater"),
        helper.make_node("Cast", ["planted_hit"], ["planted_hit_f"], to=onnx.TensorProto.FLOAT, name="planted/Cast"),
        helper.make_node("Mul", ["planted_hit_f", "planted_bump"], ["planted_delta"], name="planted/Mul"),
        helper.make_node("Add", [inner, "planted_delta"], [output_name], name="planted/Add"),
    ])
    onnx.checker.check_model(model)
    return model


def ort_session(model):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    blob = model.SerializeToString() if isinstance(model, onnx.ModelProto) else str(model)
    return ort.InferenceSession(blob, opts, providers=["CPUExecutionProvider"])


def to_fp16(model: onnx.ModelProto, keep_io_types=True) -> onnx.ModelProto:
    """The converter the project's fp16 policy uses, without its overflow guard (tests plant the overflow)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(model, keep_io_types=keep_io_types)
