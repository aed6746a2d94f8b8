"""Swin-T + GeneralizedLSSFPN: mmdet names and sizes, numbers against transformers' Swin, patch-merging order,
normalisation inside the graph, AWML config types."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoware_deploy.models.mm_registry import MMConfigError, build
from pytest_autoware_deploy.models.swin.convert import hf_to_mmdet, original_to_mmdet
from pytest_autoware_deploy.models.swin.mm_types import build_image_backbone
from pytest_autoware_deploy.models.swin.model import (MEAN, STD, PatchMerging, SwinTransformer, build_model,
                                                      shift_mask)

# AWML projects/BEVFusion camera-lidar config's image branch, verbatim (training keys included)
AWML_IMG = dict(
    data_preprocessor=dict(type="Det3DDataPreprocessor", pad_size_divisor=32, mean=[123.675, 116.28, 103.53],
                           std=[58.395, 57.12, 57.375], bgr_to_rgb=False),
    img_backbone=dict(type="mmdet.SwinTransformer", embed_dims=96, depths=[2, 2, 6, 2], num_heads=[3, 6, 12, 24],
                      window_size=7, mlp_ratio=4, qkv_bias=True, qk_scale=None, drop_rate=0.0, attn_drop_rate=0.0,
                      drop_path_rate=0.2, patch_norm=True, out_indices=[1, 2, 3], with_cp=False,
                      convert_weights=True, init_cfg=dict(type="Pretrained", checkpoint="swint.pth")),
    img_neck=dict(type="GeneralizedLSSFPN", in_channels=[192, 384, 768], out_channels=256, start_level=0, num_outs=3,
                  norm_cfg=dict(type="BN2d", requires_grad=True), act_cfg=dict(type="ReLU", inplace=True),
                  upsample_cfg=dict(mode="bilinear", align_corners=False)),
)


def _hf_backbone(embed, depths, heads, window):
    transformers = pytest.importorskip("transformers", reason="transformers' Swin is the independent reference")
    cfg = transformers.SwinConfig(embed_dim=embed, depths=list(depths), num_heads=list(heads), window_size=window,
                                  out_features=[f"stage{i + 2}" for i in range(len(depths) - 1)])
    return transformers.SwinBackbone(cfg).eval()


def test_state_dict_uses_mmdet_names_and_swin_t_sizes():
    sd = build_model().state_dict()
    for key, shape in {
        "img_backbone.patch_embed.projection.weight": (96, 3, 4, 4),
        "img_backbone.patch_embed.norm.weight": (96,),
        "img_backbone.stages.0.blocks.1.attn.w_msa.relative_position_bias_table": (169, 3),
        "img_backbone.stages.0.blocks.1.attn.w_msa.relative_position_index": (49, 49),
        "img_backbone.stages.2.blocks.5.attn.w_msa.qkv.weight": (1152, 384),
        "img_backbone.stages.2.blocks.5.ffn.layers.0.0.weight": (1536, 384),
        "img_backbone.stages.2.blocks.5.ffn.layers.1.weight": (384, 1536),
        "img_backbone.stages.2.downsample.norm.weight": (1536,),
        "img_backbone.stages.2.downsample.reduction.weight": (768, 1536),
        "img_backbone.norm3.weight": (768,),
        "img_neck.lateral_convs.0.conv.weight": (256, 192 + 256, 1, 1),  # upsampled level 1 output concatenated
        "img_neck.lateral_convs.1.conv.weight": (256, 384 + 768, 1, 1),  # the top level joins the raw stage 3
        "img_neck.fpn_convs.1.bn.running_var": (256,),
    }.items():
        assert tuple(sd[key].shape) == shape, key
    assert "img_backbone.norm0.weight" not in sd and "img_backbone.stages.3.downsample.reduction.weight" not in sd
    assert not any(k in sd for k in ("mean", "std"))  # the normalisation constants are not checkpoint keys


def test_swin_t_parameter_count_equals_transformers_swin_t():
    ours = sum(p.numel() for p in build_model().img_backbone.parameters())
    hf = _hf_backbone(96, (2, 2, 6, 2), (3, 6, 12, 24), 7)
    unused = sum(p.numel() for n, p in hf.named_parameters() if n.startswith("swin.layernorm."))  # classifier norm
    assert ours == sum(p.numel() for p in hf.parameters()) - unused == 27_520_506


@pytest.mark.parametrize("hw", [(96, 96), (64, 128), (70, 90)], ids=["square", "awml-aspect", "padded"])
def test_features_match_transformers_swin_backbone(hw):
    """An independent implementation, loaded through the same reorder mmdet applies to original checkpoints:
    every stage's output agrees, also where windows and patch merging pad (70x90)."""
    torch.manual_seed(0)
    hf = _hf_backbone(8, (2, 2, 2, 2), (1, 2, 2, 4), 3)
    for p in hf.parameters():
        torch.nn.init.normal_(p, std=0.3)
    ours = SwinTransformer(embed_dims=8, window_size=3, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4),
                           out_indices=(1, 2, 3)).eval()
    index = ours.stages[0].blocks[0].attn.w_msa.relative_position_index
    ours.load_state_dict(hf_to_mmdet(hf.state_dict(), index), strict=True)
    x = torch.randn(2, 3, *hw)
    with torch.no_grad():
        expected, got = hf(x).feature_maps, ours(x)
    assert [t.shape for t in got] == [t.shape for t in expected]
    for e, g in zip(expected, got):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-4)


def test_unconverted_original_layout_gives_different_features():
    """The patch-merging reorder matters: loading the original layout's reduction weights unreordered
    changes the output (so the agreement above is not an accident of symmetric weights)."""
    torch.manual_seed(0)
    hf = _hf_backbone(8, (2, 2, 2, 2), (1, 2, 2, 4), 3)
    for p in hf.parameters():
        torch.nn.init.normal_(p, std=0.3)
    ours = SwinTransformer(embed_dims=8, window_size=3, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4),
                           out_indices=(1, 2, 3)).eval()
    sd = hf_to_mmdet(hf.state_dict(), ours.stages[0].blocks[0].attn.w_msa.relative_position_index)
    sd["stages.0.downsample.reduction.weight"] = hf.state_dict()["swin.encoder.layers.0.downsample.reduction.weight"]
    ours.load_state_dict(sd)
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert (hf(x).feature_maps[0] - ours(x)[0]).abs().max() > 1e-2


def test_original_checkpoint_names_map_to_mmdet():
    original = {"patch_embed.proj.weight": torch.zeros(1), "layers.1.blocks.0.attn.qkv.weight": torch.zeros(1),
                "layers.1.blocks.0.attn.relative_position_index": torch.zeros(1),
                "layers.0.blocks.1.attn_mask": torch.zeros(1), "layers.2.blocks.3.mlp.fc1.bias": torch.zeros(1),
                "layers.2.blocks.3.mlp.fc2.weight": torch.zeros(1), "norm.weight": torch.zeros(1),
                "head.weight": torch.zeros(1)}
    assert sorted(original_to_mmdet(original)) == [
        "patch_embed.projection.weight", "stages.1.blocks.0.attn.w_msa.qkv.weight",
        "stages.1.blocks.0.attn.w_msa.relative_position_index", "stages.2.blocks.3.ffn.layers.0.0.bias",
        "stages.2.blocks.3.ffn.layers.1.weight"]


@settings(max_examples=25, deadline=None)
@given(h=st.integers(1, 9), w=st.integers(1, 9), c=st.integers(1, 5))
def test_patch_merging_gathers_in_unfold_order(h, w, c):
    """mmcv's PatchMerging is nn.Unfold(2, stride 2) after zero padding to even sizes; the reshape here
    must give the same 4C channels in the same order, for odd sizes too."""
    merge = PatchMerging(c, 2 * c, norm=False)
    torch.nn.init.normal_(merge.reduction.weight)
    x = torch.randn(2, h * w, c)
    got, (h2, w2) = merge(x, (h, w))
    grid = torch.nn.functional.pad(x.view(2, h, w, c).permute(0, 3, 1, 2), (0, w % 2, 0, h % 2))
    unfolded = torch.nn.Unfold(kernel_size=2, stride=2)(grid).transpose(1, 2)
    assert (h2, w2) == ((h + 1) // 2, (w + 1) // 2)
    torch.testing.assert_close(got, merge.reduction(unfolded))


@settings(max_examples=20, deadline=None)
@given(nh=st.integers(1, 4), nw=st.integers(1, 4), window=st.integers(2, 5), data=st.data())
def test_shift_mask_separates_exactly_the_regions_the_cyclic_shift_joins(nh, nw, window, data):
    shift = data.draw(st.integers(1, window - 1))
    hp, wp = nh * window, nw * window
    mask = shift_mask(hp, wp, window, shift).numpy()
    # region of each pixel of the shifted map: which of the 3x3 bands (by original position) it came from
    def band(i, n):
        return 0 if i < n - window else (1 if i < n - shift else 2)
    regions = np.array([[band(i, hp) * 3 + band(j, wp) for j in range(wp)] for i in range(hp)])
    wins = regions.reshape(nh, window, nw, window).transpose(0, 2, 1, 3).reshape(-1, window * window)
    expected = np.where(wins[:, :, None] != wins[:, None, :], -100.0, 0.0)
    assert mask.shape == (nh * nw, window * window, window * window)
    np.testing.assert_array_equal(mask, expected)


def test_normalisation_is_inside_the_graph_on_uint8_frames():
    model = build_model(embed_dims=8, depths=(2, 2), num_heads=(1, 2), window_size=2, out_indices=(0, 1),
                        out_channels=8)
    imgs = torch.randint(0, 256, (3, 3, 32, 64), dtype=torch.uint8)
    x = (imgs.float() - torch.tensor(MEAN).view(1, 3, 1, 1)) / torch.tensor(STD).view(1, 3, 1, 1)
    with torch.no_grad():
        expected = model.img_neck(model.img_backbone(x))[0]
        got = model(imgs)
    assert got.shape == (3, 8, 8, 16)  # stride 8
    torch.testing.assert_close(got, expected)


def test_build_model_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = build_model(embed_dims=8, depths=(2, 2), num_heads=(1, 2), window_size=2, out_indices=(0, 1), out_channels=8)
    assert torch.rand(1) == before
    b = build_model(embed_dims=8, depths=(2, 2), num_heads=(1, 2), window_size=2, out_indices=(0, 1), out_channels=8)
    c = build_model(embed_dims=8, depths=(2, 2), num_heads=(1, 2), window_size=2, out_indices=(0, 1), out_channels=8,
                    seed=1)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["img_backbone.stages.0.blocks.0.attn.w_msa.qkv.weight"],
                           sc["img_backbone.stages.0.blocks.0.attn.w_msa.qkv.weight"])


def test_awml_bevfusion_image_branch_config_builds_the_same_module():
    model = build_image_backbone(AWML_IMG)
    reference = build_model()
    assert {k: v.shape for k, v in model.state_dict().items()} == \
        {k: v.shape for k, v in reference.state_dict().items()}
    assert model.img_neck.align_corners is False  # AWML's config; the class default is True
    assert build(AWML_IMG["img_backbone"], "model.img_backbone").out_indices == (1, 2, 3)


@pytest.mark.parametrize("key, value, message", [
    ("embed_dim", 96, "model.img_backbone.embed_dim: unknown key for SwinTransformer (did you mean 'embed_dims'?)"),
    ("use_abs_pos_embed", True, "use_abs_pos_embed=True: only False is implemented here"),
    ("strides", (4, 2, 2, 1), "strides=(4, 2, 2, 1)"),
])
def test_awml_config_values_that_cannot_be_honoured_are_one_error_naming_the_key(key, value, message):
    cfg = dict(AWML_IMG["img_backbone"], **{key: value})
    with pytest.raises(MMConfigError) as err:
        build(cfg, "model.img_backbone")
    assert message in str(err.value)


def test_neck_upsampling_other_than_bilinear_is_refused():
    cfg = dict(AWML_IMG["img_neck"], upsample_cfg=dict(mode="nearest"))
    with pytest.raises(MMConfigError, match="upsample_cfg.mode='nearest': only 'bilinear'"):
        build(cfg, "model.img_neck")
