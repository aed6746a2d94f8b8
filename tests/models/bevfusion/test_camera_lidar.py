"""BEVFusion-CL's main body as Autoware loads it: AWML's names and custom ops (sparse convolution and
``autoware::QuickCumsumCuda`` with its attributes), the host-precomputed geometry as inputs, and ONNX Runtime
(reference kernels) matching PyTorch on a synthetic camera+lidar frame at two voxel counts."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from pytest_autoware_deploy.custom_ops import custom_ops, session_source
from pytest_autoware_deploy.models.bevfusion.model import OUTPUT_NAMES
from pytest_autoware_deploy.models.bevfusion.model_camera import CAMERA_INPUT_NAMES, build_model
from pytest_autoware_deploy.models.bevfusion_camera_lidar.pipeline import BEVFusionCameraLidarPipeline
from pytest_autoware_deploy.models.bevfusion_camera_lidar.synthetic import SEEDS, lidar_calibration
from pytest_autoware_deploy.models.bevfusion_camera_lidar.train import CKPT, DEMO_HOST, DEMO_MODEL
from pytest_autoware_deploy.models.lidar_common.synthetic import random_scene, render
from pytest_autoware_deploy.models.streampetr.synthetic import render_camera

DYNAMIC = {**{k: {0: "voxels_num"} for k in CAMERA_INPUT_NAMES[:3]}, "lidar2image": {0: "num_imgs"},
           "img_aug_matrix": {0: "num_imgs"}, "geom_feats": {0: "num_kept"}, "kept": {0: "num_frustum"},
           "ranks": {0: "num_kept"}, "indices": {0: "num_kept"}, "image_feats": {0: "num_imgs"}}


@pytest.fixture(scope="module")
def model():
    m = build_model(**DEMO_MODEL)
    if CKPT.is_file():  # trained weights give real heatmap peaks; the graph checks hold for random ones too
        m.load_state_dict({k: v.float() for k, v in torch.load(CKPT, weights_only=True).items()})
    return m.eval()


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng([SEEDS["val"], 7])
    objects = random_scene(rng, 32.0)
    points, _ = render(objects, rng, 32.0)
    h, w = DEMO_MODEL["image_size"]
    calib = lidar_calibration(h, w)
    imgs = np.stack([render_camera([o["box"] for o in objects], [o["label"] for o in objects], k, l2c, h, w, rng)[0]
                     for k, l2c in calib]).transpose(0, 3, 1, 2)
    k4 = np.tile(np.eye(4, dtype=np.float32), (len(calib), 1, 1))
    k4[:, :3, :3] = [k for k, _ in calib]
    return dict(points=points, imgs=np.ascontiguousarray(imgs), cam2img=k4,
                lidar2cam=np.stack([l2c for _, l2c in calib]).astype(np.float32))


def _feed(model, host, frame, points):
    feed = host.preprocess(points)
    feed.update(host.geometry(frame["cam2img"], frame["lidar2cam"]))
    with torch.no_grad():
        feed["image_feats"] = model.image_backbone(torch.from_numpy(frame["imgs"])).numpy()
    return feed


@pytest.fixture(scope="module")
def exported(model, frame, tmp_path_factory):
    host = BEVFusionCameraLidarPipeline(**{**DEMO_HOST, "host_device": "numpy"})
    feed = _feed(model, host, frame, frame["points"])
    path = tmp_path_factory.mktemp("bevfusion_cl") / "main_body.onnx"
    with torch.no_grad():
        torch.onnx.export(model.main_body, tuple(torch.from_numpy(feed[k]) for k in CAMERA_INPUT_NAMES), str(path),
                          input_names=list(CAMERA_INPUT_NAMES), output_names=list(OUTPUT_NAMES), opset_version=17,
                          dynamic_axes=DYNAMIC, dynamo=False)
    return path, host


def test_state_dict_has_awml_names(model):
    keys = set(model.state_dict())
    for name in ("img_backbone.patch_embed.projection.weight", "img_neck.lateral_convs.0.conv.weight",
                 "view_transform.dtransform.net.0.weight", "view_transform.depthnet.net.6.weight",
                 "view_transform.downsample.net.3.weight", "fusion_layer.0.weight", "fusion_layer.1.running_var",
                 "pts_middle_encoder.conv_input.0.weight", "pts_backbone.blocks.0.0.weight",
                 "bbox_head.heatmap_head.0.conv.weight"):
        assert name in keys, name
    assert model.fusion_layer[0].in_channels == 16 + 128  # camera BEV then lidar BEV, as AWML's ConvFuser


def test_main_body_graph_carries_awml_custom_ops(exported):
    path, _ = exported
    g = onnx.load(str(path))
    assert custom_ops(g) == {"autoware": {"GetIndicePairsImplicitGemm", "ImplicitGemm", "QuickCumsumCuda"}}
    pools = [n for n in g.graph.node if n.op_type == "QuickCumsumCuda"]
    assert len(pools) == 1 and pools[0].domain == "autoware" and len(pools[0].input) == 4
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in pools[0].attribute}
    assert attrs == dict(batch_size=1, dimension=1, height=100, width=100)  # B, nz, nx, ny
    types = {i.name: i.type.tensor_type.elem_type for i in g.graph.input}
    assert list(types) == list(CAMERA_INPUT_NAMES)
    T = onnx.TensorProto
    assert [types[k] for k in ("geom_feats", "kept", "ranks", "indices")] == [T.INT32, T.BOOL, T.INT64, T.INT64]
    # geom_feats reaches the op as Autoware feeds it (int32, no conversion node in between)
    assert pools[0].input[1] == "geom_feats" or any(
        n.output[0] == pools[0].input[1] and n.op_type == "Cast" and n.input[0] == "geom_feats" for n in g.graph.node)


def test_main_body_in_onnxruntime_matches_pytorch(model, frame, exported):
    """At two voxel counts, and with a camera fewer (another calibration: other frustum and kept-point counts)."""
    import onnxruntime as ort

    path, host = exported
    opts = ort.SessionOptions()
    sess = ort.InferenceSession(session_source(path, opts), opts, providers=["CPUExecutionProvider"])
    near = frame["points"][np.abs(frame["points"][:, :2]).max(1) < 20]
    four = {k: v[:4] if k != "points" else v for k, v in frame.items()}
    for cams, points in ((frame, frame["points"]), (frame, near), (four, frame["points"])):
        feed = _feed(model, host, cams, points)
        with torch.no_grad():
            want = [t.numpy() for t in model.main_body(*[torch.from_numpy(feed[k]) for k in CAMERA_INPUT_NAMES])]
        got = sess.run(list(OUTPUT_NAMES), {k: feed[k] for k in CAMERA_INPUT_NAMES})
        assert got[0].shape == want[0].shape == (10, DEMO_MODEL["num_proposals"])
        # equal heatmap scores may leave TopK in another order: compare the proposals ordered by BEV position
        g, w = np.lexsort(got[0][1::-1].round(2)), np.lexsort(want[0][1::-1].round(2))
        np.testing.assert_array_equal(got[2][g], want[2][w])
        np.testing.assert_allclose(got[1][g], want[1][w], atol=1e-4)
        np.testing.assert_allclose(got[0][:, g], want[0][:, w], atol=1e-3)
        assert want[1].max() > 0.05  # real detections went through


def test_camera_branch_changes_the_detections(model, frame):
    """The fused map is not the lidar map alone: zeroed image features move the scores."""
    host = BEVFusionCameraLidarPipeline(**{**DEMO_HOST, "host_device": "numpy"})
    feed = _feed(model, host, frame, frame["points"])
    args = [torch.from_numpy(feed[k]) for k in CAMERA_INPUT_NAMES]
    with torch.no_grad():
        with_cam = model.main_body(*args)[1]
        blind = model.main_body(*args[:-1], torch.zeros_like(args[-1]))[1]
    assert (with_cam - blind).abs().max() > 1e-3


def test_training_gradients_reach_the_image_backbone_through_the_bev_pooling(frame):
    """Eager BEV pooling is differentiable (the custom op is only the export's node): the fused map's loss trains
    the Swin backbone, the depth net and the depth-image net."""
    m = build_model(**DEMO_MODEL).train()
    host = BEVFusionCameraLidarPipeline(**{**DEMO_HOST, "host_device": "numpy"})
    feed = host.preprocess(frame["points"])
    feed.update(host.geometry(frame["cam2img"], frame["lidar2cam"]))
    args = [torch.from_numpy(np.ascontiguousarray(feed[k])) for k in CAMERA_INPUT_NAMES[:-1]]
    bev = m.main_body.bev(*args, m.image_backbone(torch.from_numpy(frame["imgs"])))[0]
    bev.square().mean().backward()
    for p in (m.img_backbone.patch_embed.projection.weight, m.view_transform.depthnet.net[0].weight,
              m.view_transform.dtransform.net[0].weight, m.fusion_layer[0].weight):
        assert p.grad is not None and p.grad.abs().max() > 0


def test_full_size_spec_builds_and_its_six_camera_calibration_precomputes():
    """AWML's BEVFusion-CL sizes (bevfusion_camera_lidar_full.py): the camera and lidar BEV grids agree (180 x 180),
    ConvFuser [80, 256] -> 256, and T4's six-camera rig at 384x768 fills the 360 x 360 camera grid."""
    from pathlib import Path

    from mmengine.config import Config

    from pytest_autoware_deploy.models.bevfusion.camera_geometry import precompute, ranks_unique

    cfg = Config.fromfile(str(Path(__file__).parents[3] / "deploy_specs" / "bevfusion_camera_lidar_full.py"))
    m = build_model(**cfg.model.kwargs)
    vt = m.view_transform
    assert (vt.D, vt.nx, m.fusion_layer[0].in_channels) == (118, [360, 360, 1], 80 + 256)
    calib = lidar_calibration(384, 768, cameras=6)
    k4 = np.tile(np.eye(4), (6, 1, 1))
    k4[:, :3, :3] = [k for k, _ in calib]
    geo = precompute([l2c for _, l2c in calib], k4, np.tile(np.eye(4), (6, 1, 1)), **m.geometry_kwargs())
    assert geo["kept"].shape == (6 * 118 * 48 * 96,) and 0.3 < geo["kept"].mean() < 1.0
    cells = np.unique(geo["geom_feats"][:, 0].astype(np.int64) * 360 + geo["geom_feats"][:, 1])
    assert len(cells) > 0.2 * 360 * 360  # the six cameras see all around
    assert not ranks_unique(geo["geom_feats"], geo["ranks"])  # AWML's ranks collide on a grid wider than fW


def test_mismatched_camera_and_lidar_grids_are_one_error():
    with pytest.raises(ValueError, match=r"camera BEV grid \[25, 25\].*must equal the lidar BEV grid \[50, 50\]"):
        build_model(**{**DEMO_MODEL, "vtransform_downsample": 1, "xbound": (-32.0, 32.0, 2.56),
                       "ybound": (-32.0, 32.0, 2.56)})
