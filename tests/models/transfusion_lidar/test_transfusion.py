"""TransFusion-L: mmdet3d parameter names, the end2end graph equal in ONNX Runtime, decoding, the shipped
checkpoint detects."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pytest_autoware_deploy.models.lidar_common.synthetic import CLASSES, random_scene, render, write_split
from pytest_autoware_deploy.models.lidar_common.torch_stage import evaluate_pipeline
from pytest_autoware_deploy.models.transfusion_lidar.model import OUTPUT_NAMES, build_model
from pytest_autoware_deploy.models.transfusion_lidar.pipeline import TransFusionPipeline, decode_transfusion
from pytest_autoware_deploy.models.transfusion_lidar.train import DEMO_HOST, DEMO_MODEL, greedy_assign

from ..lidar_common.stage_export import export_and_run

CKPT = (Path(__file__).resolve().parents[3]
        / "pytest_autoware_deploy/models/transfusion_lidar/checkpoints/transfusion_l_pillar032_demo.pth")


def test_state_dict_keeps_mmdet3d_names():
    keys = set(build_model(num_proposals=10).state_dict())
    for k in ("pts_voxel_encoder.pfn_layers.0.linear.weight", "pts_bbox_head.shared_conv.weight",
              "pts_bbox_head.heatmap_head.0.conv.weight", "pts_bbox_head.heatmap_head.1.bias",
              "pts_bbox_head.class_encoding.weight", "pts_bbox_head.decoder.0.self_attn.attn.in_proj_weight",
              "pts_bbox_head.decoder.0.cross_attn.attn.out_proj.bias", "pts_bbox_head.decoder.0.ffn.layers.0.0.weight",
              "pts_bbox_head.decoder.0.ffn.layers.1.weight", "pts_bbox_head.decoder.0.norms.2.weight",
              "pts_bbox_head.decoder.0.self_posembed.position_embedding_head.3.weight",
              "pts_bbox_head.prediction_heads.0.center.0.conv.weight", "pts_bbox_head.prediction_heads.0.heatmap.1.bias"):
        assert k in keys
    assert not any(k.startswith("end2end") or "bev_pos" in k for k in keys)


def _feed(seed):
    rng = np.random.default_rng(seed)
    return TransFusionPipeline(**DEMO_HOST).preprocess(render(random_scene(rng, 30.0), rng, 30.0)[0])


def test_end2end_graph_matches_onnxruntime_at_two_voxel_counts():
    """With the trained weights: random ones give a flat heatmap whose top-K is decided by 1e-7 ties, so
    the two runtimes pick different queries (a real property of the graph, not an export error)."""
    from pytest_autoware_deploy.export.pytorch_model import load_checkpoint

    model = build_model(**DEMO_MODEL)
    load_checkpoint(model, CKPT)
    a, b = _feed(0), _feed(1)
    assert len(a["voxels"]) != len(b["voxels"])
    errors = export_and_run(model.end2end, a, OUTPUT_NAMES, {k: {0: "voxels_num"} for k in a}, [b])
    assert max(max(e.values()) for e in errors) < 1e-3, errors


def test_decoding_turns_cells_into_metres():
    cls = np.full((1, 3, 4), 0.01, np.float32)
    cls[0, 1, 2] = 0.9
    bbox = np.zeros((1, 8, 4), np.float32)
    bbox[0, :, 2] = [10.0, 20.0, -1.0, np.log(4.0), np.log(2.0), np.log(1.6), 1.0, -1.0]
    rot = np.tile(np.array([[0.0], [1.0]], np.float32), (1, 1, 4))
    out = decode_transfusion({"cls_score0": cls, "bbox_pred0": bbox, "dir_cls_pred0": rot}, [0.32, 0.32, 8],
                             [-32, -32, -3, 32, 32, 5], 2, score_threshold=0.1)
    assert out["labels"].tolist() == [1] and np.isclose(out["scores"][0], 0.9)
    np.testing.assert_allclose(out["boxes_3d"][0], [10 * 0.64 - 32, 20 * 0.64 - 32, -1.8, 4, 2, 1.6, 0, 1, -1],
                               atol=1e-5)


def test_greedy_assignment_gives_each_target_its_cheapest_free_query():
    cost = np.array([[0.1, 5.0], [0.2, 0.3], [9.0, 9.0]])
    assert sorted(greedy_assign(cost)) == [(0, 0), (1, 1)]


def test_shipped_checkpoint_detects_cars_in_fresh_scenes(tmp_path):
    from pytest_autoware_deploy.export.pytorch_model import load_checkpoint

    info = write_split(tmp_path, "val", 6, 99)
    model = build_model(**DEMO_MODEL)
    load_checkpoint(model, CKPT)
    res = evaluate_pipeline(model, TransFusionPipeline(**DEMO_HOST), {"end2end": list(OUTPUT_NAMES)}, info, CLASSES)
    assert res["AP_car"] >= 0.5


def test_torch_host_path_gives_the_numpy_pipelines_voxels_and_boxes():
    """host_device: PyTorch voxelization (here on the CPU) feeds the graph the numpy path's arrays, so the
    decoded boxes are identical; a tensor output of the graph decodes as its numpy copy does."""
    import torch

    from pytest_autoware_deploy.export.pytorch_model import load_checkpoint
    from pytest_autoware_deploy.models.lidar_common.torch_stage import torch_call_stage

    model = build_model(**DEMO_MODEL)
    load_checkpoint(model, CKPT)
    call = torch_call_stage(model.eval(), {"end2end": OUTPUT_NAMES})
    feeds = []

    def record(name, feed):
        assert all(isinstance(v, np.ndarray) for v in feed.values())
        feeds.append(feed)
        return call(name, feed)

    rng = np.random.default_rng(8)
    points = render(random_scene(rng, 30.0), rng, 30.0)[0]
    with torch.inference_mode():
        ref = TransFusionPipeline(**DEMO_HOST, host_device="numpy").run({"points": points}, record)
        got = TransFusionPipeline(**DEMO_HOST, host_device="cpu").run({"points": points}, record)
        outs = call("end2end", feeds[0])
    for k in feeds[0]:
        np.testing.assert_array_equal(feeds[0][k], feeds[1][k], err_msg=k)
    as_tensors = decode_transfusion({k: torch.from_numpy(v) for k, v in outs.items()},
                                    **TransFusionPipeline(**DEMO_HOST).decode_kwargs)
    assert len(ref["scores"]) > 3
    for k in ("boxes_3d", "scores", "labels"):
        np.testing.assert_array_equal(ref[k], got[k], err_msg=k)
        np.testing.assert_array_equal(ref[k], as_tensors[k], err_msg=k)
