"""The mmdet3d ``type=`` names this family deploys, and what its spec takes from an AWML model config.

AWML's FRNet configs (``projects/FRNet/configs/model/frnet.py`` under ``t4dataset/frnet_1xb8_t4dataset-*-seg.py``):
``FRNet`` with ``FrustumFeatureEncoder``, ``FRNetBackbone`` and ``FRHead``; the auxiliary ``FrustumHead``s
only train. The host's frustum grid comes from ``data_preprocessor`` (``FrustumRangePreprocessor``: H, W,
fov_up, fov_down), the classes from ``class_mapping`` / ``class_names``, ``ignore_index`` from the config.
"""

from __future__ import annotations

from ..mm_registry import MMType, build

_ME = __name__
_NORMS = ("BN", "BN1d", "BN2d", "SyncBN")

MM_TYPES = {
    "FRNet": MMType(f"{_ME}:build_frnet", family="frnet", children=("voxel_encoder", "backbone", "decode_head"),
                    ignored=frozenset({"auxiliary_head", "neck"}), spec=f"{_ME}:spec_sections"),
    "FrustumFeatureEncoder": MMType(f"{_ME}:frustum_feature_encoder"),
    "FRNetBackbone": MMType(f"{_ME}:frnet_backbone", ignored=frozenset({"deploy", "conv_cfg"})),
    "FRHead": MMType(f"{_ME}:fr_head", ignored=frozenset({"deploy", "loss_ce", "ignore_index", "dropout_ratio",
                                                          "conv_seg_kernel_size", "loss_decode"})),
}


def _norm(cfg, key):
    cfg = cfg or {}
    if cfg.get("type", "BN") not in _NORMS:
        raise ValueError(f"{key}.type {cfg.get('type')!r}: only batch norms ({', '.join(_NORMS)}) are implemented")
    return cfg.get("eps", 1e-5), cfg.get("momentum", 0.1)


def frustum_feature_encoder(in_channels=4, feat_channels=(), with_distance=False, with_cluster_center=False,
                            norm_cfg=None, with_pre_norm=False, feat_compression=None):
    if not feat_channels:
        raise ValueError("voxel_encoder.feat_channels: at least one layer")
    eps, mom = _norm(norm_cfg, "voxel_encoder.norm_cfg")
    return dict(in_channels=in_channels, feat_channels=list(feat_channels), with_distance=with_distance,
                with_cluster_center=with_cluster_center, with_pre_norm=with_pre_norm,
                feat_compression=feat_compression, eps=eps, momentum=mom)


def frnet_backbone(in_channels, point_in_channels, output_shape, depth, stem_channels=128, num_stages=4,
                   out_channels=(128, 128, 128, 128), strides=(1, 2, 2, 2), dilations=(1, 1, 1, 1),
                   fuse_channels=(256, 128), norm_cfg=None, point_norm_cfg=None, act_cfg=None):
    if depth not in (18, 34):
        raise ValueError(f"backbone.depth={depth}: 18 or 34 (FRNetBackbone's arch_settings)")
    if num_stages != 4 or len(out_channels) != 4 or len(strides) != 4:
        raise ValueError("backbone: num_stages, out_channels and strides describe 4 stages")
    if any(d != 1 for d in dilations):
        raise ValueError(f"backbone.dilations {dilations}: only 1 is implemented")
    act = (act_cfg or {"type": "LeakyReLU"}).get("type")
    if act not in ("HSwish", "LeakyReLU", "ReLU"):
        raise ValueError(f"backbone.act_cfg type {act!r}: HSwish, LeakyReLU or ReLU")
    eps, mom = _norm(norm_cfg, "backbone.norm_cfg")
    _norm(point_norm_cfg, "backbone.point_norm_cfg")
    return dict(_backbone_in=in_channels, _point_in=point_in_channels, output_shape=list(output_shape), depth=depth,
                stem_channels=stem_channels, out_channels=list(out_channels), strides=list(strides),
                fuse_channels=list(fuse_channels), act=act, eps=eps, momentum=mom)


def fr_head(in_channels, middle_channels, num_classes, channels, norm_cfg=None):
    _norm(norm_cfg, "decode_head.norm_cfg")
    return dict(_head_in=in_channels, middle_channels=list(middle_channels), num_classes=num_classes,
                channels=channels)


def build_frnet(voxel_encoder, backbone, decode_head, _key="model"):
    from .model import FRNet

    enc = build(voxel_encoder, f"{_key}.voxel_encoder")
    bb = build(backbone, f"{_key}.backbone")
    head = build(decode_head, f"{_key}.decode_head")
    want_in = enc["feat_compression"] or enc["feat_channels"][-1]
    if bb.pop("_backbone_in") != want_in:
        raise ValueError(f"backbone.in_channels differs from the encoder's frustum features ({want_in})")
    if bb.pop("_point_in") != bb["stem_channels"] + enc["feat_channels"][-1]:
        raise ValueError("backbone.point_in_channels must be stem_channels + voxel_encoder.feat_channels[-1]")
    if head.pop("_head_in") != bb["fuse_channels"][-1]:
        raise ValueError("decode_head.in_channels differs from backbone.fuse_channels[-1]")
    eps, mom = enc.pop("eps"), enc.pop("momentum")
    del eps, mom  # the bundled model takes one eps/momentum: the backbone's (AWML uses one norm_cfg throughout)
    return FRNet(**enc, **bb, **head)


def spec_sections(mc) -> dict:
    cfg, model = mc.cfg, mc.model
    pre = model.get("data_preprocessor") or {}
    names = cfg.get("class_names")
    if not names and cfg.get("class_mapping"):
        ignore = cfg.get("ignore_index")
        by_index = {}
        for name, idx in cfg["class_mapping"].items():
            if idx != ignore:
                by_index.setdefault(idx, name)
        names = [by_index[i] for i in sorted(by_index)]
    names = list(names or [])
    num = model["decode_head"].get("num_classes", len(names))
    if len(names) < num:
        names += [f"class_{i}" for i in range(len(names), num)]
    kwargs = dict(H=pre.get("H", 64), W=pre.get("W", 512), fov_up=pre.get("fov_up", 3.0),
                  fov_down=pre.get("fov_down", -25.0))
    out = {"pipeline": {"kwargs": kwargs},
           "evaluation": {"kwargs": {"class_names": names[:num], "ignore_index": cfg.get("ignore_index")}}}
    test = (cfg.get("test_dataloader") or {}).get("dataset") or {}
    if test.get("ann_file"):
        root = test.get("data_root") or ""
        ann = test["ann_file"]
        out["runtime_io"] = {"info_pkl": ann if ann.startswith("/") or not root else f"{root.rstrip('/')}/{ann}"}
    return out
