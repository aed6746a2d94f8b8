"""BEVFusion-L model: AWML's parameter names and shapes at full size, the (x, y) BEV convention end to end
through the host decoding, and the TensorRT refusal of custom-op graphs."""

from __future__ import annotations

import types

import numpy as np
import pytest
import torch

from pytest_autoware_deploy.errors import BackendUnavailable
from pytest_autoware_deploy.models.bevfusion.model import BEVFusion, bev_grid_xy
from pytest_autoware_deploy.models.bevfusion.pipeline import BEVFusionLidarPipeline, decode_bevfusion


@pytest.fixture(scope="module")
def full_state():
    torch.manual_seed(0)
    return {k: tuple(v.shape) for k, v in BEVFusion().state_dict().items()}  # AWML's 120 m defaults


def test_full_size_parameter_names_and_shapes(full_state):
    s = full_state
    p = "pts_middle_encoder."
    assert s[p + "conv_input.0.weight"] == (16, 3, 3, 3, 5)  # spconv 2 layout (C_out, k, k, k, C_in)
    assert s[p + "conv_input.1.running_var"] == (16,)
    assert s[p + "encoder_layers.encoder_layer1.0.conv1.weight"] == (16, 3, 3, 3, 16)
    assert s[p + "encoder_layers.encoder_layer1.1.bn2.weight"] == (16,)
    assert s[p + "encoder_layers.encoder_layer1.2.0.weight"] == (32, 3, 3, 3, 16)  # the strided SparseConv3d
    assert s[p + "encoder_layers.encoder_layer4.1.conv2.weight"] == (128, 3, 3, 3, 128)
    assert p + "encoder_layers.encoder_layer4.2.0.weight" not in s  # the last stage has no down-sampling
    assert s[p + "conv_out.0.weight"] == (128, 1, 1, 3, 128)
    assert s["pts_backbone.blocks.0.0.weight"] == (128, 256, 3, 3)  # 128 channels x 2 z cells
    assert s["pts_neck.deblocks.1.0.weight"] == (256, 256, 2, 2)
    assert s["bbox_head.shared_conv.weight"] == (128, 512, 3, 3)
    assert s["bbox_head.heatmap_head.1.weight"] == (5, 128, 3, 3)
    assert s["bbox_head.decoder.0.self_attn.attn.in_proj_weight"] == (384, 128)
    assert s["bbox_head.prediction_heads.0.center.1.weight"] == (2, 128, 1)
    # sparse conv layers carry no bias (make_sparse_convmodule / SparseBasicBlock: bias=False)
    assert not any(k.startswith(p) and k.endswith(("conv1.bias", "conv2.bias", ".0.bias")) for k in s)


def test_bev_positions_follow_the_x_major_map():
    pos = bev_grid_xy(4, 3)[0]  # flat index = x * Y + y
    assert pos.shape == (12, 2)
    assert pos[1 * 3 + 2].tolist() == [1.5, 2.5]


def test_decode_puts_a_query_where_its_cell_is():
    outs = {"bbox_pred": np.zeros((10, 2), np.float32), "score": np.array([0.9, 0.05], np.float32),
            "label_pred": np.array([2, 0], np.int64)}
    outs["bbox_pred"][:, 0] = [10.5, 3.5, 0.0, np.log(4.0), np.log(2.0), np.log(1.5), 1.0, 0.0, 0.0, 0.0]
    det = decode_bevfusion(outs, [0.32, 0.32, 0.25], [-32, -32, -3, 32, 32, 5], 4, score_threshold=0.1)
    assert len(det["scores"]) == 1 and det["labels"].tolist() == [2]
    np.testing.assert_allclose(det["boxes_3d"][0, :7], [10.5 * 1.28 - 32, 3.5 * 1.28 - 32, -0.75, 4, 2, 1.5,
                                                        np.pi / 2], rtol=1e-5)


def test_host_feeds_coors_as_z_y_x():
    host = BEVFusionLidarPipeline(voxel_size=[1.0, 1.0, 1.0], point_cloud_range=[0, 0, 0, 8, 6, 4], use_dims=[0, 1, 2, 3],
                                  host_device="numpy")
    feed = host.preprocess(np.array([[7.5, 2.5, 1.5, 0.3, 0.0]], np.float32))
    assert list(feed) == ["voxels", "coors", "num_points_per_voxel"]
    assert feed["coors"].tolist() == [[1, 2, 7]] and feed["voxels"].shape == (1, 10, 4)


def test_tensorrt_refuses_custom_op_graph_naming_ops_and_plugins(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from pytest_autoware_deploy.export.tensorrt import build_engine

    node = helper.make_node("ImplicitGemm", ["x", "x", "p", "p", "p"], ["y"], domain="autoware")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 2]),
                                            helper.make_tensor_value_info("p", TensorProto.INT32, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)])
    path = tmp_path / "m.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("autoware", 1)]),
              str(path))
    with pytest.raises(BackendUnavailable, match=r"autoware::ImplicitGemm.*autoware_tensorrt_plugins"):
        build_engine(types.SimpleNamespace(name="bevfusion_lidar"), path, module="tensorrt_rtx")
