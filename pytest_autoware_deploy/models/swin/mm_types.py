"""The OpenMMLab ``type=`` names this family implements: ``mmdet.SwinTransformer`` and AWML's
``GeneralizedLSSFPN`` (``projects/BEVFusion/bevfusion/bevfusion_necks.py``), as BEVFusion's
``img_backbone`` / ``img_neck`` configure them.

Training-only keys (drop rates, ``convert_weights``, ``pretrain_img_size``, ``with_cp``, ``init_cfg``) are
accepted and unused. Values the implementation cannot honour are one error naming the key, never a
silently different network. ``build_image_backbone`` turns a BEVFusion ``model`` dict's image branch
(``img_backbone``, ``img_neck``, ``data_preprocessor`` mean/std) into the image-backbone graph's module.
"""

from __future__ import annotations

from ..mm_registry import MMType, build

_ME = __name__
_SWIN_TRAINING = frozenset({"drop_rate", "attn_drop_rate", "drop_path_rate", "convert_weights",
                            "pretrain_img_size"})

MM_TYPES = {
    "SwinTransformer": MMType(f"{_ME}:swin_transformer", ignored=_SWIN_TRAINING),
    "GeneralizedLSSFPN": MMType(f"{_ME}:generalized_lss_fpn"),
}


def _only(value, allowed, key):
    if value not in allowed:
        raise ValueError(f"{key}={value!r}: only {' or '.join(repr(a) for a in allowed)} is implemented here")


def swin_transformer(in_channels=3, embed_dims=96, patch_size=4, window_size=7, mlp_ratio=4, depths=(2, 2, 6, 2),
                     num_heads=(3, 6, 12, 24), strides=(4, 2, 2, 2), out_indices=(0, 1, 2, 3), qkv_bias=True,
                     qk_scale=None, patch_norm=True, use_abs_pos_embed=False, act_cfg=None, norm_cfg=None):
    from .model import SwinTransformer

    _only(bool(use_abs_pos_embed), (False,), "use_abs_pos_embed")
    _only((act_cfg or {"type": "GELU"}).get("type"), ("GELU",), "act_cfg.type")
    _only((norm_cfg or {"type": "LN"}).get("type"), ("LN",), "norm_cfg.type")
    expected = (patch_size,) + (2,) * (len(depths) - 1)
    if tuple(strides) != expected:
        raise ValueError(f"strides={tuple(strides)}: only non-overlapping patches then 2x merging {expected}")
    return SwinTransformer(in_channels, embed_dims, patch_size, window_size, mlp_ratio, tuple(depths),
                           tuple(num_heads), tuple(out_indices), qkv_bias, qk_scale, patch_norm)


def generalized_lss_fpn(in_channels, out_channels, num_outs, start_level=0, end_level=-1, no_norm_on_lateral=False,
                        conv_cfg=None, norm_cfg=None, act_cfg=None, upsample_cfg=None):
    from .model import GeneralizedLSSFPN

    _only(start_level, (0,), "start_level")
    _only(end_level, (-1,), "end_level")
    _only(bool(no_norm_on_lateral), (False,), "no_norm_on_lateral")
    _only((conv_cfg or {"type": "Conv2d"}).get("type"), ("Conv2d",), "conv_cfg.type")
    _only((norm_cfg or {"type": "BN2d"}).get("type"), ("BN2d", "BN"), "norm_cfg.type")
    _only((act_cfg or {"type": "ReLU"}).get("type"), ("ReLU",), "act_cfg.type")
    up = {"mode": "bilinear", "align_corners": True, **(upsample_cfg or {})}  # AWML's class default: True
    _only(up.pop("mode"), ("bilinear",), "upsample_cfg.mode")
    align = bool(up.pop("align_corners"))
    if up:
        raise ValueError(f"upsample_cfg keys {sorted(up)}: only mode and align_corners are implemented")
    return GeneralizedLSSFPN(list(in_channels), out_channels, num_outs, align_corners=align)


def build_image_backbone(model: dict, key: str = "model"):
    """AWML BEVFusion ``model`` dict -> ``SwinImageBackbone`` (imgs uint8 -> image_feats), from its
    ``img_backbone``, ``img_neck`` and ``data_preprocessor`` mean/std (defaults: ImageNet's)."""
    from .model import MEAN, STD, SwinImageBackbone

    pre = model.get("data_preprocessor") or {}
    if pre.get("bgr_to_rgb") or pre.get("rgb_to_bgr"):
        raise ValueError(f"{key}.data_preprocessor: a channel swap is not part of AWML's image-backbone graph")
    backbone = build(model["img_backbone"], f"{key}.img_backbone")
    neck = build(model["img_neck"], f"{key}.img_neck")
    return SwinImageBackbone(backbone, neck, pre.get("mean", MEAN), pre.get("std", STD)).eval()
