"""YOLOX model (mmdet names, decoded output), host post-processing and the COCO loader."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from pytest_autoware_deploy.models.yolox.dataset import CocoDetectionSamples
from pytest_autoware_deploy.models.yolox.model import build_model
from pytest_autoware_deploy.models.yolox.postprocess import decode_detections, nms, postprocess
from pytest_autoware_deploy.models.yolox.synthetic import write_split


def test_state_dict_uses_mmdet_names_and_yolox_s_sizes():
    sd = build_model(num_classes=3, deepen_factor=0.33, widen_factor=0.5).state_dict()
    # names as tools/detection2d/deploy_yolox.py maps them from the official YOLOX checkpoint
    for key, shape in {"backbone.stem.conv.conv.weight": (32, 12, 3, 3),
                       "backbone.stage1.1.main_conv.conv.weight": (32, 64, 1, 1),
                       "backbone.stage4.1.conv2.conv.weight": (512, 1024, 1, 1),
                       "backbone.stage4.2.blocks.0.conv2.bn.running_var": (256,),
                       "neck.reduce_layers.0.conv.weight": (256, 512, 1, 1),
                       "neck.top_down_blocks.1.final_conv.conv.weight": (128, 128, 1, 1),
                       "neck.downsamples.1.conv.weight": (256, 256, 3, 3),
                       "neck.out_convs.2.conv.weight": (128, 512, 1, 1),
                       "bbox_head.multi_level_cls_convs.0.1.conv.weight": (128, 128, 3, 3),
                       "bbox_head.multi_level_conv_cls.2.weight": (3, 128, 1, 1),
                       "bbox_head.multi_level_conv_obj.0.bias": (1,)}.items():
        assert tuple(sd[key].shape) == shape, key
    n = sum(v.numel() for k, v in sd.items() if "running" not in k and "num_batches" not in k)
    assert 8.9e6 < n < 9.0e6  # YOLOX-S: 8.94 M parameters with 80 classes -> 3 classes


def test_output_is_decoded_per_anchor_in_input_pixels():
    torch.manual_seed(0)
    model = build_model(num_classes=2, widen_factor=0.125).eval()
    with torch.no_grad():
        x = torch.rand(2, 3, 64, 96) * 255
        out = model(x)
        raw = model.forward_raw(x)
    assert out.shape == (2, 8 * 12 + 4 * 6 + 2 * 3, 7)
    cls, reg, obj = raw[1]  # stride 16, 4 x 6 grid: anchor (row 2, col 5) is row 96 + 2 * 6 + 5 of the output
    row = out[0, 96 + 17]
    assert torch.allclose(row[0], (reg[0, 0, 2, 5] + 5) * 16) and torch.allclose(row[1], (reg[0, 1, 2, 5] + 2) * 16)
    assert torch.allclose(row[2], torch.exp(reg[0, 2, 2, 5]) * 16)
    assert torch.allclose(row[4], obj[0, 0, 2, 5].sigmoid()) and torch.allclose(row[5:], cls[0, :, 2, 5].sigmoid())


def test_postprocess_thresholds_and_nms_per_class():
    pred = np.zeros((4, 7), np.float32)
    pred[:, :4] = [[20, 20, 10, 10], [21, 20, 10, 10], [21, 20, 10, 10], [80, 80, 10, 10]]
    pred[:, 4] = 1
    pred[:, 5:] = [[0.9, 0], [0.8, 0], [0, 0.7], [0.2, 0]]
    d = postprocess(pred, score_thr=0.3, nms_iou=0.65)
    # the 0.8 box overlaps the 0.9 one of its class: suppressed; the class-1 twin stays; 0.2 is under threshold
    assert d.scores.tolist() == pytest.approx([0.9, 0.7]) and d.labels.tolist() == [0, 1]
    assert d.boxes[0].tolist() == [15, 15, 25, 25]
    assert nms(np.array([[0, 0, 1, 1.0]]), np.array([0.5]), 0.5).tolist() == [0]
    with pytest.raises(KeyError, match="no output 'dets'"):
        decode_detections({"output": pred[None]}, output_name="dets")


def test_loader_letterboxes_and_maps_classes_by_name(tmp_path):
    ann = write_split(tmp_path, "road", "val", count=3, size=64)
    full = CocoDetectionSamples(ann, input_size=128)
    s = full[0]
    assert s["inputs"]["input"].shape == (1, 3, 128, 128) and s["target"]["scale"] == 2.0
    raw = json.loads(ann.read_text())
    first = [a for a in raw["annotations"] if a["image_id"] == 1][0]
    assert s["target"]["boxes"][0, 0] == pytest.approx(2 * first["bbox"][0], abs=1e-3)
    coco80 = CocoDetectionSamples(ann, input_size=64, classes=["person", "bicycle", "car", "stop sign"])
    names = {c["id"]: c["name"] for c in raw["categories"]}
    assert coco80[0]["target"]["labels"][0] == ["person", "bicycle", "car", "stop sign"].index(
        names[first["category_id"]])


def test_synthetic_data_is_deterministic(tmp_path):
    a = write_split(tmp_path / "a", "traffic_light", "val", count=4, size=64)
    b = write_split(tmp_path / "b", "traffic_light", "val", count=4, size=64)
    assert a.read_text() == b.read_text()
    assert (tmp_path / "a/images/val/val_00003.png").read_bytes() == (tmp_path / "b/images/val/val_00003.png").read_bytes()
    assert {c["name"] for c in json.loads(a.read_text())["categories"]} == {
        "BACKGROUND", "traffic_light", "pedestrian_traffic_light"}


def test_bad_coco_file_is_one_clear_error(tmp_path):
    bad = tmp_path / "a.json"
    bad.write_text(json.dumps({"images": [], "categories": []}))
    with pytest.raises(ValueError, match="need a 'annotations' list"):
        CocoDetectionSamples(bad)
