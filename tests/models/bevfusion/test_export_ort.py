"""The exported graph carries AWML's custom ops (domain, names, attributes, I/O) and ONNX Runtime runs it
through the registered reference kernels (custom_ops.session_source), matching PyTorch."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from pytest_autoware_deploy.custom_ops import custom_ops, op_sets, session_source
from pytest_autoware_deploy.models.bevfusion.model import BEVFusionSparseEncoder
from pytest_autoware_deploy.models.bevfusion.ort_ops import SPARSE_CONV_OPS
from pytest_autoware_deploy.models.lidar_common.synthetic import SEEDS, random_scene, render
from pytest_autoware_deploy.models.lidar_common.voxelize import voxelize

RANGE = [-8.0, -8.0, -3.0, 8.0, 8.0, 5.0]
VOXEL = [0.25, 0.25, 0.2]
SHAPE = [64, 64, 41]


class EncoderGraph(torch.nn.Module):
    """The encoder part of ``main_body`` (voxel mean, coors [z, y, x] -> [0, x, y, z], sparse encoder)."""

    def __init__(self, enc):
        super().__init__()
        self.enc = enc

    def forward(self, voxels, coors, num_points_per_voxel):
        feats = voxels.sum(dim=1) / num_points_per_voxel.to(voxels.dtype).clamp(min=1).view(-1, 1)
        xyz = coors.flip(dims=[-1])
        return self.enc(feats, torch.cat([torch.zeros_like(xyz[:, :1]), xyz], 1), 1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    rng = np.random.default_rng([SEEDS["val"], 0])
    points, _ = render(random_scene(rng, 8.0), rng, 8.0)
    v, n, c = voxelize(points[:, :4], VOXEL, RANGE, 10, 20000)
    feed = {"voxels": v, "coors": np.ascontiguousarray(c[:, 1:]), "num_points_per_voxel": n}
    torch.manual_seed(0)
    enc = BEVFusionSparseEncoder(4, SHAPE, base_channels=8, output_channels=16,
                                 encoder_channels=((8, 8, 16), (16, 16, 32), (32, 32, 32), (32, 32)),
                                 encoder_paddings=((0, 0, 1), (0, 0, 1), (0, 0, (1, 1, 0)), (0, 0)),
                                 block_type="basicblock").eval()
    for m in enc.modules():  # non-trivial BN statistics
        if isinstance(m, torch.nn.BatchNorm1d):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
    model = EncoderGraph(enc).eval()
    path = tmp_path_factory.mktemp("bevfusion") / "encoder.onnx"
    args = tuple(torch.from_numpy(feed[k]) for k in feed)
    with torch.no_grad():
        want = model(*args).numpy()
        torch.onnx.export(model, args, str(path), input_names=list(feed), output_names=["bev"], opset_version=17,
                          dynamic_axes={k: {0: "voxels_num"} for k in feed}, dynamo=False)
    return path, feed, want


def test_graph_has_awml_sparse_conv_ops(exported):
    path, _, _ = exported
    model = onnx.load(str(path))
    assert custom_ops(model) == {"autoware": {"GetIndicePairsImplicitGemm", "ImplicitGemm"}}
    pairs = [n for n in model.graph.node if n.op_type == "GetIndicePairsImplicitGemm"]
    gemms = [n for n in model.graph.node if n.op_type == "ImplicitGemm"]
    # conv_input, three stages of two basic blocks (two convs each) and a strided conv, two blocks, conv_out
    assert len(gemms) == 1 + 3 * (2 * 2 + 1) + 2 * 2 + 1
    assert len(pairs) == len(gemms)  # AWML's blocks carry no indice_key: every conv builds its rule book
    first = {a.name: onnx.helper.get_attribute_value(a) for a in pairs[0].attribute}
    assert first == dict(batch_size=1, spatial_shape=SHAPE, algo=1, ksize=[3, 3, 3], stride=[1, 1, 1],
                         padding=[1, 1, 1], dilation=[1, 1, 1], out_padding=[0, 0, 0], subm=1, transpose=0,
                         is_train=0)
    down = [{a.name: onnx.helper.get_attribute_value(a) for a in n.attribute} for n in pairs]
    strided = [d for d in down if not d["subm"]]
    assert [d["stride"] for d in strided] == [[2, 2, 2]] * 3 + [[1, 1, 2]]
    assert [d["padding"] for d in strided] == [[1, 1, 1], [1, 1, 1], [1, 1, 0], [0, 0, 0]]
    assert all(d["is_train"] == 1 for d in strided)  # AWML passes (not subm) or training
    g = {a.name: onnx.helper.get_attribute_value(a) for a in gemms[0].attribute}
    assert g == dict(is_train=0, is_subm=1, act_alpha=0.0, act_beta=0.0, output_scale=1.0, output_add_scale=0.0)
    assert len(pairs[0].output) == 5 and list(gemms[0].input[2:]) == list(pairs[0].output[1:4])


def test_op_set_registered_through_entry_point():
    assert SPARSE_CONV_OPS in op_sets()["autoware"]


def test_onnxruntime_runs_the_custom_op_graph(exported):
    import onnxruntime as ort

    path, feed, want = exported
    opts = ort.SessionOptions()
    sess = ort.InferenceSession(session_source(path, opts), opts, providers=["CPUExecutionProvider"])
    got = sess.run(None, feed)[0]
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, atol=1e-4, rtol=1e-4)
    assert np.abs(want).max() > 0.1  # a real signal went through
    assert onnx.load(str(path)).graph.node[0].domain in ("", "autoware")  # the file itself is untouched


def test_reference_kernels_against_the_model_layers():
    """The ONNX Runtime kernels (numpy in/out) reproduce the layer arithmetic on their own."""
    from pytest_autoware_deploy.models.bevfusion.ort_ops import get_indice_pairs_implicit_gemm, implicit_gemm
    from pytest_autoware_deploy.models.bevfusion.sparse_conv import SparseConv3d, SparseTensor

    g = torch.Generator().manual_seed(1)
    flat = torch.randperm(8 * 8 * 6, generator=g)[:70]
    idx = torch.stack([torch.zeros_like(flat), flat // 48, (flat // 6) % 8, flat % 6], 1).int()
    feats = torch.randn(70, 3, generator=g)
    conv = SparseConv3d(3, 4, 3, stride=2, padding=1, bias=False)
    with torch.no_grad():
        want = conv(SparseTensor(feats, idx, [8, 8, 6]))
    outs = get_indice_pairs_implicit_gemm(idx.numpy(), spatial_shape="8,8,6", ksize="3,3,3", stride="2,2,2",
                                          padding="1,1,1", dilation="1,1,1", out_padding="0,0,0", subm="0",
                                          transpose="0")
    assert outs[4] == len(want.indices)
    np.testing.assert_array_equal(outs[0], want.indices.numpy())
    got = implicit_gemm(feats.numpy(), conv.weight.detach().numpy(), *outs[1:4])
    np.testing.assert_allclose(got, want.features.numpy(), atol=1e-5)
