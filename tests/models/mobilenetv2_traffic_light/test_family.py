"""MobileNetv2 traffic-light classifier: mmpretrain names, AWML's crop pipeline, the bundled spec end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_autoware_deploy.models.mobilenetv2_traffic_light.dataset import TrafficLightCrops
from pytest_autoware_deploy.models.mobilenetv2_traffic_light.model import build_model
from pytest_autoware_deploy.models.mobilenetv2_traffic_light.synthetic import CLASSES, SEEDS, write_split

REPO = Path(__file__).resolve().parents[3]
SPEC = REPO / "deploy_specs" / "mobilenetv2_traffic_light.py"


def test_state_dict_uses_mmpretrain_names_and_awml_sizes():
    sd = build_model(num_classes=11, widen_factor=1.0).state_dict()
    for key, shape in {"backbone.conv1.conv.weight": (32, 3, 3, 3),
                       "backbone.layer1.0.conv.0.conv.weight": (32, 1, 3, 3),  # expand 1: depthwise first
                       "backbone.layer2.0.conv.0.conv.weight": (96, 16, 1, 1),
                       "backbone.layer7.0.conv.2.bn.running_mean": (320,),
                       "backbone.conv2.conv.weight": (1280, 320, 1, 1),
                       "head.fc.weight": (11, 1280)}.items():
        assert tuple(sd[key].shape) == shape, key
    n = sum(v.numel() for k, v in sd.items() if "running" not in k and "num_batches" not in k)
    assert n == 2237963  # torchvision/mmpretrain MobileNetV2 (3.50 M with 1000 classes) with an 11-class head


def test_output_is_class_probabilities_for_any_batch():
    model = build_model(11, 0.5).eval()
    with torch.no_grad():
        p = model(torch.randn(3, 3, 64, 64))
    assert p.shape == (3, 11) and torch.allclose(p.sum(1), torch.ones(3))


def test_crops_are_letterboxed_and_normalised(tmp_path):
    ann = write_split(tmp_path, "val", count=11, size=96)
    ds = TrafficLightCrops(ann, input_size=64)
    assert len(ds) == 11 and ds.class_names == list(CLASSES)
    x = ds[0]["inputs"]["input"]
    assert x.shape == (1, 3, 64, 64) and [ds[i]["target"] for i in range(11)] == list(range(11))
    # a 3:1 light: the bottom of the square is zero padding, which normalises to -mean/std
    assert np.allclose(x[0, 0, -1, :], -123.675 / 58.395, atol=1e-5)


def test_bundled_spec_passes_with_shipped_checkpoint(pytester, tmp_path):
    val = write_split(tmp_path / "data", "val", 44, SEEDS["val"])
    work = tmp_path / "wd"
    result = pytester.runpytest_inprocess(
        f"--deploy-config={SPEC}", "--deploy-cfg-options", f"data.kwargs.ann_file={val}",
        "precision.policies=['fp16','int8']", "precision.int8.calibration_samples=8", "benchmark.rounds=3",
        "benchmark.warmup=1", "benchmark.batch_sizes=[1]", "verification.num_samples=1",
        f"--deploy-work-dir={work}", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=20)  # export; 2 x 3 verification (min=opt, max, opt+1); 3 x (accuracy, latency, throughput); 2 x (agreement, batch invariance)
    backends = json.loads((work / "deploy_report.json").read_text())["specs"]["mobilenetv2_traffic_light"]["backends"]
    for name in ("pytorch", "onnx:fp16", "onnx:int8"):
        assert backends[name]["evaluation"]["accuracy"] >= 0.9
        assert set(backends[name]["evaluation"]["per_class"]) == set(CLASSES)


def test_full_size_spec_declares_awml_shape():
    from pytest_autoware_deploy.spec.load import load_spec

    spec = load_spec(REPO / "deploy_specs" / "mobilenetv2_traffic_light_full.py")
    assert spec.inputs[0].opt_shape == (1, 3, 224, 224) and spec.cfg["model"]["kwargs"]["widen_factor"] == 1.0
