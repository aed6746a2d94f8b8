"""GLIP (mmdet ``GLIP`` + ``ATSSVLFusionHead``) with mmdet's parameter names, and the graph a deployment runs.

mmdet's modules, re-written for inference without mmcv (names as in an mmdet GLIP checkpoint):

- ``backbone``: Swin-T (``models/swin``'s mmdet ``SwinTransformer``), ``neck``: mmdet ``FPN``
  (``lateral_convs.i.conv``, ``fpn_convs.i.conv``; ``add_extra_convs='on_output'``, ReLU before the extras:
  GLIP-T's neck), five levels;
- ``language_model.language_backbone.body.model``: HuggingFace ``BertModel`` (run on the host, not exported);
- ``bbox_head.head``: ``VLFusionModule``: ``dyhead_tower`` = per block [``VLFuse`` (bidirectional image-text
  attention, ``b_attn.attn.{v,l,values_v,values_l,out_v,out_l}_proj``), ``BertEncoderLayer`` (the language
  branch), ``DyConv`` (three ``Conv3x3Norm`` with modulated deformable convs + GroupNorm, ``attnconv``,
  ``DyReLU``, ``offset``)], then ``bbox_pred``, ``centerness``, ``dot_product_projection_text``,
  ``log_scale``, ``bias_lang``, ``bias0``, ``scales.i.scale``.

``GlipGraph`` (``model.graph``) is the exported graph: ``img`` (normalized), the host's BERT ``text_feats``
(B, T, L) and ``text_masks`` (B, T), and ``positive_map`` (B, P, T) (row p: phrase p's tokens, each 1/len;
rows of absent phrases zero) -> the head's raw ``cls_logits`` (B, N, T), ``bbox_pred`` (B, N, 4) deltas,
``centerness`` (B, N) over all anchors of the five levels (mmdet's per-level order, concatenated), and
mmdet's ``predict_by_feat`` before NMS: ``boxes`` (B, N, 4) (``DeltaXYWHBBoxCoder``, clipped) and
``phrase_scores`` (B, N, P) = sqrt(mean token sigmoid x sigmoid(centerness)) (``convert_grounding_to_cls_scores``).
"""

from __future__ import annotations

import math
import warnings

import torch
import torch.nn.functional as F
from torch import nn

from ..swin.model import SwinTransformer, static_size
from ..swin.model import init_weights as swin_init
from .deform_conv import ModulatedDeformConv2d

MAX_CLAMP_VALUE = 50000  # mmdet vlfuse_helper: fp16's range
MEAN = (123.675, 116.28, 103.53)  # GLIP's data_preprocessor (RGB)
STD = (58.395, 57.12, 57.375)
NUM_LEVELS = 5  # VLFuse and the head's scales are written for five FPN levels


class FPN(nn.Module):
    """mmdet ``FPN`` (no norm): lateral 1x1, top-down nearest upsampling + add, 3x3 outputs, extra stride-2
    convs on the last output (``add_extra_convs='on_output'``, ReLU before them)."""

    def __init__(self, in_channels, out_channels, num_outs=NUM_LEVELS, relu_before_extra_convs=True):
        super().__init__()
        self.relu_before_extra_convs = relu_before_extra_convs
        self.lateral_convs = nn.ModuleList(_conv_module(c, out_channels, 1) for c in in_channels)
        self.fpn_convs = nn.ModuleList(_conv_module(out_channels, out_channels, 3, padding=1)
                                       for _ in in_channels)
        for _ in range(num_outs - len(in_channels)):
            self.fpn_convs.append(_conv_module(out_channels, out_channels, 3, stride=2, padding=1))

    def forward(self, inputs):
        laterals = [conv(x) for conv, x in zip(self.lateral_convs, inputs)]
        for i in range(len(laterals) - 1, 0, -1):
            laterals[i - 1] = laterals[i - 1] + F.interpolate(laterals[i], size=static_size(laterals[i - 1]),
                                                              mode="nearest")
        outs = [self.fpn_convs[i](laterals[i]) for i in range(len(laterals))]
        for i in range(len(laterals), len(self.fpn_convs)):
            x = outs[-1]
            outs.append(self.fpn_convs[i](F.relu(x) if self.relu_before_extra_convs else x))
        return tuple(outs)


def _conv_module(cin, cout, k, stride=1, padding=0):
    """mmcv ``ConvModule`` without norm/activation: the parameters live under ``.conv``."""
    m = nn.Module()
    m.conv = nn.Conv2d(cin, cout, k, stride=stride, padding=padding)
    m.forward = m.conv.forward
    return m


class Conv3x3Norm(nn.Module):
    def __init__(self, in_channels, out_channels, stride, use_dcn=True, gn_groups=16):
        super().__init__()
        self.conv = (ModulatedDeformConv2d(in_channels, out_channels, 3, stride, 1) if use_dcn
                     else nn.Conv2d(in_channels, out_channels, 3, stride, 1))
        self.bn = nn.GroupNorm(gn_groups, out_channels)

    def forward(self, x, **kwargs):
        x = self.conv(x, **kwargs)
        with warnings.catch_warnings():  # F.group_norm's training-only batch check reads the traced batch size
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            return self.bn(x)


class DyReLU(nn.Module):
    def __init__(self, in_channels, out_channels, expand_ratio=4):
        super().__init__()
        self.out_channels = out_channels
        self.fc = nn.Sequential(nn.Linear(in_channels, in_channels // expand_ratio), nn.ReLU(),
                                nn.Linear(in_channels // expand_ratio, out_channels * expand_ratio), nn.Hardsigmoid())

    def forward(self, x):
        b, c = x.shape[:2]
        coef = self.fc(x.mean((2, 3))).view(b, -1, 1, 1)
        a1, b1, a2, b2 = torch.split(coef, self.out_channels, dim=1)
        return torch.max(x * ((a1 - 0.5) * 2 + 1.0) + (b1 - 0.5), x * ((a2 - 0.5) * 2) + (b2 - 0.5))


class DyConv(nn.Module):
    """DyHead block: scale-aware (three convs over neighbouring levels, ``attnconv``), spatial-aware (deformable
    offsets and masks from ``offset``), task-aware (``DyReLU``)."""

    def __init__(self, in_channels, out_channels, use_dyfuse=True, use_dyrelu=True, use_dcn=True, gn_groups=16):
        super().__init__()
        self.dyconvs = nn.ModuleList(Conv3x3Norm(in_channels, out_channels, s, use_dcn, gn_groups) for s in (1, 1, 2))
        self.attnconv = (nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(in_channels, 1, 1), nn.ReLU())
                         if use_dyfuse else None)
        self.relu = DyReLU(in_channels, out_channels) if use_dyrelu else nn.ReLU()
        self.offset = nn.Conv2d(in_channels, 27, 3, 1, 1) if use_dcn else None
        for m in self.dyconvs.modules():
            if isinstance(m, (nn.Conv2d, ModulatedDeformConv2d)):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def forward(self, inputs):
        feats = inputs["visual"]
        out = []
        for level, feature in enumerate(feats):
            kw = {}
            if self.offset is not None:
                om = self.offset(feature)
                kw = dict(offset=om[:, :18], mask=om[:, 18:].sigmoid())
            temp = [self.dyconvs[1](feature, **kw)]
            if level > 0:
                temp.append(self.dyconvs[2](feats[level - 1], **kw))
            if level < len(feats) - 1:
                temp.append(F.interpolate(self.dyconvs[0](feats[level + 1], **kw), size=static_size(feature),
                                          mode="bilinear", align_corners=True))  # F.upsample_bilinear
            if self.attnconv is not None:
                attn = F.hardsigmoid(torch.stack([self.attnconv(t) for t in temp]))
                out.append(torch.mean(torch.stack(temp) * attn, dim=0))
            else:
                out.append(torch.mean(torch.stack(temp), dim=0))
        return {"visual": [self.relu(x) for x in out], "lang": inputs["lang"]}


def mask_bias(mask, fill):
    """0 where ``mask`` is set, ``fill`` (a huge negative) elsewhere, as a select: HF's ``(1 - mask) * min``
    is NaN in fp16, where ``min`` rounds to -inf and 0 * -inf is NaN. ``mask``: float (1 valid, 0 padding)."""
    return torch.where(mask > 0, torch.zeros_like(mask), torch.full_like(mask, fill))


def permute_and_flatten(x, n, a, c, h, w):
    return x.view(n, a, c, h, w).permute(0, 3, 4, 1, 2).reshape(n, -1, c)


class BiMultiHeadAttention(nn.Module):
    """mmdet's bidirectional image-text attention: one score matrix, softmax over tokens for the image side
    and over pixels for the text side; scores clamped to +-50000 (fp16's range)."""

    def __init__(self, v_dim, l_dim, embed_dim, num_heads):
        super().__init__()
        self.num_heads, self.head_dim, self.embed_dim = num_heads, embed_dim // num_heads, embed_dim
        if self.head_dim * num_heads != embed_dim:
            raise ValueError(f"BiMultiHeadAttention: embed_dim {embed_dim} not divisible by num_heads {num_heads}")
        self.scale = self.head_dim ** -0.5
        self.v_proj, self.l_proj = nn.Linear(v_dim, embed_dim), nn.Linear(l_dim, embed_dim)
        self.values_v_proj, self.values_l_proj = nn.Linear(v_dim, embed_dim), nn.Linear(l_dim, embed_dim)
        self.out_v_proj, self.out_l_proj = nn.Linear(embed_dim, v_dim), nn.Linear(embed_dim, l_dim)
        for m in (self.v_proj, self.l_proj, self.values_v_proj, self.values_l_proj, self.out_v_proj, self.out_l_proj):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    def _heads(self, x, bsz):
        return x.view(bsz, -1, self.num_heads, self.head_dim).transpose(1, 2).reshape(bsz * self.num_heads, -1,
                                                                                        self.head_dim)

    def forward(self, vision, lang, attention_mask_l=None):
        bsz, tgt_len = vision.shape[:2]
        q = self._heads(self.v_proj(vision) * self.scale, bsz)
        k = self._heads(self.l_proj(lang), bsz)
        vv, vl = self._heads(self.values_v_proj(vision), bsz), self._heads(self.values_l_proj(lang), bsz)
        w = torch.bmm(q, k.transpose(1, 2)).clamp(-MAX_CLAMP_VALUE, MAX_CLAMP_VALUE)
        wt = w.transpose(1, 2)
        wl = (wt - wt.max(-1, keepdim=True)[0]).clamp(-MAX_CLAMP_VALUE, MAX_CLAMP_VALUE).softmax(-1)
        if attention_mask_l is not None:
            bias = mask_bias(attention_mask_l, -9e15)  # mmdet: masked_fill(mask == 0, -9e15)
            src_len = k.shape[1]
            w = (w.view(bsz, self.num_heads, tgt_len, src_len) + bias[:, None, None, :]).view(
                bsz * self.num_heads, tgt_len, src_len)
        ov = torch.bmm(w.softmax(-1), vl)
        ol = torch.bmm(wl, vv)
        ov = ov.view(bsz, self.num_heads, tgt_len, self.head_dim).transpose(1, 2).reshape(bsz, tgt_len, -1)
        ol = ol.view(bsz, self.num_heads, -1, self.head_dim).transpose(1, 2).reshape(bsz, -1, self.embed_dim)
        return self.out_v_proj(ov), self.out_l_proj(ol)


class BiAttentionBlock(nn.Module):
    def __init__(self, v_dim, l_dim, embed_dim, num_heads, init_values=1.0 / 6.0):
        super().__init__()
        self.layer_norm_v, self.layer_norm_l = nn.LayerNorm(v_dim), nn.LayerNorm(l_dim)
        self.attn = BiMultiHeadAttention(v_dim, l_dim, embed_dim, num_heads)
        self.gamma_v = nn.Parameter(init_values * torch.ones(v_dim))
        self.gamma_l = nn.Parameter(init_values * torch.ones(l_dim))

    def forward(self, visual_features, lang, mask):
        sizes = [static_size(f) for f in visual_features]
        bs, c = visual_features[0].shape[:2]
        flat = torch.cat([permute_and_flatten(f, bs, -1, c, h, w) for f, (h, w) in zip(visual_features, sizes)], 1)
        v, lang_n = self.layer_norm_v(flat), self.layer_norm_l(lang)
        dv, dl = self.attn(v, lang_n, mask)
        v = (v + self.gamma_v * dv).transpose(1, 2)
        lang_out = lang_n + self.gamma_l * dl
        out, start = [], 0
        for h, w in sizes:
            out.append(v[:, :, start:start + h * w].reshape(bs, -1, h, w))
            start += h * w
        return out, lang_out


class VLFuse(nn.Module):
    """Early fusion (mmdet ``VLFuse``): image <-> text attention over all levels at once."""

    def __init__(self, v_dim=256, l_dim=768, embed_dim=2048, num_heads=8):
        super().__init__()
        self.b_attn = BiAttentionBlock(v_dim, l_dim, embed_dim, num_heads)

    def forward(self, x):
        visual, hidden = self.b_attn(x["visual"], x["lang"]["hidden"], x["lang"]["masks"])
        return {"visual": visual, "lang": dict(x["lang"], hidden=hidden)}


class _SelfAttention(nn.Module):
    def __init__(self, hidden, heads):
        super().__init__()
        self.heads, self.head_dim = heads, hidden // heads
        self.query, self.key, self.value = nn.Linear(hidden, hidden), nn.Linear(hidden, hidden), nn.Linear(hidden, hidden)

    def forward(self, x, mask_bias):
        b = x.shape[0]

        def split(t):
            return t.view(b, -1, self.heads, self.head_dim).transpose(1, 2)

        q, k, v = split(self.query(x)), split(self.key(x)), split(self.value(x))
        scores = (q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)).clamp(-MAX_CLAMP_VALUE, MAX_CLAMP_VALUE)
        ctx = (scores + mask_bias).softmax(-1) @ v
        return ctx.transpose(1, 2).reshape(b, -1, self.heads * self.head_dim)


class _DenseNorm(nn.Module):
    def __init__(self, cin, cout, eps):
        super().__init__()
        self.dense, self.LayerNorm = nn.Linear(cin, cout), nn.LayerNorm(cout, eps=eps)

    def forward(self, x, residual):
        return self.LayerNorm(self.dense(x) + residual)


class BertEncoderLayer(nn.Module):
    """mmdet ``BertEncoderLayer``: a BERT layer (HF's ``BertLayer`` names: ``attention.self.query``,
    ``attention.output.dense``/``LayerNorm``, ``intermediate.dense``, ``output.dense``/``LayerNorm``) on the
    fused text features, scores clamped as mmdet's ``BertSelfAttention`` does. Written out (not HF's class):
    HF's layer API changes between transformers releases, and this one is inside the exported graph."""

    def __init__(self, hidden_size, num_attention_heads, intermediate_size, layer_norm_eps=1e-12):
        super().__init__()
        self.attention = nn.Module()
        self.attention.self = _SelfAttention(hidden_size, num_attention_heads)
        self.attention.output = _DenseNorm(hidden_size, hidden_size, layer_norm_eps)
        self.intermediate = nn.Module()
        self.intermediate.dense = nn.Linear(hidden_size, intermediate_size)
        self.output = _DenseNorm(intermediate_size, hidden_size, layer_norm_eps)

    def forward(self, inputs):
        hidden, masks = inputs["lang"]["hidden"], inputs["lang"]["masks"]
        bias = mask_bias(masks, torch.finfo(torch.float32).min)[:, None, None, :]  # HF's extended mask
        att = self.attention.output(self.attention.self(hidden, bias), hidden)
        out = self.output(F.gelu(self.intermediate.dense(att)), att)
        return {"visual": inputs["visual"], "lang": dict(inputs["lang"], hidden=out)}


class Scale(nn.Module):
    def __init__(self, scale=1.0):
        super().__init__()
        self.scale = nn.Parameter(torch.tensor(float(scale)))

    def forward(self, x):
        return x * self.scale


class VLFusionModule(nn.Module):
    """mmdet ``VLFusionModule`` (``early_fuse=True``, GLIP-T): returns per level bbox_pred, centerness,
    dot-product token logits."""

    def __init__(self, in_channels, feat_channels, lang_dim, num_dyhead_blocks=6, num_base_priors=1,
                 lang_heads=12, lang_intermediate=3072, fuse_embed_dim=2048, fuse_heads=8, gn_groups=16,
                 early_fuse=True):
        super().__init__()
        self.num_base_priors, self.early_fuse = num_base_priors, early_fuse
        tower = []
        for i in range(num_dyhead_blocks):
            if early_fuse:
                tower.append(VLFuse(feat_channels, lang_dim, fuse_embed_dim, fuse_heads))
                tower.append(BertEncoderLayer(lang_dim, lang_heads, lang_intermediate))
            same = in_channels == feat_channels or i > 0
            tower.append(DyConv(in_channels if i == 0 else feat_channels, feat_channels, use_dyfuse=same,
                                use_dyrelu=same, use_dcn=same, gn_groups=gn_groups))
        self.dyhead_tower = nn.Sequential(*tower)
        self.bbox_pred = nn.Conv2d(feat_channels, num_base_priors * 4, 1)
        self.centerness = nn.Conv2d(feat_channels, num_base_priors, 1)
        self.dot_product_projection_text = nn.Linear(lang_dim, num_base_priors * feat_channels)
        self.log_scale = nn.Parameter(torch.tensor([0.0]))
        self.bias_lang = nn.Parameter(torch.zeros(lang_dim))
        self.bias0 = nn.Parameter(torch.tensor([-math.log((1 - 0.01) / 0.01)]))
        self.scales = nn.ModuleList(Scale(1.0) for _ in range(NUM_LEVELS))

    def forward(self, visual_feats, language_feats):
        tower = self.dyhead_tower({"visual": list(visual_feats), "lang": dict(language_feats)})
        embedding = tower["lang"]["hidden"] if self.early_fuse else language_feats["embedded"]
        embedding = F.normalize(embedding, p=2, dim=-1)
        tokens = self.dot_product_projection_text(embedding / 2.0)
        token_bias = torch.matmul(embedding, self.bias_lang) + self.bias0
        bbox_preds, centerness, cls_logits = [], [], []
        for i, visual in enumerate(tower["visual"]):
            b, c, h, w = visual.shape
            bbox_preds.append(self.scales[i](self.bbox_pred(visual)))
            centerness.append(self.centerness(visual))
            queries = permute_and_flatten(visual, b, self.num_base_priors, c, *static_size(visual))
            bias = token_bias.unsqueeze(1).repeat(1, self.num_base_priors, 1)
            logit = torch.matmul(queries, tokens.transpose(-1, -2)) / self.log_scale.exp() + bias
            cls_logits.append(logit.clamp(-MAX_CLAMP_VALUE, MAX_CLAMP_VALUE))
        return bbox_preds, centerness, cls_logits


class ATSSVLFusionHead(nn.Module):
    def __init__(self, **kwargs):
        super().__init__()
        self.head = VLFusionModule(**kwargs)

    def forward(self, visual_feats, language_feats):
        bbox_preds, centerness, cls_logits = self.head(visual_feats, language_feats)
        return cls_logits, bbox_preds, centerness


class _LanguageModel(nn.Module):
    """mmdet ``BertModel`` wrapper: HF's ``BertModel`` at ``language_backbone.body.model``."""

    def __init__(self, bert_config):
        super().__init__()
        from transformers import BertConfig, BertModel

        self.language_backbone = nn.Module()
        self.language_backbone.body = nn.Module()
        self.language_backbone.body.model = BertModel(BertConfig(**bert_config), add_pooling_layer=False)

    def forward(self, input_ids, attention_mask):
        """mmdet's language dict: ``hidden`` (last layer), ``embedded`` (hidden x mask), ``masks``."""
        out = self.language_backbone.body.model(input_ids=input_ids, attention_mask=attention_mask,
                                                 return_dict=True)
        hidden = out.last_hidden_state
        return {"hidden": hidden, "embedded": hidden * attention_mask.unsqueeze(-1).to(hidden.dtype),
                "masks": attention_mask}


def level_anchors(sizes, strides, octave_base_scale):
    """mmdet ``AnchorGenerator`` (ratio 1, one scale, ``center_offset=0.5``), levels concatenated:
    ``(N, 4)`` x1y1x2y2 in mmdet's order (row-major over each level's grid)."""
    out = []
    for (h, w), s in zip(sizes, strides):
        ys, xs = torch.meshgrid(torch.arange(h, dtype=torch.float32), torch.arange(w, dtype=torch.float32),
                                indexing="ij")
        cx, cy = (xs.reshape(-1) + 0.5) * s, (ys.reshape(-1) + 0.5) * s
        half = octave_base_scale * s / 2
        out.append(torch.stack([cx - half, cy - half, cx + half, cy + half], -1))
    return torch.cat(out)


def delta2bbox(anchors, deltas, stds=(0.1, 0.1, 0.2, 0.2), max_shape=None):
    """mmdet ``DeltaXYWHBBoxCoder.decode`` (means 0; dw/dh clamped at |log(16/1000)|; clipped to the image)."""
    d = deltas * deltas.new_tensor(stds)
    ratio = abs(math.log(16.0 / 1000))
    pw, ph = anchors[..., 2] - anchors[..., 0], anchors[..., 3] - anchors[..., 1]
    px, py = (anchors[..., 0] + anchors[..., 2]) / 2, (anchors[..., 1] + anchors[..., 3]) / 2
    gw, gh = pw * d[..., 2].clamp(-ratio, ratio).exp(), ph * d[..., 3].clamp(-ratio, ratio).exp()
    gx, gy = px + pw * d[..., 0], py + ph * d[..., 1]
    boxes = torch.stack([gx - gw / 2, gy - gh / 2, gx + gw / 2, gy + gh / 2], -1)
    if max_shape is not None:
        h, w = max_shape
        boxes = torch.stack([boxes[..., 0].clamp(0, w), boxes[..., 1].clamp(0, h),
                             boxes[..., 2].clamp(0, w), boxes[..., 3].clamp(0, h)], -1)
    return boxes


class GlipGraph(nn.Module):
    """The exported graph (shares the GLIP's weights): image branch, fusion head and mmdet's score/box decode."""

    def __init__(self, glip):
        super().__init__()
        self.backbone, self.neck, self.bbox_head = glip.backbone, glip.neck, glip.bbox_head
        self.strides, self.octave_base_scale = glip.strides, glip.octave_base_scale

    def forward(self, img, text_feats, text_masks, positive_map):
        feats = self.neck(self.backbone(img))
        lang = {"hidden": text_feats, "masks": text_masks,
                "embedded": text_feats * text_masks.unsqueeze(-1)}
        cls_logits, bbox_preds, centerness = self.bbox_head(feats, lang)
        b = img.shape[0]
        sizes = [static_size(f) for f in feats]
        logits = torch.cat(cls_logits, 1)
        deltas = torch.cat([permute_and_flatten(x, b, -1, 4, *s) for x, s in zip(bbox_preds, sizes)], 1)
        ctr = torch.cat([permute_and_flatten(x, b, -1, 1, *s) for x, s in zip(centerness, sizes)], 1)[..., 0]
        anchors = level_anchors(sizes, self.strides, self.octave_base_scale).to(img.device)
        boxes = delta2bbox(anchors.unsqueeze(0), deltas, max_shape=static_size(img))
        token_probs = logits.sigmoid()
        phrase = torch.matmul(token_probs, positive_map.transpose(1, 2))  # mean token probability per phrase
        scores = torch.sqrt((phrase * ctr.sigmoid().unsqueeze(-1)).clamp(min=0))
        return logits, deltas, ctr, boxes, scores


class GLIP(nn.Module):
    """mmdet ``GLIP`` (``backbone``, ``neck``, ``language_model``, ``bbox_head``); ``.graph`` is the export."""

    def __init__(self, backbone, neck, language_model, bbox_head, strides, octave_base_scale):
        super().__init__()
        self.backbone, self.neck, self.language_model, self.bbox_head = backbone, neck, language_model, bbox_head
        self.strides, self.octave_base_scale = tuple(strides), float(octave_base_scale)

    @property
    def graph(self) -> GlipGraph:
        if "_graph" not in self.__dict__:
            self.__dict__["_graph"] = GlipGraph(self)
        return self.__dict__["_graph"].train(self.training)

    def forward(self, img, text_feats, text_masks, positive_map):
        return self.graph(img, text_feats, text_masks, positive_map)


# GLIP-T (mmdet configs/glip/glip_atss_swin-t_*): Swin-T, FPN 256 x 5 levels, BERT-base, 6 DyHead blocks
GLIP_T = dict(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7, out_channels=256,
              num_dyhead_blocks=6, fuse_embed_dim=2048, fuse_heads=8, gn_groups=16, octave_base_scale=8,
              bert_config=dict(vocab_size=30522, hidden_size=768, num_hidden_layers=12, num_attention_heads=12,
                               intermediate_size=3072, max_position_embeddings=512))


def build_language_model(bert_config=None, seed=0) -> _LanguageModel:
    """The host's BERT (``language_model``) alone, exactly as ``build_model(seed=seed)`` initializes it (its
    own seed, so the data loader can rebuild it without the image branch)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) + 1)
        return _LanguageModel(dict(GLIP_T["bert_config"], **(bert_config or {}))).eval()


def build_model(embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7, mlp_ratio=4,
                out_indices=(1, 2, 3), out_channels=256, num_dyhead_blocks=6, fuse_embed_dim=2048, fuse_heads=8,
                gn_groups=16, octave_base_scale=8, bert_config=None, seed=0):
    """GLIP with mmdet's from-scratch init under ``seed`` (global RNG untouched); defaults: GLIP-T."""
    bert = dict(GLIP_T["bert_config"], **(bert_config or {}))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        backbone = swin_init(SwinTransformer(3, embed_dims, 4, window_size, mlp_ratio, tuple(depths),
                                             tuple(num_heads), tuple(out_indices)))
        neck = FPN([backbone.num_features[i] for i in out_indices], out_channels)
        language_model = build_language_model(bert, seed)
        head = ATSSVLFusionHead(in_channels=out_channels, feat_channels=out_channels, lang_dim=bert["hidden_size"],
                                num_dyhead_blocks=num_dyhead_blocks, lang_heads=bert["num_attention_heads"],
                                lang_intermediate=bert["intermediate_size"], fuse_embed_dim=fuse_embed_dim,
                                fuse_heads=fuse_heads, gn_groups=gn_groups)
        strides = [4 * 2 ** i for i in out_indices] + [4 * 2 ** out_indices[-1] * 2 ** k
                                                       for k in range(1, NUM_LEVELS - len(out_indices) + 1)]
        model = GLIP(backbone, neck, language_model, head, strides, octave_base_scale)
    return model.eval()
