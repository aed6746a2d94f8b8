"""CenterPoint: mmdet3d parameter names, both ONNX stages equal to PyTorch, the shipped checkpoint detects."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pytest_autoware_deploy.models.centerpoint.model import build_model
from pytest_autoware_deploy.models.centerpoint.pipeline import CenterPointPipeline, decode_centerpoint
from pytest_autoware_deploy.models.centerpoint.train import DEMO_HOST, DEMO_MODEL, STAGE_OUTPUTS
from pytest_autoware_deploy.models.lidar_common.synthetic import CLASSES, random_scene, render, write_split
from pytest_autoware_deploy.models.lidar_common.torch_stage import evaluate_pipeline, torch_call_stage

from ..lidar_common.stage_export import export_and_run

CKPT = Path(__file__).resolve().parents[3] / "pytest_autoware_deploy/models/centerpoint/checkpoints/centerpoint_pillar032_demo.pth"


def test_state_dict_keeps_mmdet3d_names():
    keys = set(build_model().state_dict())  # AWML's 121 m base config
    for k in ("pts_voxel_encoder.pfn_layers.1.linear.weight", "pts_backbone.blocks.2.16.running_var",
              "pts_neck.deblocks.0.0.weight", "pts_bbox_head.shared_conv.conv.weight",
              "pts_bbox_head.shared_conv.bn.weight", "pts_bbox_head.task_heads.0.heatmap.0.conv.weight",
              "pts_bbox_head.task_heads.0.heatmap.1.bias", "pts_bbox_head.task_heads.0.vel.1.weight"):
        assert k in keys
    assert not any(k.startswith("pts_backbone_neck_head") for k in keys)


def _scene_points(seed):
    rng = np.random.default_rng(seed)
    return render(random_scene(rng, 30.0), rng, 30.0)[0]


def test_both_stages_export_and_match_onnxruntime():
    model = build_model(**DEMO_MODEL)
    host = CenterPointPipeline(**DEMO_HOST)
    feats = [host.preprocess(_scene_points(s)) for s in (0, 1)]
    assert len(feats[0][0]) != len(feats[1][0])  # a second pillar count checks the dynamic axis
    enc_err = export_and_run(model.pts_voxel_encoder, {"input_features": feats[0][0]}, ["pillar_features"],
                             {"input_features": {0: "num_voxels"}, "pillar_features": {0: "num_voxels"}},
                             [{"input_features": feats[1][0]}])
    assert max(e["pillar_features"] for e in enc_err) < 1e-4
    import torch

    with torch.no_grad():
        pillars = model.pts_voxel_encoder(torch.from_numpy(feats[0][0])).numpy()
    from pytest_autoware_deploy.models.lidar_common.voxelize import scatter

    canvas = scatter(pillars, feats[0][1], host.nx, host.ny)
    head_err = export_and_run(model.pts_backbone_neck_head, {"spatial_features": canvas},
                              STAGE_OUTPUTS["pts_backbone_neck_head"], None)
    assert max(head_err[0].values()) < 1e-4
    assert model.pts_backbone.training is False  # export's mode restore left the shared parts in eval


def test_decoding_places_a_peak_at_its_metres():
    h = w = 100
    heads = {k: np.zeros((1, c, h, w), np.float32) for k, c in
             (("heatmap", 3), ("reg", 2), ("height", 1), ("dim", 3), ("rot", 2), ("vel", 2))}
    heads["heatmap"][:] = -9
    heads["heatmap"][0, 2, 60, 30] = 3.0
    heads["reg"][0, :, 60, 30] = [0.25, 0.5]
    heads["height"][0, 0, 60, 30] = -1.0
    heads["dim"][0, :, 60, 30] = np.log([4.0, 2.0, 1.5])
    heads["rot"][0, :, 60, 30] = [1.0, 0.0]
    out = decode_centerpoint(heads, voxel_size=[0.32, 0.32, 8], point_cloud_range=[-32, -32, -3, 32, 32, 5],
                             out_size_factor=2)
    assert out["labels"].tolist() == [2]
    np.testing.assert_allclose(out["boxes_3d"][0, :7], [30.25 * 0.64 - 32, 60.5 * 0.64 - 32, -1.75, 4, 2, 1.5,
                                                        np.pi / 2], atol=1e-5)


def test_shipped_checkpoint_detects_cars_in_fresh_scenes(tmp_path):
    import torch

    from pytest_autoware_deploy.export.pytorch_model import load_checkpoint

    info = write_split(tmp_path, "val", 6, 99)  # scenes the checkpoint never saw
    model = build_model(**DEMO_MODEL)
    load_checkpoint(model, CKPT)
    res = evaluate_pipeline(model, CenterPointPipeline(**DEMO_HOST), STAGE_OUTPUTS, info, CLASSES)
    assert res["AP_car"] >= 0.5 and res["per_class_detail"]["car"]["ATE"] < 0.5
    call = torch_call_stage(model, STAGE_OUTPUTS)
    with torch.inference_mode():
        empty = CenterPointPipeline(**DEMO_HOST).run({"points": np.zeros((0, 5), np.float32)}, call)
    assert empty["boxes_3d"].shape == (0, 9)


def test_points_with_too_few_columns_are_refused():
    with pytest.raises(ValueError, match=r"points must be \(N, >3\), got \(10, 3\)"):
        CenterPointPipeline(**DEMO_HOST).preprocess(np.zeros((10, 3), np.float32))


def _recording(call, log, kind=np.ndarray):
    """``call`` logging host copies of each stage feed, whose values must all be ``kind`` (numpy arrays from
    the numpy host; torch tensors from the torch host, which hands its stages tensors without a copy)."""
    from pytest_autoware_deploy.backends.inputs import as_numpy

    def record(name, feed):
        assert all(isinstance(v, kind) for v in feed.values()), {k: type(v) for k, v in feed.items()}
        log.append({k: as_numpy(v).copy() for k, v in feed.items()})
        return call(name, feed)
    return record


def test_torch_host_path_gives_the_numpy_pipelines_stage_inputs_and_boxes():
    """host_device: the PyTorch path (here on the CPU) feeds both stages the same arrays and decodes the
    same boxes, bit for bit, as the numpy reference, with the shipped checkpoint on fresh scenes."""
    import torch

    from pytest_autoware_deploy.export.pytorch_model import load_checkpoint

    model = build_model(**DEMO_MODEL)
    load_checkpoint(model, CKPT)
    call = torch_call_stage(model.eval(), STAGE_OUTPUTS)
    ref_host = CenterPointPipeline(**DEMO_HOST, host_device="numpy")
    torch_host = CenterPointPipeline(**DEMO_HOST, host_device="cpu")
    assert ref_host.device is None and torch_host.device == torch.device("cpu")
    detected = 0
    for seed in (3, 4, 5):
        points = _scene_points(seed)
        feeds_ref, feeds_torch = [], []
        with torch.inference_mode():
            ref = ref_host.run({"points": points}, _recording(call, feeds_ref))
            got = torch_host.run({"points": points}, _recording(call, feeds_torch, torch.Tensor))
        for a, b in zip(feeds_ref, feeds_torch, strict=True):
            for k in a:
                np.testing.assert_array_equal(a[k], b[k], err_msg=k)
        for k in ("boxes_3d", "scores", "labels"):
            np.testing.assert_array_equal(ref[k], got[k], err_msg=k)
        detected += len(ref["scores"])
    assert detected > 5
