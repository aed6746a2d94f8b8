"""CenterPoint-ConvNeXtPC: AWML's ConvNeXt_PC backbone (names, no stem, channel quirk, large kernels), built from
AWML's model config, exported as CenterPoint's second stage with LayerNormalization, and the shipped demo detects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_autoware_deploy.models.centerpoint.convnext_pc import ConvNeXtBlock, ConvNeXtPC
from pytest_autoware_deploy.models.centerpoint.model import build_model
from pytest_autoware_deploy.models.centerpoint.pipeline import CenterPointPipeline
from pytest_autoware_deploy.models.centerpoint.train import STAGE_OUTPUTS
from pytest_autoware_deploy.models.centerpoint.train_convnextpc import CHECKPOINT, DEMO_HOST, DEMO_MODEL
from pytest_autoware_deploy.models.lidar_common.synthetic import CLASSES, write_split
from pytest_autoware_deploy.models.lidar_common.torch_stage import evaluate_pipeline
from pytest_autoware_deploy.models.mm_registry import MMConfigError, build

from ..lidar_common.stage_export import export_and_run

# AWML projects/CenterPoint/configs/t4dataset/CenterPoint-ConvNeXtPC/pillar_020_convnext_standard_secfpn_4xb8_121m_base.py
AWML_BACKBONE = dict(type="ConvNeXt_PC", in_channels=32, out_channels=[32, 192, 192, 192, 192], depths=[3, 3, 2, 1, 1],
                     out_indices=[2, 3, 4], drop_path_rate=0.4, layer_scale_init_value=1.0,
                     gap_before_final_norm=False, with_cp=True)


def _awml_model(backbone=AWML_BACKBONE):
    pcr, vs = [-121.6, -121.6, -3.0, 121.6, 121.6, 5.0], [0.2, 0.2, 8.0]
    return dict(
        type="CenterPoint",
        pts_voxel_encoder=dict(type="PillarFeatureNet", in_channels=4, feat_channels=[32, 32], with_distance=False,
                               with_cluster_center=True, with_voxel_center=True, point_cloud_range=pcr,
                               voxel_size=vs, norm_cfg=dict(type="BN1d", eps=1e-3, momentum=0.01), legacy=False),
        pts_middle_encoder=dict(type="PointPillarsScatter", in_channels=32, output_shape=(1216, 1216)),
        pts_backbone=dict(backbone),
        pts_neck=dict(type="SECONDFPN", in_channels=[192, 192, 192], out_channels=[128, 128, 128],
                      upsample_strides=[1, 2, 4], norm_cfg=dict(type="BN", eps=1e-3, momentum=0.01),
                      upsample_cfg=dict(type="deconv", bias=False), use_conv_for_no_stride=True),
        pts_bbox_head=dict(type="CenterHead", in_channels=384,
                           tasks=[dict(num_class=5, class_names=["car", "truck", "bus", "bicycle", "pedestrian"])],
                           bbox_coder=dict(out_size_factor=4), loss_cls=dict(type="mmdet.GaussianFocalLoss")))


def test_awml_config_builds_with_mmpretrain_names_and_awml_channel_rule():
    model = build(_awml_model())
    keys = set(model.state_dict())
    for k in ("pts_backbone.downsample_layers.1.0.weight", "pts_backbone.downsample_layers.4.1.weight",
              "pts_backbone.stages.0.2.depthwise_conv.weight", "pts_backbone.stages.1.0.norm.weight",
              "pts_backbone.stages.2.1.pointwise_conv1.weight", "pts_backbone.stages.4.0.pointwise_conv2.bias",
              "pts_backbone.stages.0.0.gamma", "pts_backbone.norm2.weight", "pts_backbone.norm4.bias"):
        assert k in keys, k
    assert not any(k.startswith(("pts_backbone.downsample_layers.0.", "pts_backbone.norm0", "pts_backbone.norm1"))
                   for k in keys)  # no stem, and only the out_indices stages are normalised
    bb = model.pts_backbone
    assert bb.stages[0][0].depthwise_conv.weight.shape == (32, 1, 7, 7)
    assert bb.stages[1][0].pointwise_conv1.weight.shape == (4 * 192, 192)
    assert float(bb.stages[0][0].gamma.detach()[0]) == 1.0  # layer_scale_init_value
    assert bb.downsample_layers[1][0].eps == 1e-5 and bb.stages[0][0].norm.eps == 1e-6


def test_stage_zero_takes_in_channels_whatever_out_channels_say():
    # AWML overwrites out_channels[0] with in_channels: no stem, the canvas width runs through stage 0
    bb = ConvNeXtPC(16, [64, 32, 48], [1, 1, 1], out_indices=[1, 2])
    assert bb.stages[0][0].depthwise_conv.weight.shape[0] == 16
    assert bb.downsample_layers[1][1].weight.shape == (32, 16, 2, 2)
    import torch

    outs = bb(torch.zeros(1, 16, 64, 64))
    assert [tuple(o.shape) for o in outs] == [(1, 32, 32, 32), (1, 48, 16, 16)]  # strides 2 and 4, no stem


def test_large_arch_uses_awmls_kernel_choice():
    bb = ConvNeXtPC(8, [8, 8, 8, 8], [1, 1, 1, 1], out_indices=[3],
                    large_arch=dict(stages=[2, 3], large_kernel_sizes=[11, 13]))
    ks = [s[0].depthwise_conv.kernel_size for s in bb.stages]
    assert ks == [(7, 7), (7, 7), (13, 13), (13, 13)]  # AWML: the kernel at stages.index(3) for every large stage


def test_block_is_convnext_maths():
    """Depthwise conv -> LayerNorm over channels -> Linear -> exact GELU -> Linear -> layer scale -> residual,
    written out independently."""
    import torch

    torch.manual_seed(0)
    blk = ConvNeXtBlock(6, layer_scale_init_value=0.5).eval()
    x = torch.randn(2, 6, 9, 11)
    y = torch.nn.functional.conv2d(x, blk.depthwise_conv.weight, blk.depthwise_conv.bias, padding=3, groups=6)
    mu = y.mean(1, keepdim=True)
    var = ((y - mu) ** 2).mean(1, keepdim=True)
    y = (y - mu) / torch.sqrt(var + 1e-6) * blk.norm.weight.view(1, -1, 1, 1) + blk.norm.bias.view(1, -1, 1, 1)
    y = torch.einsum("bchw,oc->bohw", y, blk.pointwise_conv1.weight) + blk.pointwise_conv1.bias.view(1, -1, 1, 1)
    y = 0.5 * y * (1 + torch.erf(y / 2 ** 0.5))
    y = torch.einsum("bchw,oc->bohw", y, blk.pointwise_conv2.weight) + blk.pointwise_conv2.bias.view(1, -1, 1, 1)
    want = x + 0.5 * y
    with torch.no_grad():
        assert torch.allclose(blk(x), want, atol=1e-5)


@pytest.mark.parametrize("change, match", [
    (dict(gap_before_final_norm=True), "gap_before_final_norm=True"),
    (dict(norm_cfg=dict(type="BN")), "only LN2d"),
    (dict(out_indices=[2, 3, 7]), "out_indices"),
    (dict(depths=[3, 3, 2, 1]), "differ in length"),
    (dict(first_downsample=0), "first_downsample=0"),
])
def test_unsupported_backbone_settings_are_one_error_naming_the_key(change, match):
    with pytest.raises(MMConfigError, match=match) as err:
        build(_awml_model({**AWML_BACKBONE, **change}))
    assert "model.pts_backbone" in str(err.value)


def test_neck_channels_must_chain_from_the_convnext_outputs():
    cfg = _awml_model({**AWML_BACKBONE, "out_channels": [32, 192, 192, 192, 160]})
    with pytest.raises(MMConfigError, match="pts_neck.in_channels differ from pts_backbone.out_channels"):
        build(cfg)


def test_second_stage_exports_layernorm_and_matches_onnxruntime():
    import io

    import onnx
    import torch

    model = build_model(**DEMO_MODEL)
    head = model.pts_backbone_neck_head.eval()
    rng = np.random.default_rng(0)
    feed = {"spatial_features": rng.standard_normal((1, 16, 160, 160)).astype(np.float32)}
    errs = export_and_run(head, feed, STAGE_OUTPUTS["pts_backbone_neck_head"], None)
    assert max(errs[0].values()) < 1e-4, errs
    buf = io.BytesIO()
    torch.onnx.export(head, (torch.from_numpy(feed["spatial_features"]),), buf, opset_version=17, dynamo=False)
    ops = [n.op_type for n in onnx.load_from_string(buf.getvalue()).graph.node]
    # 6 blocks + 4 downsamplings + 3 output norms, each one LayerNormalization node
    assert ops.count("LayerNormalization") == 13


def test_canvas_not_divisible_by_sixteen_fails_in_the_neck_not_silently():
    import torch

    model = build_model(**DEMO_MODEL)
    with pytest.raises(RuntimeError, match="Sizes of tensors must match"):
        model.pts_backbone_neck_head(torch.zeros(1, 16, 200, 200))


@pytest.mark.skipif(not CHECKPOINT.is_file(), reason=f"shipped checkpoint {CHECKPOINT.name} not trained yet "
                    "(python -m pytest_autoware_deploy.models.centerpoint.train_convnextpc)")
def test_shipped_checkpoint_detects_cars_in_fresh_scenes(tmp_path):
    from pytest_autoware_deploy.export.pytorch_model import load_checkpoint

    info = write_split(tmp_path, "val", 6, 99)  # scenes the checkpoint never saw
    model = build_model(**DEMO_MODEL)
    load_checkpoint(model, CHECKPOINT)
    res = evaluate_pipeline(model, CenterPointPipeline(**DEMO_HOST), STAGE_OUTPUTS, info, CLASSES)
    assert res["AP_car"] >= 0.5
