"""FRNet: mmdet3d parameter names from AWML's model config, the host's frustum grouping equals AWML's torch
code, the one ONNX graph (ScatterElements max, both output names) equals PyTorch in ONNX Runtime, labelled
synthetic scenes, the dataset's errors, and the shipped demo checkpoint segments."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from pytest_autoware_deploy.models.calibration_status_classification.dataset import InfoFileError
from pytest_autoware_deploy.models.frnet.dataset import LidarSegSamples
from pytest_autoware_deploy.models.frnet.model import build_model
from pytest_autoware_deploy.models.frnet.pipeline import FRNetPipeline, frustum_group
from pytest_autoware_deploy.models.frnet.synthetic import CLASSES, label_points, write_split
from pytest_autoware_deploy.models.frnet.train import CHECKPOINT, DEMO_HOST, DEMO_MODEL, evaluate
from pytest_autoware_deploy.models.lidar_common.synthetic import LIDAR_HEIGHT, random_scene, render
from pytest_autoware_deploy.models.mm_registry import MMConfigError, build

INPUTS = ["points", "coors", "voxel_coors", "inverse_map"]
AXES = {"points": {0: "num_points"}, "coors": {0: "num_points"}, "voxel_coors": {0: "num_unique_coors"},
        "inverse_map": {0: "num_points"}}

# AWML projects/FRNet/configs/model/frnet.py with the T4 OT128 settings (frnet_1xb8_t4dataset-ot128-seg.py)
AWML_MODEL = dict(
    type="FRNet", data_preprocessor=dict(type="FrustumRangePreprocessor", H=128, W=1024, fov_up=15.0, fov_down=-25.0,
                                         ignore_index=26),
    voxel_encoder=dict(type="FrustumFeatureEncoder", in_channels=4, feat_channels=(64, 128, 256, 256),
                       with_distance=True, with_cluster_center=True,
                       norm_cfg=dict(type="SyncBN", eps=1e-3, momentum=0.01), with_pre_norm=True, feat_compression=16),
    backbone=dict(type="FRNetBackbone", in_channels=16, point_in_channels=384, output_shape=(128, 1024), depth=34,
                  stem_channels=128, num_stages=4, out_channels=(128, 128, 128, 128), strides=(1, 2, 2, 2),
                  dilations=(1, 1, 1, 1), fuse_channels=(256, 128), norm_cfg=dict(type="SyncBN", eps=1e-3, momentum=0.01),
                  point_norm_cfg=dict(type="SyncBN", eps=1e-3, momentum=0.01), act_cfg=dict(type="HSwish", inplace=True)),
    decode_head=dict(type="FRHead", in_channels=128, middle_channels=(128, 256, 128, 64),
                     norm_cfg=dict(type="SyncBN", eps=1e-3, momentum=0.01), channels=64, dropout_ratio=0,
                     loss_ce=dict(type="mmdet.CrossEntropyLoss"), conv_seg_kernel_size=1, num_classes=27,
                     ignore_index=26),
    auxiliary_head=[dict(type="FrustumHead", channels=128, num_classes=27)])


def _scene(seed, max_range=30.0):
    rng = np.random.default_rng(seed)
    objects = random_scene(rng, max_range)
    points, _ = render(objects, rng, max_range)
    return points, objects


def test_awml_config_builds_with_mmdet3d_names():
    keys = set(build(AWML_MODEL).state_dict())
    for k in ("voxel_encoder.pre_norm.running_mean", "voxel_encoder.ffe_layers.0.0.weight",
              "voxel_encoder.ffe_layers.0.1.weight", "voxel_encoder.ffe_layers.3.bias",
              "voxel_encoder.compression_layers.0.weight", "backbone.stem.0.weight", "backbone.stem.7.running_var",
              "backbone.point_stem.0.weight", "backbone.fusion_stem.1.weight", "backbone.layer1.0.conv1.weight",
              "backbone.layer2.0.downsample.0.weight", "backbone.layer4.2.bn2.bias", "backbone.layer3.5.conv2.weight",
              "backbone.point_fusion_layers.3.0.weight", "backbone.pixel_fusion_layers.0.0.weight",
              "backbone.attention_layers.2.4.weight", "backbone.fuse_layer1.conv.weight", "backbone.fuse_layer2.bn.bias",
              "backbone.point_fuse_layer2.0.weight", "decode_head.mlps.3.1.weight", "decode_head.conv_seg.weight"):
        assert k in keys, k
    assert "backbone.layer4.3.conv1.weight" not in keys  # ResNet-34: 3, 4, 6, 3 blocks


def test_awml_config_errors_name_the_key():
    bad = {**AWML_MODEL, "backbone": {**AWML_MODEL["backbone"], "point_in_channels": 256}}
    with pytest.raises(MMConfigError, match="point_in_channels must be stem_channels"):
        build(bad)
    bad = {**AWML_MODEL, "backbone": {**AWML_MODEL["backbone"], "depth": 50}}
    with pytest.raises(MMConfigError, match=r"model.backbone.*depth=50"):
        build(bad)


def _awml_frustum_group(points, H, W, fov_up, fov_down):
    """AWML's FrustumRangePreprocessor.frustum_region_group (one sweep), in torch as AWML runs it."""
    import torch

    res = torch.from_numpy(points)
    up, down = fov_up / 180 * np.pi, fov_down / 180 * np.pi
    fov = abs(down) + abs(up)
    depth = torch.linalg.norm(res[:, :3], 2, dim=1)
    yaw = -torch.atan2(res[:, 1], res[:, 0])
    pitch = torch.arcsin(res[:, 2] / depth)
    cx = torch.clamp(torch.floor(0.5 * (yaw / np.pi + 1.0) * W), min=0, max=W - 1).type(torch.int64)
    cy = torch.clamp(torch.floor((1.0 - (pitch + abs(down)) / fov) * H), min=0, max=H - 1).type(torch.int64)
    coors = torch.nn.functional.pad(torch.stack([cy, cx], dim=1), (1, 0), mode="constant", value=0)
    voxel_coors, inverse = torch.unique(coors, return_inverse=True, dim=0)
    return coors.numpy(), voxel_coors.numpy(), inverse.numpy()


@settings(max_examples=25, deadline=None)
@given(arrays(np.float32, st.tuples(st.integers(1, 300), st.just(4)),
              elements=st.floats(-60, 60, width=32, allow_nan=False)),
       st.sampled_from([(32, 128, 2.42, -24.42), (128, 1024, 15.0, -25.0), (64, 512, 3.0, -25.0)]))
def test_host_grouping_equals_awmls_torch_code(points, grid):
    points = points[np.linalg.norm(points[:, :3], axis=1) > 0.1]  # AWML divides by the range
    if not len(points):
        return
    got = frustum_group(points, *grid)
    want = _awml_frustum_group(points, *grid)
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    coors, voxel_coors, inverse = got
    np.testing.assert_array_equal(voxel_coors[inverse], coors)  # the inverse map rebuilds every point's frustum


def test_real_sweep_grouping_equals_awml_and_fills_the_rings():
    points, _ = _scene(0)
    got = frustum_group(points, **{k: DEMO_HOST[k] for k in ("H", "W", "fov_up", "fov_down")})
    want = _awml_frustum_group(points, *(DEMO_HOST[k] for k in ("H", "W", "fov_up", "fov_down")))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)
    rows = np.bincount(got[0][:, 1], minlength=32)
    assert (rows[5:] == 900 // 1 * 1).sum() >= 20  # one ring per row: every downward ring's 900 azimuths


def test_graph_exports_scatter_max_and_matches_onnxruntime_for_both_output_names():
    import onnx
    import onnxruntime as ort
    import torch

    host = FRNetPipeline(**DEMO_HOST)
    feeds = [host.preprocess(_scene(s)[0]) for s in (1, 2)]
    assert len(feeds[0]["points"]) != len(feeds[1]["points"])  # the second sweep checks the dynamic axes
    for output in ("pred_probs", "seg_logit"):
        model = build_model(**{**DEMO_MODEL, "output": output})
        buf = io.BytesIO()
        torch.onnx.export(model.end2end, tuple(torch.from_numpy(v) for v in feeds[0].values()), buf, opset_version=17,
                          dynamo=False, input_names=INPUTS, output_names=[output],
                          dynamic_axes={**AXES, output: {0: "num_points"}})
        graph = onnx.load_from_string(buf.getvalue()).graph
        reductions = [a.s.decode() for n in graph.node if n.op_type == "ScatterElements" for a in n.attribute
                      if a.name == "reduction"]
        assert reductions.count("max") == 6  # encoder + point_stem + 4 stages: scatter_reduce(amax)
        assert [o.name for o in graph.output] == [output]
        sess = ort.InferenceSession(buf.getvalue(), providers=["CPUExecutionProvider"])
        for feed in feeds:
            with torch.no_grad():
                ref = model(*[torch.from_numpy(v) for v in feed.values()]).numpy()
            got = sess.run(None, feed)[0]
            assert got.shape == (len(feed["points"]), 4)
            assert np.abs(got - ref).max() < 1e-4
        if output == "pred_probs":
            np.testing.assert_allclose(got.sum(1), 1.0, atol=1e-5)


@pytest.fixture(scope="module")
def both_forms():
    """AWML's scatter_reduce graph and the sorted_scan one (same weights: the shipped checkpoint), exported."""
    import torch

    host = FRNetPipeline(**DEMO_HOST)
    feed = host.preprocess(_scene(1)[0])
    out = {}
    for form in ("scatter_reduce", "sorted_scan"):
        model = build_model(**{**DEMO_MODEL, "segment_max": form})
        model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in torch.load(CHECKPOINT).items()})
        buf = io.BytesIO()
        example = host.sort_by_frustum(feed)[0] if form == "sorted_scan" else feed
        torch.onnx.export(model.end2end, tuple(torch.from_numpy(v) for v in example.values()), buf, opset_version=17,
                          dynamo=False, input_names=INPUTS, output_names=["pred_probs"],
                          dynamic_axes={**AXES, "pred_probs": {0: "num_points"}})
        out[form] = (model, buf.getvalue())
    return out


def test_sorted_scan_form_gives_awmls_scores_through_onnxruntime(both_forms):
    """The RTX-parsable form (points sorted by frustum on the host, segmented scans, no scatter reduction): the
    same per-point scores as AWML's ScatterElements(max/add) graph, in ONNX Runtime, on two sweeps of other sizes."""
    import onnx
    import onnxruntime as ort

    graph = onnx.load_from_string(both_forms["sorted_scan"][1]).graph
    assert not [n for n in graph.node if n.op_type == "ScatterElements"]
    assert all(a.s.decode() == "none" for n in graph.node if n.op_type == "ScatterND" for a in n.attribute
               if a.name == "reduction")
    sessions = {f: ort.InferenceSession(g, providers=["CPUExecutionProvider"]) for f, (_, g) in both_forms.items()}
    for scene in (2, 3):
        points = _scene(scene)[0]
        calls = {f: lambda _name, feed, f=f: {"pred_probs": sessions[f].run(None, feed)[0]} for f in sessions}
        awml = FRNetPipeline(**DEMO_HOST).run({"points": points}, calls["scatter_reduce"])
        scan = FRNetPipeline(**DEMO_HOST, sort_points=True, max_points_per_frustum=256).run({"points": points},
                                                                                          calls["sorted_scan"])
        np.testing.assert_array_equal(scan["labels"], awml["labels"])
        np.testing.assert_allclose(scan["pred_probs"], awml["pred_probs"], atol=1e-5)


def test_segment_max_of_the_sorted_form_is_exact_for_any_segments():
    import torch

    from pytest_autoware_deploy.models.frnet.model import SegmentOps

    gen = torch.Generator().manual_seed(0)
    for _ in range(20):
        keys = torch.sort(torch.randint(0, 40, (300,), generator=gen)).values
        keys = torch.unique(keys, return_inverse=True)[1]  # every key present, as the host's unique gives them
        size = int(keys.max()) + 1
        values = torch.randn(300, 5, generator=gen)
        want = SegmentOps("scatter_reduce").max(values, keys, size)
        torch.testing.assert_close(SegmentOps("sorted_scan", 5).max(values, keys, size), want, rtol=0, atol=0)
        torch.testing.assert_close(SegmentOps("sorted_scan", 5).sum(values, keys, size),
                                   SegmentOps("scatter_reduce").sum(values, keys, size))


def test_host_refuses_a_frustum_the_scan_cannot_cover():
    points = _scene(1)[0]
    with pytest.raises(ValueError, match=r"a frustum holds \d+ points, more than max_points_per_frustum=1 .*scan_steps"):
        FRNetPipeline(**DEMO_HOST, max_points_per_frustum=1).preprocess(points)


def test_inverse_map_past_voxel_coors_is_clamped_not_out_of_bounds():
    import torch

    model = build_model(**DEMO_MODEL)
    feed = FRNetPipeline(**DEMO_HOST).preprocess(_scene(3)[0])
    args = [torch.from_numpy(v) for v in feed.values()]
    with torch.no_grad():
        full = model(*args)
        short = model(args[0], args[1], args[2][:-5], args[3])  # 5 frustums missing: a broken host, no crash
    assert short.shape == full.shape and torch.isfinite(short).all()


def test_synthetic_labels_follow_what_the_ray_hit(tmp_path):
    points, objects = _scene(4)
    labels = label_points(points, objects)
    ground = np.abs(points[:, 2] + LIDAR_HEIGHT) < 0.05
    assert (labels[ground & (labels == 0)]).size > 0.8 * ground.sum()
    assert set(np.unique(labels)) <= set(range(len(CLASSES)))
    for o in objects:
        x, y = o["box"][:2]
        near = np.hypot(points[:, 0] - x, points[:, 1] - y) < 0.2
        above = near & (points[:, 2] > -LIDAR_HEIGHT + 0.2)
        if above.any():
            assert (labels[above] == o["label"] + 1).all()
    a = write_split(tmp_path / "a", "val", 2, 12)
    b = write_split(tmp_path / "b", "val", 2, 12)
    for rel in ("lidar/val_00001.pcd.bin", "lidarseg/val_00001.bin"):
        assert (a.parent / rel).read_bytes() == (b.parent / rel).read_bytes()
    s = LidarSegSamples(a)[1]
    assert s["inputs"]["points"].shape[0] == s["target"]["labels"].shape[0] > 10000


def test_mask_of_the_wrong_length_is_one_error_naming_both_files(tmp_path):
    info = write_split(tmp_path, "val", 1, 12)
    mask = tmp_path / "lidarseg" / "val_00000.bin"
    mask.write_bytes(mask.read_bytes()[:-3])
    with pytest.raises(InfoFileError, match=r"val_00000.bin has \d+ labels, .*val_00000.pcd.bin has \d+ points"):
        LidarSegSamples(info)[0]


def test_pipeline_returns_scores_and_argmax_labels():
    import torch

    model = build_model(**DEMO_MODEL)
    host = FRNetPipeline(**DEMO_HOST)
    points = _scene(5)[0]

    def call(name, feed):
        assert name == "frnet" and list(feed) == INPUTS
        with torch.no_grad():
            return {"pred_probs": model(*[torch.from_numpy(v) for v in feed.values()]).numpy()}

    out = host.run({"points": points}, call)
    assert out["pred_probs"].shape == (len(points), 4)
    np.testing.assert_array_equal(out["labels"], out["pred_probs"].argmax(1))
    with pytest.raises(ValueError, match=r"points must be \(N, >3\), got \(7, 3\)"):
        host.run({"points": points[:7, :3]}, call)


@pytest.mark.skipif(not CHECKPOINT.is_file(), reason=f"shipped checkpoint {CHECKPOINT.name} not trained yet "
                    "(python -m pytest_autoware_deploy.models.frnet.train)")
def test_shipped_checkpoint_segments_fresh_scenes(tmp_path):
    from pytest_autoware_deploy.export.pytorch_model import load_checkpoint

    info = write_split(tmp_path, "val", 3, 99)  # scenes the checkpoint never saw
    model = build_model(**DEMO_MODEL)
    load_checkpoint(model, CHECKPOINT)
    res = evaluate(model, FRNetPipeline(**DEMO_HOST), info)
    assert res["IoU_drivable_surface"] > 0.9 and res["IoU_car"] > 0.5
