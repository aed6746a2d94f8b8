"""The swin family: synthetic frames, the linear-probe evaluator, the bundled specs end to end."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pytest_autoware_deploy.models.swin.dataset import CameraFrames
from pytest_autoware_deploy.models.swin.evaluator import LinearProbeEvaluator
from pytest_autoware_deploy.models.swin.synthetic import CLASSES, SEEDS, write_split
from pytest_autoware_deploy.spec.load import load_spec

REPO = Path(__file__).resolve().parents[3]
SPEC = REPO / "deploy_specs" / "swin.py"
FULL = REPO / "deploy_specs" / "swin_full.py"


def test_frames_are_uint8_nchw_with_labels_and_resize_to_the_graph_size(tmp_path):
    ann = write_split(tmp_path, "val", count=12)
    ds = CameraFrames(ann)
    assert len(ds) == 12 and ds.class_names == list(CLASSES)
    x = ds[0]["inputs"]["imgs"]
    assert x.shape == (1, 3, 32, 64) and x.dtype == np.uint8
    assert [ds[i]["target"] for i in range(12)] == [i % 6 for i in range(12)]
    big = CameraFrames(ann, image_size=(384, 768))[3]["inputs"]["imgs"]
    assert big.shape == (1, 3, 384, 768) and big.dtype == np.uint8


def test_synthetic_split_is_deterministic(tmp_path):
    a = CameraFrames(write_split(tmp_path / "a", "val", count=4))
    b = CameraFrames(write_split(tmp_path / "b", "val", count=4))
    c = CameraFrames(write_split(tmp_path / "c", "val", count=4, seed=SEEDS["val"] + 1))
    assert np.array_equal(a[2]["inputs"]["imgs"], b[2]["inputs"]["imgs"])
    assert not np.array_equal(a[2]["inputs"]["imgs"], c[2]["inputs"]["imgs"])


def _probe(tmp_path, weight, bias):
    path = tmp_path / "probe.npz"
    np.savez(path, weight=np.asarray(weight, np.float32), bias=np.asarray(bias, np.float32),
             class_names=np.array(["a", "b"]))
    return path


def test_probe_scores_pooled_features(tmp_path):
    ev = LinearProbeEvaluator(_probe(tmp_path, [[1, 0, 0], [0, 1, 0]], [0, 0]))
    feats = np.zeros((2, 3, 4, 8), np.float32)
    feats[0, 0, :2] = 1.0   # channel 0 on half the map -> mean 0.5 -> class a
    feats[1, 1, 0, 0] = 8.0  # one hot pixel of channel 1 -> mean 0.25 -> class b
    ev.update({"image_feats": feats}, np.array([0, 0]))
    result = ev.compute()
    assert result["accuracy"] == 0.5 and result["confusion_matrix"] == [[1, 1], [0, 0]]
    assert result["class_names"] == ["a", "b"]


def test_probe_refuses_features_of_another_width_naming_the_probe(tmp_path):
    ev = LinearProbeEvaluator(_probe(tmp_path, [[1, 0, 0], [0, 1, 0]], [0, 0]))
    with pytest.raises(ValueError, match=r"output 'image_feats': expected \[N, 3, H, W\] features for the probe "
                                         r"probe.npz, got shape \(1, 4, 2, 2\)"):
        ev.update({"image_feats": np.zeros((1, 4, 2, 2))}, np.array([0]))
    with pytest.raises(FileNotFoundError, match="evaluation.kwargs.probe_file"):
        LinearProbeEvaluator(tmp_path / "missing.npz")


def test_bundled_spec_passes_with_shipped_checkpoint(pytester, tmp_path):
    val = write_split(tmp_path / "data", "val", 36, SEEDS["val"])
    work = tmp_path / "wd"
    result = pytester.runpytest_inprocess(
        f"--deploy-config={SPEC}", "--deploy-cfg-options", f"data.kwargs.ann_file={val}",
        "benchmark.rounds=3", "benchmark.warmup=1", "benchmark.batch_sizes=[1]", "verification.num_samples=1",
        f"--deploy-work-dir={work}", "-p", "no:cacheprovider", "-k", "not tensorrt")
    outcomes = result.parseoutcomes()
    assert outcomes.get("failed", 0) == 0 and outcomes.get("error", 0) == 0, result.stdout.str()[-3000:]
    spec = json.loads((work / "deploy_report.json").read_text())["specs"]["swin"]
    backends = spec["backends"]
    for name in ("pytorch", "onnx", "onnx:fp16"):
        assert backends[name]["evaluation"]["accuracy"] >= 0.9, name
        assert set(backends[name]["evaluation"]["per_class"]) == set(CLASSES)
    for name in ("onnx", "onnx:fp16"):
        assert backends[name]["verification"]["passed"], name
    assert backends["onnx"]["verification"]["outputs"]["image_feats"]["max_abs"] < 1e-3


def test_onnx_graph_has_awml_names_uint8_input_and_dynamic_camera_count(pytester, tmp_path):
    import onnx

    val = write_split(tmp_path / "data", "val", 6, SEEDS["val"])
    work = tmp_path / "wd"
    result = pytester.runpytest_inprocess(
        f"--deploy-config={SPEC}", "--deploy-cfg-options", f"data.kwargs.ann_file={val}",
        f"--deploy-work-dir={work}", "-p", "no:cacheprovider", "-k", "test_export_onnx")
    result.assert_outcomes(passed=1)
    graph = onnx.load(work / "bevfusion_image_backbone.onnx").graph
    (inp,), (out,) = graph.input, graph.output
    assert inp.name == "imgs" and inp.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert [d.dim_param or d.dim_value for d in inp.type.tensor_type.shape.dim] == ["num_imgs", 3, 32, 64]
    assert out.name == "image_feats"
    # batch and channels are declared; H/8, W/8 are left symbolic by the exporter (known gap, see report)
    assert [d.dim_param or d.dim_value for d in out.type.tensor_type.shape.dim][:2] == ["num_imgs", 32]
    import onnxruntime as ort

    feats = ort.InferenceSession(str(work / "bevfusion_image_backbone.onnx")).run(
        None, {"imgs": np.zeros((3, 3, 32, 64), np.uint8)})[0]
    assert feats.shape == (3, 32, 4, 8)
    ops = {n.op_type for n in graph.node}
    assert {"LayerNormalization", "Softmax", "Cast"} <= ops and "Im2Col" not in ops and "Pad" not in ops


def test_full_size_spec_declares_awml_dims():
    spec = load_spec(FULL)
    kwargs = spec.cfg["model"]["kwargs"]
    assert (kwargs["embed_dims"], tuple(kwargs["depths"]), tuple(kwargs["num_heads"]), kwargs["window_size"],
            kwargs["out_channels"]) == (96, (2, 2, 6, 2), (3, 6, 12, 24), 7, 256)
    assert spec.inputs[0].opt_shape == (6, 3, 384, 768) and spec.inputs[0].min_shape == (1, 3, 384, 768)
    assert spec.inputs[0].dtype == "uint8" and spec.cfg["model"]["checkpoint"] is None


def test_probe_pools_as_its_file_says(tmp_path):
    path = tmp_path / "max.npz"
    np.savez(path, weight=np.eye(2, dtype=np.float32), bias=np.zeros(2, np.float32), pool=np.array("max"))
    feats = np.zeros((1, 2, 4, 4), np.float32)
    feats[0, 0] = 0.3        # channel 0: mean 0.3, max 0.3
    feats[0, 1, 0, 0] = 1.0  # channel 1: mean 1/16, max 1.0 -> class 1 under max pooling only
    ev = LinearProbeEvaluator(path)
    assert ev.logits(feats).argmax() == 1
    path_mean = _probe(tmp_path, np.eye(2), [0, 0])
    assert LinearProbeEvaluator(path_mean).logits(feats).argmax() == 0
