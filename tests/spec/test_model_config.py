"""AWML model configs (OpenMMLab type= dicts with _base_ chains) build the bundled families with no
mmcv/mmdet/mmdet3d; package-scoped bases; OpenMMLab checkpoints load strictly with weights_only=True."""

from __future__ import annotations


import numpy as np
import pytest
import torch

from pytest_autoware_deploy.errors import ArtifactError, SpecError
from pytest_autoware_deploy.export.checkpoint import load_checkpoint
from pytest_autoware_deploy.models.mm_registry import MMConfigError, build, build_model, check
from pytest_autoware_deploy.spec.load import load_spec
from pytest_autoware_deploy.spec.model_config import load_model_config, model_sections

from .awml_workspace import CP_DEPLOY, CP_MODEL, CSC_MODEL, HERE, SYNTH, YOLOX_MODEL, awml, need, save_checkpoint  # noqa: F401,E501


def _params(m):
    return sum(p.numel() for p in m.parameters())


def _resnet_classifier(depth, in_channels=3, num_classes=1000):
    return dict(type="mmpretrain.ImageClassifier",
                backbone=dict(type="ResNet", depth=depth, in_channels=in_channels, num_stages=4, out_indices=(3,),
                              style="pytorch", frozen_stages=-1, norm_cfg=dict(type="BN", requires_grad=True)),
                neck=dict(type="GlobalAveragePooling"),
                head=dict(type="LinearClsHead", num_classes=num_classes, in_channels=512 if depth < 50 else 2048,
                          loss=dict(type="CrossEntropyLoss"), topk=(1, 5)))


@pytest.mark.parametrize("depth, params", [(18, 11_689_512), (34, 21_797_672), (50, 25_557_032)])
def test_resnet_any_depth_matches_the_reference_parameter_counts(depth, params):
    """mmpretrain's (= torchvision's) ImageNet ResNets: 11.69 M, 21.80 M, 25.56 M parameters."""
    assert _params(build(_resnet_classifier(depth))) == params


def test_five_channel_classifier_and_state_dict_names():
    model = build_model(_resnet_classifier(18, in_channels=5, num_classes=2))
    assert _params(model) == 11_689_512 - 64 * 3 * 49 + 64 * 5 * 49 - 998 * 513
    keys = set(model.state_dict())
    assert {"backbone.conv1.weight", "backbone.layer1.0.conv1.weight", "backbone.layer2.0.downsample.0.weight",
            "backbone.layer4.1.bn2.running_var", "head.fc.weight"} <= keys
    assert model(torch.zeros(1, 5, 64, 96)).shape == (1, 2)


@pytest.mark.parametrize("edit, key, text", [
    (lambda c: c["backbone"].update(depht=18), "model.backbone.depht", "did you mean 'depth'?"),
    (lambda c: c["backbone"].update(type="ResNeSt"), "model", "ImageClassifier is implemented here only with"),
    (lambda c: c["backbone"].update(depth=20), "model.backbone", "invalid depth 20"),
    (lambda c: c["head"].update(num_clases=2), "model.head.num_clases", "did you mean 'num_classes'?"),
])
def test_wrong_model_keys_name_the_dotted_key(edit, key, text):
    cfg = _resnet_classifier(18)
    edit(cfg)
    with pytest.raises(MMConfigError) as info:
        build(cfg)
    assert info.value.key == key and text in str(info.value)


def test_package_scoped_base_resolves_when_installed(awml):
    mc = load_model_config(awml / CSC_MODEL)  # _base_: mmpretrain::_base_/models/resnet18.py (stand-in package)
    assert mc.family == "calibration_status_classification"
    assert mc.model["backbone"]["in_channels"] == 5 and mc.model["backbone"]["depth"] == 18
    # custom_imports name AWML's own modules, which do not exist here: never imported
    assert "autoware_ml.calibration_classification.datasets.t4_calibration_classification_dataset" in \
        mc.cfg["custom_imports"]["imports"]
    sections = model_sections(mc)
    assert sections["data"]["kwargs"]["dilation_size"] == 1
    assert build_model(mc.model, str(mc.file))(torch.zeros(1, 5, 64, 64)).shape == (1, 2)


def test_package_scoped_base_without_the_package_is_one_error(tmp_path):
    cfg = tmp_path / "model.py"
    cfg.write_text("_base_ = ['mmpretrain::_base_/models/resnet18.py']\n")
    with pytest.raises(SpecError) as info:
        load_model_config(cfg)
    assert str(info.value).startswith(f"{cfg}: _base_: ")
    assert "Python package 'mmpretrain', which is not installed here (pip install mmpretrain)" in str(info.value)


def test_yolox_opt_model_config_builds_yolox_s(awml):
    mc = load_model_config(awml / YOLOX_MODEL)
    model = build_model(mc.model, str(mc.file))
    # mmdet's YOLOX-S (8 968 255 parameters with 80 classes) with the 3 tlr_finedetector classes
    assert _params(model) == 8_968_255 - 77 * 129 * 3
    assert model(torch.zeros(1, 3, 416, 416)).shape == (1, 3549, 8)
    sections = model_sections(mc)
    assert sections["data"]["kwargs"]["input_size"] == 416
    assert sections["evaluation"]["kwargs"]["class_names"] == ["BACKGROUND", "traffic_light",
                                                               "pedestrian_traffic_light"]


def test_unimplemented_yolox_backbone_is_refused_by_name():
    cfg = dict(type="YOLOX", backbone=dict(type="CSPNeXt"), neck=dict(type="YOLOXPAFPN", in_channels=[1],
               out_channels=1), bbox_head=dict(type="YOLOXHead", num_classes=1, in_channels=1))
    with pytest.raises(MMConfigError, match="model.backbone.type: 'CSPNeXt' is not a type"):
        check(cfg)


def test_centerpoint_full_size_from_the_components_config(awml, tmp_path):
    """The newest deployment/ CenterPoint config with AWML's j6gen2 base model config (121 m, 1020x1020)."""
    need(SYNTH / "lidar" / "info_val.pkl")
    mc = load_model_config(awml / CP_MODEL)
    model = build_model(mc.model, str(mc.file))
    ckpt = save_checkpoint(model, awml / "work_dirs/centerpoint/best_checkpoint.pth")
    assert ckpt.is_file()
    spec = load_spec(CP_DEPLOY, model_config=CP_MODEL, device="cpu", work_dir=tmp_path / "wd")
    stages = {s["name"]: s for s in spec.cfg["pipeline"]["stages"]}
    assert stages["pts_voxel_encoder"]["model_inputs"][0]["max_shape"] == [96000, 32, 11]  # 5 point dims + 6
    assert stages["pts_backbone_neck_head"]["model_inputs"][0]["opt_shape"] == [1, 32, 1020, 1020]
    assert spec.cfg["pipeline"]["kwargs"]["use_dims"] == [0, 1, 2, 3, 4]
    assert spec.cfg["pipeline"]["kwargs"]["out_size_factor"] == 2
    assert spec.cfg["runtime_io"]["sample_idx"] == 5
    assert spec.cfg["export"]["verify"] is False  # verification.enabled=False in the published file
    assert spec.cfg["data"]["kwargs"]["classes"] == ["car", "truck", "bus", "bicycle", "pedestrian"]
    enc = model.pts_voxel_encoder
    with torch.no_grad():
        assert enc(torch.zeros(7, 32, 11)).shape == (7, 1, 32)
    assert {"pts_voxel_encoder.pfn_layers.0.linear.weight", "pts_backbone.blocks.2.16.running_mean",
            "pts_neck.deblocks.0.0.weight", "pts_bbox_head.task_heads.0.heatmap.1.bias"} <= set(model.state_dict())


def test_openmmlab_checkpoint_loads_strictly(tmp_path):
    model = build_model(_resnet_classifier(18, in_channels=5, num_classes=2))
    path = save_checkpoint(model, tmp_path / "epoch_28.pth")
    other = build_model(_resnet_classifier(18, in_channels=5, num_classes=2))
    torch.nn.init.zeros_(other.head.fc.weight)
    contents = load_checkpoint(other, path)
    assert torch.equal(other.head.fc.weight, model.head.fc.weight)
    assert {k for k, _ in contents.dropped} == {"data_preprocessor.mean", "data_preprocessor.std"}
    assert contents.meta["epoch"] == 28
    plain = save_checkpoint(model, tmp_path / "plain.pth", openmmlab=False)
    load_checkpoint(other, plain)
    bad = build_model(_resnet_classifier(18, in_channels=3, num_classes=2))
    with pytest.raises(ArtifactError, match=r"shape mismatches \(1\): backbone.conv1.weight: checkpoint "
                                            r"\(64, 5, 7, 7\) vs model \(64, 3, 7, 7\)"):
        load_checkpoint(bad, path)


def test_ema_copies_and_wrapper_prefixes_are_handled_by_name(tmp_path):
    """mmengine's EMAHook keeps the raw weights under ``ema_state_dict`` and the averaged ones in ``state_dict``
    (the ones AWML evaluates); mmdet 2.x's hook stores ``ema_*`` copies inside ``state_dict``; DataParallel
    prefixes ``module.``. The model's own weights load, every dropped key is listed."""
    model = torch.nn.Sequential(torch.nn.Linear(3, 2))
    averaged = {k: torch.full_like(v, 2.0) for k, v in model.state_dict().items()}
    raw = {k: torch.full_like(v, -1.0) for k, v in model.state_dict().items()}
    state = {**{f"module.{k}": v for k, v in averaged.items()}, "ema_0_weight": torch.zeros(2, 3),
             "module.ema_0_bias": torch.zeros(2)}
    path = tmp_path / "ema.pth"
    torch.save({"meta": {"epoch": 3}, "state_dict": state, "ema_state_dict": raw}, path)
    contents = load_checkpoint(model, path)
    assert all(torch.equal(v, averaged[k]) for k, v in model.state_dict().items())
    assert contents.key == "state_dict"
    assert {k for k, _ in contents.dropped} == {"ema_0_weight", "module.ema_0_bias"}
    assert all("EMA copy" in why for _, why in contents.dropped)


def test_checkpoint_metadata_never_runs_code(tmp_path):
    """Metadata globals get inert stand-ins (see the OpenMMLab test); a planted os.system is refused by
    name and never runs."""
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            import os
            return (os.system, (f"touch {marker}",))

    state = {"w": torch.ones(2)}
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": state, "meta": {"x": Evil()}}, path)
    model = torch.nn.Module()
    model.register_buffer("w", torch.zeros(2))
    with pytest.raises(ArtifactError, match="cannot be loaded with weights_only=True .*posix.system"):
        load_checkpoint(model, path)
    assert not marker.exists()


TF_MODEL = (HERE / "awml/projects/TransFusion/configs/t4dataset/model"
            / "transfusion_lidar_pillar_second_secfpn_1xb1_90m-768grid.py")


def test_transfusion_model_config_builds_the_bundled_transfusion_l():
    """AWML's 90 m / 768-grid TransFusion-L model file: every parameter of the bundled model, by name and shape,
    and the head's settings that no parameter shows (heads, NMS kernel, queries)."""
    from pytest_autoware_deploy.models.transfusion_lidar.model import TransFusion

    mc = load_model_config(TF_MODEL)
    assert mc.family == "transfusion_lidar"
    model = build_model(mc.model, str(mc.file))
    want = TransFusion(num_classes=4)  # mmdet3d's TransFusionHead default; AWML's dataset config sets it
    assert {k: v.shape for k, v in model.state_dict().items()} == {k: v.shape for k, v in want.state_dict().items()}
    head = model.pts_bbox_head
    assert (head.num_proposals, head.nms_kernel_size, head.decoder[0].self_attn.attn.num_heads) == (500, 3, 8)
    assert head.bev_pos.shape == (1, 192 * 192, 2)  # test_cfg.pts.grid_size // out_size_factor
    sections = model_sections(mc)
    kwargs = sections["pipeline"]["kwargs"]
    assert (kwargs["max_points"], kwargs["max_voxels"], kwargs["use_dims"], kwargs["out_size_factor"]) == \
        (20, 60000, [0, 1, 2, 3, 4], 4)
    stage = sections["pipeline"]["stages"][0]
    assert stage["output_names"] == ["cls_score0", "bbox_pred0", "dir_cls_pred0"]
    assert stage["model_inputs"][0]["max_shape"] == [60000, 20, 5]


def _small_transfusion_config():
    """The mirrored config at demo size (+-20.48 m, 0.32 m pillars, 50 queries): same types and keys."""
    import copy

    from pytest_autoware_deploy.spec.model_config import read_config

    cfg = copy.deepcopy(read_config(TF_MODEL, "model config")["model"])
    pcr, vs = [-20.48, -20.48, -3.0, 20.48, 20.48, 7.0], [0.32, 0.32, 10]
    cfg["pts_voxel_encoder"].update(point_cloud_range=pcr, voxel_size=vs, feat_channels=[16, 16])
    cfg["pts_middle_encoder"].update(in_channels=16, output_shape=(128, 128))
    cfg["pts_backbone"].update(in_channels=16, out_channels=[16, 32, 64], layer_nums=[1, 1, 1])
    cfg["pts_neck"].update(in_channels=[16, 32, 64], out_channels=[16, 16, 16])
    cfg["pts_bbox_head"].update(in_channels=48, hidden_channel=32, num_proposals=50, num_classes=3)
    layer = cfg["pts_bbox_head"]["decoder_layer"]
    for k in ("self_attn_cfg", "cross_attn_cfg"):
        layer[k].update(embed_dims=32, num_heads=4)
    layer["ffn_cfg"].update(embed_dims=32, feedforward_channels=64)
    layer["pos_encoding_cfg"].update(num_pos_feats=32)
    cfg["test_cfg"]["pts"].update(grid_size=[128, 128, 1])
    return cfg


def test_transfusion_model_config_computes_what_the_bundled_model_computes():
    from pytest_autoware_deploy.models.transfusion_lidar.model import TransFusion

    model = build_model(_small_transfusion_config())
    ref = TransFusion(num_classes=3, in_channels=5, pfn_channels=[16, 16], voxel_size=[0.32, 0.32, 10],
                      point_cloud_range=[-20.48, -20.48, -3.0, 20.48, 20.48, 7.0], backbone_channels=[16, 32, 64],
                      layer_nums=[1, 1, 1], neck_channels=[16, 16, 16], out_size_factor=4, num_proposals=50,
                      hidden_channel=32, num_heads=4, ffn_channels=64).eval()
    ref.load_state_dict(model.state_dict(), strict=True)
    gen = torch.Generator().manual_seed(0)
    coors = torch.zeros(40, 4, dtype=torch.int32)
    coors[:, 2:] = torch.randperm(128 * 128, generator=gen)[:40].view(-1, 1).repeat(1, 2)
    coors[:, 2] //= 128
    coors[:, 3] %= 128
    num = torch.randint(1, 21, (40,), generator=gen, dtype=torch.int32)
    voxels = torch.randn(40, 20, 5, generator=gen)
    with torch.no_grad():
        for got, want in zip(model(voxels, num, coors), ref(voxels, num, coors)):
            torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.parametrize("edit, key, text", [
    (lambda c: c["pts_bbox_head"].update(num_proposal=10), "model.pts_bbox_head.num_proposal",
     "did you mean 'num_proposals'?"),
    (lambda c: c["pts_bbox_head"]["decoder_layer"]["ffn_cfg"].update(num_fcs=3), "model.pts_bbox_head.decoder_layer",
     "only num_fcs=2 with ReLU"),
    (lambda c: c["pts_bbox_head"]["loss_cls"].update(use_sigmoid=False), "model.pts_bbox_head",
     "only sigmoid classifiers"),
    (lambda c: c["test_cfg"]["pts"].update(grid_size=[96, 96, 1]), "model", "test_cfg.pts.grid_size [96, 96, 1] "
     "differs from the voxel grid (128, 128)"),
    (lambda c: c["pts_bbox_head"]["decoder_layer"].update(type="DetrTransformerDecoderLayer"),
     "model.pts_bbox_head.decoder_layer.type", "'DetrTransformerDecoderLayer' is not a type"),
])
def test_wrong_transfusion_keys_name_the_dotted_key(edit, key, text):
    cfg = _small_transfusion_config()
    edit(cfg)
    with pytest.raises(MMConfigError) as info:
        build(cfg)
    assert info.value.key == key and text in str(info.value), str(info.value)


def test_partial_centerpoint_base_names_the_missing_voxel_setting():
    """AWML's projects/CenterPoint/configs/default/second_secfpn_base.py is completed by the full configs."""
    mc = load_model_config(HERE / "awml/projects/CenterPoint/configs/default/second_secfpn_base.py")
    with pytest.raises(SpecError, match=r"voxel_layer\.point_cloud_range \(or model\.pts_voxel_encoder\."
                                        r"point_cloud_range\) is not set: this is a partial config"):
        model_sections(mc)


SHORT_RANGE = "projects/CenterPoint/configs/t4dataset/CenterPoint-ShortRange/pillar_016_second_secfpn_2xb8_50m_base.py"


def test_backward_pillar_feature_net_config_builds_a_9_feature_encoder():
    """AWML's CenterPoint-ShortRange (tier4/AWML main) uses BackwardPillarFeatureNet: x, y pillar-centre offsets
    only, so the encoder stage takes C + 5 = 9 features and the host decorates the same way."""
    from pytest_autoware_deploy.models.centerpoint.pipeline import CenterPointPipeline

    mc = load_model_config(HERE / "awml" / SHORT_RANGE)
    model = build_model(mc.model, str(mc.file))
    assert model.pts_voxel_encoder.pfn_layers[0].linear.in_features == 9
    sections = model_sections(mc)
    kwargs = sections["pipeline"]["kwargs"]
    assert kwargs["voxel_center_dims"] == 2
    enc_stage = sections["pipeline"]["stages"][0]
    assert enc_stage["model_inputs"][0]["max_shape"][-1] == 9
    host = CenterPointPipeline(**kwargs, host_device="cpu")
    rng = np.random.default_rng(0)
    points = np.concatenate([rng.uniform(-40, 40, (3000, 2)), rng.uniform(-2, 1, (3000, 1)),
                             rng.random((3000, 2))], 1).astype(np.float32)
    feats, coors = host.preprocess(points)
    assert feats.shape[-1] == 9
    with torch.no_grad():
        pillars = model.pts_voxel_encoder(torch.from_numpy(feats))
    assert pillars.shape == (len(coors), 1, 32)
    bad = dict(mc.model, pts_voxel_encoder=dict(mc.model["pts_voxel_encoder"], legacy=True))
    with pytest.raises(SpecError, match="legacy=True"):
        build_model(bad, "cfg")
