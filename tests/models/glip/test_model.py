"""models/glip/model.py: mmdet's parameter names, the text mask wired through the fusion, mmdet's box coder,
the exported graph in standard ops and equal to PyTorch under ONNX Runtime."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoware_deploy.models.glip.model import GLIP_T, build_model, delta2bbox, level_anchors
from pytest_autoware_deploy.models.glip.train import DEMO, STDS

OUTPUTS = ["cls_logits", "bbox_pred", "centerness", "boxes", "phrase_scores"]
INPUTS = ["img", "text_feats", "text_masks", "positive_map"]


@pytest.fixture(scope="module")
def model():
    return build_model(**DEMO)


def _inputs(seed=0, valid=9, b=1):
    g = torch.Generator().manual_seed(seed)
    masks = (torch.arange(16) < valid).float().expand(b, 16).contiguous()
    pmap = torch.zeros(b, 6, 16)
    pmap[:, 0, 1:3] = 0.5
    pmap[:, 3, 4:6] = 0.5
    return (torch.randn(b, 3, 64, 64, generator=g), torch.randn(b, 16, 32, generator=g), masks, pmap)


def test_state_dict_uses_mmdets_glip_names(model):
    keys = set(model.state_dict())
    for k in ["backbone.patch_embed.projection.weight", "backbone.stages.0.blocks.0.attn.w_msa.qkv.weight",
              "neck.lateral_convs.0.conv.weight", "neck.fpn_convs.4.conv.weight",
              "language_model.language_backbone.body.model.embeddings.word_embeddings.weight",
              "bbox_head.head.dyhead_tower.0.b_attn.attn.v_proj.weight", "bbox_head.head.dyhead_tower.0.b_attn.gamma_v",
              "bbox_head.head.dyhead_tower.1.attention.self.query.weight",
              "bbox_head.head.dyhead_tower.1.attention.output.LayerNorm.weight",
              "bbox_head.head.dyhead_tower.1.intermediate.dense.weight",
              "bbox_head.head.dyhead_tower.2.dyconvs.2.conv.weight", "bbox_head.head.dyhead_tower.2.dyconvs.0.bn.weight",
              "bbox_head.head.dyhead_tower.2.offset.weight", "bbox_head.head.dyhead_tower.2.attnconv.1.weight",
              "bbox_head.head.dyhead_tower.2.relu.fc.2.weight", "bbox_head.head.dyhead_tower.5.offset.weight",
              "bbox_head.head.bbox_pred.weight", "bbox_head.head.centerness.weight",
              "bbox_head.head.dot_product_projection_text.weight", "bbox_head.head.log_scale",
              "bbox_head.head.bias_lang", "bbox_head.head.bias0", "bbox_head.head.scales.4.scale"]:
        assert k in keys, k
    assert not any(k.startswith("_graph") or ".graph." in k for k in keys)
    assert model.strides == (8, 16, 32, 64, 128)


def test_padding_tokens_do_not_reach_boxes_or_phrase_scores(model):
    """The mask reaches VLFuse and the BERT layers: changing padded token features changes nothing but
    those tokens' own logits."""
    img, feats, masks, pmap = _inputs()
    other = feats.clone()
    other[:, 9:] = torch.randn(1, 7, 32) * 5
    with torch.no_grad():
        a, b = model(img, feats, masks, pmap), model(img, other, masks, pmap)
    torch.testing.assert_close(a[0][..., :9], b[0][..., :9], rtol=1e-4, atol=1e-4)
    for i in (1, 2, 3, 4):
        torch.testing.assert_close(a[i], b[i], rtol=1e-4, atol=1e-4)
    assert not torch.allclose(a[0][..., 9:], b[0][..., 9:])


def test_phrase_scores_are_mmdets_sqrt_of_mean_token_probability_times_centerness(model):
    img, feats, masks, pmap = _inputs()
    with torch.no_grad():
        logits, _, ctr, _, scores = model(img, feats, masks, pmap)
    expect = torch.sqrt(logits[..., 1:3].sigmoid().mean(-1) * ctr.sigmoid())
    torch.testing.assert_close(scores[..., 0], expect, rtol=1e-5, atol=1e-6)
    assert torch.all(scores[..., [1, 2, 4, 5]] == 0)  # phrases absent from the caption score nothing
    assert logits.shape == (1, 8 * 8 + 4 * 4 + 2 * 2 + 1 + 1, 16)


@settings(max_examples=40, deadline=None)
@given(st.floats(4, 60), st.floats(4, 60), st.floats(4, 40), st.floats(4, 40), st.floats(0.5, 2), st.floats(0.5, 2))
def test_box_coder_decodes_what_the_trainers_encoding_encodes(ax, ay, gx, gy, sw, sh):
    """delta2bbox (mmdet's DeltaXYWHBBoxCoder.decode) inverts the encoding the demo was trained with."""
    anchor = np.array([[ax - 8, ay - 8, ax + 8, ay + 8]], np.float32)
    gw, gh = 16 * sw, 16 * sh
    gt = np.array([gx - gw / 2, gy - gh / 2, gx + gw / 2, gy + gh / 2], np.float32)
    d = np.array([[(gx - ax) / 16, (gy - ay) / 16, np.log(sw), np.log(sh)]], np.float32) / STDS
    out = delta2bbox(torch.from_numpy(anchor), torch.from_numpy(d)).numpy()[0]
    np.testing.assert_allclose(out, gt, rtol=1e-4, atol=1e-3)


def test_anchors_are_mmdets_centred_squares():
    a = level_anchors([(2, 3), (1, 1)], (8, 16), 2).numpy()
    assert a.shape == (7, 4)
    np.testing.assert_allclose(a[1], [12 - 8, 4 - 8, 12 + 8, 4 + 8])  # row 0, column 1 of the stride-8 level
    np.testing.assert_allclose(a[6], [8 - 16, 8 - 16, 8 + 16, 8 + 16])


def test_onnx_graph_is_standard_ops_and_equals_pytorch(model, tmp_path):
    import onnx
    import onnxruntime as ort

    path = tmp_path / "glip.onnx"
    args = _inputs(b=2)
    with torch.no_grad():
        torch.onnx.export(model, args, str(path), input_names=INPUTS, output_names=OUTPUTS, opset_version=17,
                          dynamic_axes={n: {0: "batch"} for n in INPUTS + OUTPUTS}, dynamo=False)
        ref = model(*_inputs(seed=3, valid=7, b=3))
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "GridSample" in ops and "DeformConv" not in ops
    assert all(n.domain in ("", "ai.onnx") for n in onnx.load(str(path)).graph.node)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = sess.run(None, {n: t.numpy() for n, t in zip(INPUTS, _inputs(seed=3, valid=7, b=3))})
    for name, r, g in zip(OUTPUTS, ref, got):
        np.testing.assert_allclose(g, r.numpy(), rtol=1e-3, atol=1e-4, err_msg=name)


def test_glip_t_has_the_real_dimensions_without_building_it():
    assert GLIP_T["embed_dims"] == 96 and GLIP_T["depths"] == (2, 2, 6, 2) and GLIP_T["out_channels"] == 256
    assert GLIP_T["bert_config"]["hidden_size"] == 768 and GLIP_T["num_dyhead_blocks"] == 6
