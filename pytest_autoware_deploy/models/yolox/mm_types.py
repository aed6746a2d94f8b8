"""The mmdet ``type=`` names this folder deploys, and what a spec takes from an AWML model config.

AWML's YOLOX_opt (``projects/YOLOX_opt/configs/t4dataset/YOLOX_opt-S-TrafficLight/*.py``) and mmdet's YOLOX
(``projects/YOLOX/configs/yolox_*.py``): ``YOLOX(backbone=CSPDarknet, neck=YOLOXPAFPN, bbox_head=YOLOXHead)``,
deployed as the ``yolox`` family (the decoded ``(B, N, 5 + C)`` tensor Autoware's tensorrt_yolox reads). The
parts' builders check that the config is the layout the bundled model builds (deepen/widen factors, the neck
and head widths, 3x3 convs, Swish, strides 8/16/32). AWML's YOLOX_opt-ELAN
(``projects/YOLOX_opt_elan/configs/*/YOLOX_opt-S-DynamicRecognition/*.py``) builds
``YOLOX(backbone=ELANDarknet, neck=YOLOXPAFPN_ELAN, bbox_head=YOLOXHead)`` from ``elan.py`` (arch P5 / P5_ASPP,
the config's ``act_cfg`` such as ReLU6 in every part, the head included); mixing a CSP part with an ELAN part is
refused.
"""

from __future__ import annotations

from functools import partial

from ..mm_registry import MMType, build

_ME = __name__
_TRAINING = frozenset({"loss_cls", "loss_bbox", "loss_obj", "loss_l1", "train_cfg", "test_cfg", "init_cfg"})

MM_TYPES = {
    "YOLOX": MMType(f"{_ME}:build_yolox", family="yolox", children=("backbone", "neck", "bbox_head"),
                    spec=f"{_ME}:spec_sections"),
    "CSPDarknet": MMType(f"{_ME}:csp_darknet"),
    "YOLOXPAFPN": MMType(f"{_ME}:yolox_pafpn"),
    "YOLOXHead": MMType(f"{_ME}:yolox_head", ignored=_TRAINING),
    "ELANDarknet": MMType(f"{_ME}:elan_darknet"),
    "YOLOXPAFPN_ELAN": MMType(f"{_ME}:yolox_pafpn_elan"),
}


def _plain(use_depthwise, act_cfg, norm_cfg, where):
    if use_depthwise:
        raise ValueError(f"{where}.use_depthwise=True is not implemented (AWML's YOLOX_opt uses False)")
    if act_cfg and act_cfg.get("type") not in ("Swish", "SiLU"):
        raise ValueError(f"{where}.act_cfg {act_cfg!r}: only Swish/SiLU is implemented")
    if norm_cfg and abs(norm_cfg.get("eps", 1e-3) - 1e-3) > 1e-12:
        raise ValueError(f"{where}.norm_cfg eps={norm_cfg['eps']}: the bundled layers use mmdet's 1e-3")


def csp_darknet(arch="P5", deepen_factor=1.0, widen_factor=1.0, out_indices=(2, 3, 4), use_depthwise=False,
                arch_ovewrite=None, spp_kernal_sizes=(5, 9, 13), conv_cfg=None, norm_cfg=None, act_cfg=None):
    _plain(use_depthwise, act_cfg, norm_cfg, "backbone")
    if arch != "P5" or arch_ovewrite or tuple(out_indices) != (2, 3, 4) or tuple(spp_kernal_sizes) != (5, 9, 13):
        raise ValueError("only arch='P5', out_indices=(2, 3, 4), spp_kernal_sizes=(5, 9, 13) are implemented")
    return dict(deepen_factor=deepen_factor, widen_factor=widen_factor)


def yolox_pafpn(in_channels, out_channels, num_csp_blocks=3, use_depthwise=False, upsample_cfg=None, conv_cfg=None,
                norm_cfg=None, act_cfg=None):
    _plain(use_depthwise, act_cfg, norm_cfg, "neck")
    if upsample_cfg and upsample_cfg.get("mode", "nearest") != "nearest":
        raise ValueError(f"neck.upsample_cfg {upsample_cfg!r}: only nearest upsampling is implemented")
    return dict(_neck_in=list(in_channels), neck_channels=out_channels, _csp_blocks=num_csp_blocks)


def yolox_head(num_classes, in_channels, feat_channels=256, stacked_convs=2, strides=(8, 16, 32), use_depthwise=False,
               dcn_on_last_conv=False, conv_bias="auto", conv_cfg=None, norm_cfg=None, act_cfg=None):
    from .elan import make_act

    _plain(use_depthwise, None, norm_cfg, "bbox_head")
    if stacked_convs != 2 or tuple(strides) != (8, 16, 32) or dcn_on_last_conv:
        raise ValueError("only stacked_convs=2, strides=(8, 16, 32) without DCN are implemented")
    head_act = True  # mmdet's default Swish
    if act_cfg and act_cfg.get("type") not in ("Swish", "SiLU"):
        try:
            make_act(act_cfg)
        except ValueError as exc:
            raise ValueError(f"bbox_head.{exc}") from None
        head_act = partial(make_act, dict(act_cfg))
    return dict(num_classes=num_classes, _head_in=in_channels, _feat=feat_channels, head_act=head_act)


def _elan_common(use_depthwise, conv_cfg, norm_cfg, act_cfg, where):
    from .elan import make_act, norm_args

    if use_depthwise:
        raise ValueError(f"{where}.use_depthwise=True is not implemented (AWML's YOLOX_opt-ELAN uses False)")
    if conv_cfg is not None:
        raise ValueError(f"{where}.conv_cfg {conv_cfg!r}: only the plain Conv2d (None) is implemented")
    try:
        make_act(act_cfg)
        return norm_args(norm_cfg)
    except ValueError as exc:
        raise ValueError(f"{where}.{exc}") from None


def elan_darknet(arch="P5", deepen_factor=2.0, widen_factor=1.0, out_indices=(2, 3, 4), use_depthwise=False,
                 aspp_dilations=(1, 6, 12, 18), arch_overwrite=None, conv_cfg=None,
                 norm_cfg=dict(type="BN", momentum=0.03, eps=0.001), act_cfg=dict(type="ReLU")):
    """AWML's ELANDarknet with its defaults (deepen 2.0, ReLU, BN eps 1e-3)."""
    from .elan import ELANDarknet

    norm = _elan_common(use_depthwise, conv_cfg, norm_cfg, act_cfg, "backbone")
    if not arch_overwrite and arch not in ELANDarknet.ARCH:
        raise ValueError(f"backbone.arch {arch!r}: AWML's ELANDarknet has {', '.join(ELANDarknet.ARCH)}")
    rows = arch_overwrite or ELANDarknet.ARCH[arch]
    if not set(out_indices) <= set(range(len(rows) + 1)):
        raise ValueError(f"backbone.out_indices {tuple(out_indices)}: stages are 0..{len(rows)}")
    return dict(_backbone=ELANDarknet(arch, deepen_factor, widen_factor, out_indices, tuple(aspp_dilations),
                                      arch_overwrite, norm, act_cfg))


def yolox_pafpn_elan(in_channels, out_channels, num_elan_blocks=2, use_depthwise=False,
                     upsample_cfg=dict(scale_factor=2, mode="nearest"), conv_cfg=None,
                     norm_cfg=dict(type="BN", momentum=0.03, eps=0.001), act_cfg=dict(type="Swish")):
    """AWML's YOLOXPAFPN_ELAN with its defaults (Swish unless the config says otherwise)."""
    from .elan import YOLOXPAFPN_ELAN

    norm = _elan_common(use_depthwise, conv_cfg, norm_cfg, act_cfg, "neck")
    up = dict(upsample_cfg or {})
    if up.get("scale_factor", 2) != 2 or up.get("mode", "nearest") != "nearest" or set(up) - {"scale_factor", "mode"}:
        raise ValueError(f"neck.upsample_cfg {upsample_cfg!r}: only scale_factor=2, mode='nearest' is implemented")
    return dict(_neck=YOLOXPAFPN_ELAN(list(in_channels), out_channels, num_elan_blocks, "nearest", norm, act_cfg))


def build_yolox(backbone, neck, bbox_head, data_preprocessor=None, _key="model"):
    import torch

    from .model import YOLOX

    torch.manual_seed(0)
    parts = {}
    for name, cfg in (("backbone", backbone), ("neck", neck), ("bbox_head", bbox_head)):
        parts.update(build(cfg, f"{_key}.{name}"))
    if "_backbone" in parts or "_neck" in parts:
        return _elan_yolox(parts)
    chans = [int(c * parts["widen_factor"]) for c in (256, 512, 1024)]
    if parts.pop("_neck_in") != chans:
        raise ValueError(f"neck.in_channels differ from the backbone's {chans}")
    blocks = parts.pop("_csp_blocks")
    if blocks != max(round(3 * parts["deepen_factor"]), 1):
        raise ValueError(f"neck.num_csp_blocks={blocks}: the bundled neck uses round(3 * deepen_factor)")
    head_in, feat = parts.pop("_head_in"), parts.pop("_feat")
    if head_in != parts["neck_channels"] or feat != parts["neck_channels"]:
        raise ValueError("bbox_head.in_channels and feat_channels must equal neck.out_channels here")
    return YOLOX(**parts)


def _elan_yolox(parts):
    """YOLOX_opt-ELAN: the built ELAN backbone and neck, the reused YOLOX head and decoding."""
    from .model import YOLOX

    if "_backbone" not in parts or "_neck" not in parts:
        raise ValueError("backbone ELANDarknet and neck YOLOXPAFPN_ELAN go together (AWML's YOLOX_opt-ELAN); "
                         "CSPDarknet/YOLOXPAFPN cannot be mixed with them")
    backbone, neck = parts["_backbone"], parts["_neck"]
    if neck.in_channels != backbone.out_channels:
        raise ValueError(f"neck.in_channels {neck.in_channels} differ from the backbone's {backbone.out_channels}")
    if parts["_head_in"] != neck.out_channels or parts["_feat"] != neck.out_channels:
        raise ValueError("bbox_head.in_channels and feat_channels must equal neck.out_channels here")
    return YOLOX(parts["num_classes"], backbone=backbone, neck=neck, head_act=parts["head_act"])


def _scale(cfg):
    for step in cfg.get("test_pipeline") or []:
        if isinstance(step, dict) and step.get("type") == "Resize":
            s = step.get("scale")
            return s[0] if isinstance(s, (list, tuple)) else s
    s = cfg.get("img_scale")
    return s[0] if isinstance(s, (list, tuple)) else s


def spec_sections(mc) -> dict:
    cfg, model = mc.cfg, mc.model
    test = model.get("test_cfg") or {}
    iou = (test.get("nms") or {}).get("iou_threshold", 0.65)
    decoder = "pytest_autoware_deploy.models.yolox.postprocess:decode_detections"
    kwargs = {"input_name": "images"}
    size = _scale(cfg)
    if size:
        kwargs["input_size"] = int(size)
    classes = list(cfg.get("classes") or [])
    if classes:
        kwargs["classes"] = classes
    out = {
        "onnx_config": {"input_names": ["images"], "output_names": ["output"],
                        "dynamic_axes": {"images": {0: "batch"}, "output": {0: "batch"}}},
        "data": {"kwargs": kwargs},
        "evaluation": {"kwargs": {"primary_metric": "mAP", "score_thr": 0.01, "nms_iou": iou, "decoder": decoder,
                                  **({"class_names": classes} if classes else {})}},
        "verification": {"outputs": {"dets": dict(
            compare="detections2d", decoder=decoder,
            decoder_kwargs=dict(output_name="output", score_thr=test.get("score_thr", 0.3), nms_iou=iou),
            iou=0.5, score_atol=1e-3, box_atol=0.05, max_unmatched=0, min_score=test.get("score_thr", 0.3) + 0.02)}},
    }
    dataset = (cfg.get("test_dataloader") or {}).get("dataset") or {}
    if dataset.get("ann_file"):
        root = dataset.get("data_root") or ""
        kwargs["ann_file"] = dataset["ann_file"] if dataset["ann_file"].startswith("/") or not root else \
            f"{root.rstrip('/')}/{dataset['ann_file']}"
    return out
