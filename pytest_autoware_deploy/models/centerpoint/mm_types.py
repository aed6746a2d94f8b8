"""The mmdet3d ``type=`` names this family deploys, and what its spec takes from an AWML model config.

AWML's CenterPoint configs (``projects/CenterPoint/configs/t4dataset/Centerpoint/*.py`` over
``configs/default/second_secfpn_base.py``): ``CenterPoint`` with ``PillarFeatureNet`` (pillar decoration
with cluster and voxel centres), ``PointPillarsScatter``, ``SECOND``, ``SECONDFPN`` and a single-task
``CenterHead`` (``SeparateHead`` / AWML's ``CustomSeparateHead``). Each part's builder checks the values
the bundled model cannot honour (a clear error, never a silently different network) and returns its
share of ``CenterPoint``'s keyword arguments; ``CenterPoint``'s builder makes the model. The host
pipeline's voxelization and decoding settings come from ``data_preprocessor.voxel_layer``,
``pts_bbox_head.bbox_coder`` and ``test_cfg.pts``.
"""

from __future__ import annotations

from ..mm_registry import MMType, build

_ME = __name__
_HEADS = dict(reg=(2, 2), height=(1, 2), dim=(3, 2), rot=(2, 2), vel=(2, 2))
_TRAINING = frozenset({"loss_cls", "loss_bbox", "norm_bbox", "train_cfg", "test_cfg", "init_cfg"})

MM_TYPES = {
    "CenterPoint": MMType(f"{_ME}:build_centerpoint", family="centerpoint",
                          children=("pts_voxel_encoder", "pts_middle_encoder", "pts_backbone", "pts_neck",
                                    "pts_bbox_head"), spec=f"{_ME}:spec_sections"),
    "PillarFeatureNet": MMType(f"{_ME}:pillar_feature_net"),
    # AWML projects/CenterPoint/models/voxel_encoders/pillar_encoder.py: pillar-centre offsets in x, y only
    "BackwardPillarFeatureNet": MMType(f"{_ME}:backward_pillar_feature_net"),
    "PointPillarsScatter": MMType(f"{_ME}:point_pillars_scatter"),
    "SECOND": MMType(f"{_ME}:second"),
    # CenterPoint-ConvNeXtPC (AWML projects/ConvNeXt_PC): the same detector with this backbone
    "ConvNeXt_PC": MMType(f"{_ME}:convnext_pc", ignored=frozenset({"drop_path_rate", "stem_patch_size"})),
    "SECONDFPN": MMType(f"{_ME}:second_fpn"),
    "CenterHead": MMType(f"{_ME}:center_head", ignored=_TRAINING),
}


def _bn_eps(norm_cfg, where):
    if norm_cfg and abs(norm_cfg.get("eps", 1e-3) - 1e-3) > 1e-12:
        raise ValueError(f"{where}.norm_cfg eps={norm_cfg['eps']}: the bundled layers use mmdet3d's 1e-3")


def pillar_feature_net(in_channels=4, feat_channels=(64,), with_distance=False, with_cluster_center=True,
                       with_voxel_center=True, voxel_size=(0.2, 0.2, 4), point_cloud_range=(0, -40, -3, 70.4, 40, 1),
                       norm_cfg=None, mode="max", legacy=True):
    if with_distance or not with_cluster_center or not with_voxel_center:
        raise ValueError("only with_cluster_center=True, with_voxel_center=True, with_distance=False is implemented "
                         "(AWML's configs; Autoware's host decoration)")
    if mode != "max":
        raise ValueError(f"mode={mode!r}: only 'max' pooling is implemented")
    _bn_eps(norm_cfg, "pts_voxel_encoder")
    return dict(in_channels=in_channels, pfn_channels=list(feat_channels), voxel_size=list(voxel_size),
                point_cloud_range=list(point_cloud_range))


def backward_pillar_feature_net(in_channels=4, feat_channels=(64,), with_distance=False, with_cluster_center=True,
                                with_voxel_center=True, voxel_size=(0.2, 0.2, 4),
                                point_cloud_range=(0, -40, -3, 70.4, 40, 1), norm_cfg=None, mode="max", legacy=True):
    """AWML's ``BackwardPillarFeatureNet``: PillarFeatureNet's decoration without the z offset from the pillar
    centre (``C + 3 + 2`` features; 9 for x, y, z, intensity). AWML's configs set ``legacy=False``; legacy
    mode writes the offsets into the raw x, y in place, which is not implemented."""
    if legacy:
        raise ValueError("legacy=True (centre offsets written over the raw x, y in place) is not implemented; "
                         "AWML's configs set legacy=False")
    parts = pillar_feature_net(in_channels, feat_channels, with_distance, with_cluster_center, with_voxel_center,
                               voxel_size, point_cloud_range, norm_cfg, mode, legacy=False)
    return dict(parts, voxel_center_dims=2)


def point_pillars_scatter(in_channels, output_shape):
    return dict(_scatter_channels=in_channels, _grid=tuple(output_shape))


def second(in_channels=128, out_channels=(128, 128, 256), layer_nums=(3, 5, 5), layer_strides=(2, 2, 2),
           norm_cfg=None, conv_cfg=None):
    _bn_eps(norm_cfg, "pts_backbone")
    if conv_cfg and (conv_cfg.get("type", "Conv2d") != "Conv2d" or conv_cfg.get("bias", False)):
        raise ValueError(f"pts_backbone.conv_cfg {conv_cfg!r}: only Conv2d without bias is implemented")
    return dict(_backbone_in=in_channels, backbone_channels=list(out_channels), layer_nums=list(layer_nums),
                layer_strides=list(layer_strides))


def convnext_pc(out_channels, depths, in_channels=3, stem_patch_size=4, norm_cfg=None, act_cfg=None,
                linear_pw_conv=True, drop_path_rate=0.0, layer_scale_init_value=1e-6, out_indices=-1,
                gap_before_final_norm=True, first_downsample=1, large_arch=None):
    """AWML's ``ConvNeXt_PC`` (``models/centerpoint/convnext_pc.py``). ``drop_path_rate`` is identity at
    inference and ``stem_patch_size`` is unused by AWML's code (no stem), so both are accepted and ignored."""
    del stem_patch_size, drop_path_rate
    norm = dict(norm_cfg or {"type": "LN2d", "eps": 1e-6})
    if norm.get("type") != "LN2d":
        raise ValueError(f"pts_backbone.norm_cfg {norm_cfg!r}: only LN2d (AWML's) is implemented")
    if (act_cfg or {"type": "GELU"}).get("type") != "GELU":
        raise ValueError(f"pts_backbone.act_cfg {act_cfg!r}: only GELU is implemented")
    if not linear_pw_conv:
        raise ValueError("pts_backbone.linear_pw_conv=False is not implemented (AWML uses Linear point-wise layers)")
    if gap_before_final_norm:
        raise ValueError("pts_backbone.gap_before_final_norm=True pools each output to a vector (classification); "
                         "a detector's backbone needs False, as AWML's CenterPoint-ConvNeXtPC configs set")
    if first_downsample != 1:
        raise ValueError(f"pts_backbone.first_downsample={first_downsample}: only 1 (no stem, AWML's configs) is "
                         "implemented")
    if len(out_channels) != len(depths):
        raise ValueError(f"pts_backbone.out_channels ({len(out_channels)}) and depths ({len(depths)}) differ in length")
    indices = [out_indices] if isinstance(out_indices, int) else list(out_indices)
    indices = [i + 4 if i < 0 else i for i in indices]  # AWML's rule (4 + index), whatever the number of stages
    channels = [in_channels, *list(out_channels)[1:]]
    if any(not 0 <= i < len(depths) for i in indices):
        raise ValueError(f"pts_backbone.out_indices {out_indices}: stages are 0..{len(depths) - 1}")
    convnext = dict(out_channels=channels, depths=list(depths), out_indices=indices,
                    layer_scale_init_value=layer_scale_init_value, eps=norm.get("eps", 1e-6),
                    large_arch=dict(large_arch) if large_arch else None, first_downsample=first_downsample)
    return dict(_backbone_in=in_channels, backbone_channels=[channels[i] for i in indices], convnext=convnext)


def second_fpn(in_channels=(128, 128, 256), out_channels=(256, 256, 256), upsample_strides=(1, 2, 4), norm_cfg=None,
               upsample_cfg=None, use_conv_for_no_stride=False, conv_cfg=None):
    _bn_eps(norm_cfg, "pts_neck")
    if not use_conv_for_no_stride and 1 in list(upsample_strides):
        raise ValueError("use_conv_for_no_stride=False with a stride-1 level is not implemented (AWML uses True)")
    if upsample_cfg and (upsample_cfg.get("type", "deconv") != "deconv" or upsample_cfg.get("bias", False)):
        raise ValueError(f"pts_neck.upsample_cfg {upsample_cfg!r}: only deconv without bias is implemented")
    return dict(_neck_in=list(in_channels), neck_channels=list(out_channels), upsample_strides=list(upsample_strides))


def center_head(in_channels, tasks, bbox_coder=None, common_heads=None, share_conv_channel=64, separate_head=None,
                num_heatmap_convs=2, conv_cfg=None, norm_cfg=None, bias="auto"):
    if len(tasks) != 1:
        raise ValueError(f"{len(tasks)} tasks: Autoware's CenterPoint (and the bundled model) has a single task")
    heads = {k: tuple(v) for k, v in (common_heads or _HEADS).items()}
    if heads != _HEADS:
        raise ValueError(f"common_heads {heads}: the bundled head implements {_HEADS}")
    sep = separate_head or {}
    if sep.get("type", "SeparateHead").rsplit(".", 1)[-1] not in ("SeparateHead", "CustomSeparateHead"):
        raise ValueError(f"separate_head type {sep.get('type')!r}: SeparateHead or CustomSeparateHead")
    if sep.get("final_kernel", 1) != 1 or num_heatmap_convs != 2:
        raise ValueError("final_kernel=1 and num_heatmap_convs=2 are implemented")
    return dict(_head_in=in_channels, num_classes=int(tasks[0]["num_class"]), share_conv_channel=share_conv_channel,
                init_bias=sep.get("init_bias", -2.19), _class_names=list(tasks[0].get("class_names") or []))


def build_pillar_parts(_key="model", **cfgs) -> dict:
    """Build the five ``pts_*`` parts of a pillar detector (CenterPoint, TransFusion-L) and check that their
    channels chain: pillar features -> scatter -> SECOND -> SECONDFPN -> head."""
    parts = {}
    for name, cfg in cfgs.items():
        parts.update(build(cfg, f"{_key}.{name}"))
    pfn_out = parts["pfn_channels"][-1]
    for got, key in ((parts.pop("_scatter_channels"), "pts_middle_encoder.in_channels"),
                     (parts.pop("_backbone_in"), "pts_backbone.in_channels")):
        if got != pfn_out:
            raise ValueError(f"{key}={got} differs from the pillar features' {pfn_out} channels")
    if parts.pop("_neck_in") != parts["backbone_channels"]:
        raise ValueError("pts_neck.in_channels differ from pts_backbone.out_channels")
    if parts.pop("_head_in") != sum(parts["neck_channels"]):
        raise ValueError("pts_bbox_head.in_channels differs from the sum of pts_neck.out_channels")
    return parts


def build_centerpoint(pts_voxel_encoder, pts_middle_encoder, pts_backbone, pts_neck, pts_bbox_head,
                      data_preprocessor=None, _key="model"):
    import torch

    from .model import CenterPoint

    parts = build_pillar_parts(_key, pts_voxel_encoder=pts_voxel_encoder, pts_middle_encoder=pts_middle_encoder,
                               pts_backbone=pts_backbone, pts_neck=pts_neck, pts_bbox_head=pts_bbox_head)
    grid, names = parts.pop("_grid"), parts.pop("_class_names")
    del names
    pcr, vs = parts["point_cloud_range"], parts["voxel_size"]
    want = (round((pcr[3] - pcr[0]) / vs[0]), round((pcr[4] - pcr[1]) / vs[1]))
    if tuple(grid) != want and tuple(grid) != want[::-1]:
        raise ValueError(f"pts_middle_encoder.output_shape {grid} differs from the voxel grid {want}")
    torch.manual_seed(0)
    return CenterPoint(**parts)


def _test_info(cfg):
    dataset = (cfg.get("test_dataloader") or {}).get("dataset") or {}
    return dataset.get("data_root"), dataset.get("ann_file")


def _voxel_setting(layer: dict, enc: dict, key: str) -> list:
    value = layer.get(key) or enc.get(key)
    if value is None:  # e.g. AWML's projects/CenterPoint/configs/default/second_secfpn_base.py
        raise ValueError(f"model.data_preprocessor.voxel_layer.{key} (or model.pts_voxel_encoder.{key}) is not set: "
                         f"this is a partial config that the full model configs complete through _base_; give one "
                         f"of those")
    return list(value)


def spec_sections(mc) -> dict:
    cfg, model = mc.cfg, mc.model
    enc = model["pts_voxel_encoder"]
    head = model["pts_bbox_head"]
    coder = head.get("bbox_coder") or {}
    layer = ((model.get("data_preprocessor") or {}).get("voxel_layer")) or {}
    test = ((model.get("test_cfg") or {}).get("pts")) or {}
    max_voxels = layer.get("max_voxels", 40000)
    max_voxels = max_voxels[1] if isinstance(max_voxels, (list, tuple)) else max_voxels
    vs, pcr = _voxel_setting(layer, enc, "voxel_size"), _voxel_setting(layer, enc, "point_cloud_range")
    classes = list(head["tasks"][0].get("class_names") or [])
    radius = test.get("min_radius", [1.0])
    kwargs = dict(voxel_size=vs, point_cloud_range=pcr, max_points=layer.get("max_num_points", 32),
                  max_voxels=max_voxels, use_dims=list(range(enc.get("in_channels", 4))),
                  out_size_factor=coder.get("out_size_factor", test.get("out_size_factor", 1)),
                  score_threshold=coder.get("score_threshold", 0.1), max_num=coder.get("max_num", 500),
                  nms_radius=radius[0] if isinstance(radius, (list, tuple)) else radius,
                  post_max_size=test.get("post_max_size", 100))
    center_dims = 2 if str(enc.get("type", "")).rsplit(".", 1)[-1] == "BackwardPillarFeatureNet" else 3
    if center_dims != 3:
        kwargs["voxel_center_dims"] = center_dims
    feats = enc.get("in_channels", 4) + 3 + center_dims
    out = {
        "onnx_config": {"input_names": ["points"], "output_names": ["boxes_3d", "scores", "labels"],
                        "save_file": "centerpoint.onnx"},
        "pipeline": {"kwargs": kwargs, "stages": [
            dict(name="pts_voxel_encoder", module="pts_voxel_encoder", input_names=["input_features"],
                 output_names=["pillar_features"],
                 dynamic_axes={"input_features": {0: "num_voxels"}, "pillar_features": {0: "num_voxels"}},
                 model_inputs=[dict(name="input_features", min_shape=[1000, kwargs["max_points"], feats],
                                    opt_shape=[20000, kwargs["max_points"], feats],
                                    max_shape=[max_voxels, kwargs["max_points"], feats])]),
            dict(name="pts_backbone_neck_head", module="pts_backbone_neck_head", input_names=["spatial_features"],
                 output_names=["heatmap", "reg", "height", "dim", "rot", "vel"], dynamic_axes=None)]},
        "data": {"kwargs": {"classes": classes}},
        "evaluation": {"kwargs": {"class_names": classes, "primary_metric": "mAP"}},
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
