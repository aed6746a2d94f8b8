"""The mmdet3d ``type=`` names this family deploys, and what its spec takes from an AWML model config.

AWML's TransFusion-L configs (``projects/TransFusion/configs/t4dataset/model/transfusion_lidar_pillar_second_
secfpn_1xb1_90m-768grid.py`` and its 50m/120m/576-grid siblings): ``TransFusion`` with ``PillarFeatureNet``,
``PointPillarsScatter``, ``SECOND``, ``SECONDFPN`` (the parts CenterPoint's configs use: their builders are
shared, ``models/centerpoint/mm_types.py``) and the lidar-only ``TransFusionHead`` whose ``decoder_layer`` is
a ``TransformerDecoderLayer``. The head's builder checks what the bundled head cannot honour (a sigmoid
classifier, ``num_heatmap_convs=2``, ReLU FFN of two layers, LN, a 2-channel position encoding of the hidden
width); ``TransFusion``'s builder checks the parts fit together and that the scatter's canvas and the head's
query grid (``test_cfg.pts.grid_size // out_size_factor``) are the voxel grid's. The host pipeline's
voxelization and decoding come from ``data_preprocessor.voxel_layer``, ``bbox_coder`` and ``test_cfg.pts``.
"""

from __future__ import annotations

from ..centerpoint.mm_types import MM_TYPES as _PARTS
from ..centerpoint.mm_types import build_pillar_parts
from ..mm_registry import MMType, build

_ME = __name__
_TRAINING = frozenset({"loss_cls", "loss_bbox", "loss_heatmap", "loss_iou", "train_cfg", "test_cfg", "init_cfg",
                       "bbox_coder", "bn_momentum", "auxiliary"})
_HEADS = dict(center=(2, 2), height=(1, 2), dim=(3, 2), rot=(2, 2), vel=(2, 2))

MM_TYPES = {
    "TransFusion": MMType(f"{_ME}:build_transfusion", family="transfusion_lidar",
                          children=("pts_voxel_encoder", "pts_middle_encoder", "pts_backbone", "pts_neck",
                                    "pts_bbox_head"), spec=f"{_ME}:spec_sections"),
    **{name: _PARTS[name] for name in ("PillarFeatureNet", "PointPillarsScatter", "SECOND", "SECONDFPN")},
    "TransFusionHead": MMType(f"{_ME}:transfusion_head", ignored=_TRAINING, children=("decoder_layer",)),
    "TransformerDecoderLayer": MMType(f"{_ME}:transformer_decoder_layer"),
}


def transformer_decoder_layer(self_attn_cfg=None, cross_attn_cfg=None, ffn_cfg=None, norm_cfg=None,
                              pos_encoding_cfg=None):
    """mmdet3d's (BEVFusion) ``TransformerDecoderLayer``: self- and cross-attention of one width, FFN, LN."""
    self_attn, cross_attn = dict(self_attn_cfg or {}), dict(cross_attn_cfg or {})
    embed, heads = self_attn.get("embed_dims", 128), self_attn.get("num_heads", 8)
    if (cross_attn.get("embed_dims", embed), cross_attn.get("num_heads", heads)) != (embed, heads):
        raise ValueError(f"cross_attn_cfg {cross_attn!r} differs from self_attn_cfg {self_attn!r}: the bundled "
                         "layer uses one width and head count")
    ffn = dict(ffn_cfg or {})
    if ffn.get("num_fcs", 2) != 2 or (ffn.get("act_cfg") or {}).get("type", "ReLU") != "ReLU":
        raise ValueError(f"ffn_cfg {ffn!r}: only num_fcs=2 with ReLU is implemented")
    if ffn.get("embed_dims", embed) != embed:
        raise ValueError(f"ffn_cfg.embed_dims={ffn['embed_dims']} differs from the attention's {embed}")
    if norm_cfg and norm_cfg.get("type", "LN") != "LN":
        raise ValueError(f"norm_cfg {norm_cfg!r}: only LN is implemented")
    pos = dict(pos_encoding_cfg or {})
    if pos.get("input_channel", 2) != 2 or pos.get("num_pos_feats", embed) != embed:
        raise ValueError(f"pos_encoding_cfg {pos!r}: the bundled layer encodes 2-D positions at the hidden width "
                         f"({embed})")
    return dict(embed=embed, heads=heads, ffn=ffn.get("feedforward_channels", 1024),
                dropout=self_attn.get("dropout", 0.1))


def transfusion_head(num_classes=4, num_proposals=128, in_channels=128 * 3, hidden_channel=128,
                     num_decoder_layers=3, decoder_layer=None, num_heads=8, nms_kernel_size=1, common_heads=None,
                     num_heatmap_convs=2, conv_cfg=None, norm_cfg=None, bias="auto", loss_cls=None,
                     _key="model.pts_bbox_head"):
    if not (loss_cls or {}).get("use_sigmoid", False):
        raise ValueError("loss_cls.use_sigmoid=False adds a background class: only sigmoid classifiers (AWML's "
                         "FocalLoss use_sigmoid=True) are implemented")
    heads = {k: tuple(v) for k, v in (common_heads or {}).items()}
    if heads != _HEADS:
        raise ValueError(f"common_heads {heads}: the bundled head implements {_HEADS}")
    if num_heatmap_convs != 2 or bias not in ("auto", True):
        raise ValueError("num_heatmap_convs=2 with biased convs is implemented")
    if nms_kernel_size % 2 != 1:
        raise ValueError(f"nms_kernel_size={nms_kernel_size}: an odd kernel keeps the heatmap's size")
    layer = build(decoder_layer or {"type": "TransformerDecoderLayer"}, f"{_key}.decoder_layer")
    if layer["embed"] != hidden_channel:
        raise ValueError(f"decoder_layer attention width {layer['embed']} differs from hidden_channel "
                         f"{hidden_channel}")
    return dict(num_classes=int(num_classes), _head_in=in_channels, num_proposals=int(num_proposals),
                hidden_channel=hidden_channel, num_heads=layer["heads"], ffn_channels=layer["ffn"],
                num_decoder_layers=int(num_decoder_layers), nms_kernel_size=int(nms_kernel_size))


def _out_size_factor(head, test):
    coder = head.get("bbox_coder") or {}
    return int(test.get("out_size_factor", coder.get("out_size_factor", 4)))


def build_transfusion(pts_voxel_encoder, pts_middle_encoder, pts_backbone, pts_neck, pts_bbox_head,
                      data_preprocessor=None, test_cfg=None, _key="model"):
    import torch

    from .model import TransFusion

    parts = build_pillar_parts(_key, pts_voxel_encoder=pts_voxel_encoder, pts_middle_encoder=pts_middle_encoder,
                               pts_backbone=pts_backbone, pts_neck=pts_neck, pts_bbox_head=pts_bbox_head)
    pcr, vs = parts["point_cloud_range"], parts["voxel_size"]
    want = (round((pcr[3] - pcr[0]) / vs[0]), round((pcr[4] - pcr[1]) / vs[1]))
    grid = tuple(parts.pop("_grid"))
    if grid != want and grid != want[::-1]:
        raise ValueError(f"pts_middle_encoder.output_shape {grid} differs from the voxel grid {want}")
    test = ((test_cfg or {}).get("pts")) or {}
    factor = _out_size_factor(pts_bbox_head, test)
    if test.get("grid_size") and tuple(test["grid_size"][:2]) != want:
        raise ValueError(f"test_cfg.pts.grid_size {list(test['grid_size'])} differs from the voxel grid {want}: "
                         "the head's query positions would not be the canvas's cells")
    torch.manual_seed(0)
    return TransFusion(out_size_factor=factor, **parts)


def spec_sections(mc) -> dict:
    """Pipeline kwargs (voxelization, decoding), the stage with AWML's names, classes, the test split's info.

    AWML's bbox_coder keeps every query (``score_threshold=0.0``: 500 boxes a frame, most near zero); the
    host pipeline here drops scores below 0.1 unless the coder asks for a higher threshold."""
    from ..centerpoint.mm_types import _test_info

    cfg, model = mc.cfg, mc.model
    enc, head = model["pts_voxel_encoder"], model["pts_bbox_head"]
    coder = head.get("bbox_coder") or {}
    layer = ((model.get("data_preprocessor") or {}).get("voxel_layer")) or {}
    test = ((model.get("test_cfg") or {}).get("pts")) or {}
    max_voxels = layer.get("max_voxels", 60000)
    max_voxels = max_voxels[1] if isinstance(max_voxels, (list, tuple)) else max_voxels
    vs = [float(v) for v in (layer.get("voxel_size") or enc.get("voxel_size"))]
    pcr = [float(v) for v in (layer.get("point_cloud_range") or enc.get("point_cloud_range"))]
    dims = enc.get("in_channels", 4)
    points = layer.get("max_num_points", 20)
    classes = list(cfg.get("class_names") or [])
    kwargs = dict(voxel_size=vs, point_cloud_range=pcr, max_points=points, max_voxels=max_voxels,
                  use_dims=list(range(dims)), out_size_factor=_out_size_factor(head, test),
                  score_threshold=max(float(coder.get("score_threshold", 0.0)), 0.1))
    if test.get("nms_type") == "circle":
        kwargs["nms_radius"] = float(test.get("min_radius", [1.0])[0] if isinstance(test.get("min_radius"), list)
                                     else test.get("min_radius", 1.0))
    axes = {n: {0: "voxels_num"} for n in ("voxels", "num_points", "coors")}
    prof = lambda n, tail: dict(name=n, min_shape=[1, *tail], opt_shape=[max(1, max_voxels // 2), *tail],  # noqa: E731
                                max_shape=[max_voxels, *tail])
    out = {
        "onnx_config": {"input_names": ["points"], "output_names": ["boxes_3d", "scores", "labels"],
                        "save_file": "transfusion_lidar.onnx"},
        "pipeline": {"kwargs": kwargs, "stages": [
            dict(name="end2end", module="end2end", input_names=["voxels", "num_points", "coors"],
                 output_names=["cls_score0", "bbox_pred0", "dir_cls_pred0"], dynamic_axes=axes,
                 model_inputs=[dict(prof("voxels", [points, dims]), dtype="float32"),
                               dict(prof("num_points", []), dtype="int32"),
                               dict(prof("coors", [4]), dtype="int32")])]},
        "data": {"kwargs": {"classes": classes} if classes else {}},
        "evaluation": {"kwargs": {"primary_metric": "mAP", **({"class_names": classes} if classes else {})}},
        # the final boxes are a set: matched by BEV centre distance, as the CenterPoint family's are
        "verification": {"outputs": {"boxes_3d": dict(
            compare="detections3d", covers=["scores", "labels"],
            decoder="pytest_autoware_deploy.verify.detections3d:detections_from_outputs",
            match_dist=1.0, center_atol=0.05, size_atol=0.05, yaw_atol=0.05, score_atol=0.02, max_unmatched=0,
            min_score=kwargs["score_threshold"] + 0.05)}},
    }
    root, ann = _test_info(cfg)
    if root:
        out["data"]["kwargs"]["data_root"] = root
    if ann:
        out["runtime_io"] = {"info_pkl": ann if ann.startswith("/") or not root else f"{root.rstrip('/')}/{ann}"}
    return out
