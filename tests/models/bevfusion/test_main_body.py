"""The shipped demo's whole ``main_body`` graph (custom ops included) in ONNX Runtime vs PyTorch at two voxel
counts (the dynamic ``voxels_num`` axis), on a synthetic sweep."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from pytest_autoware_deploy.custom_ops import session_source
from pytest_autoware_deploy.models.bevfusion.model import INPUT_NAMES, OUTPUT_NAMES, build_model
from pytest_autoware_deploy.models.bevfusion.pipeline import BEVFusionLidarPipeline
from pytest_autoware_deploy.models.bevfusion.train import DEMO_HOST, DEMO_MODEL
from pytest_autoware_deploy.models.lidar_common.synthetic import SEEDS, random_scene, render

CKPT = Path(__file__).parents[3] / "pytest_autoware_deploy/models/bevfusion/checkpoints/bevfusion_lidar_voxel032_demo.pth"


@pytest.fixture(scope="module")
def model():
    if not CKPT.is_file():
        pytest.skip(f"the demo checkpoint {CKPT} is not there (python -m pytest_autoware_deploy.models.bevfusion.train)")
    m = build_model(**DEMO_MODEL)
    m.load_state_dict({k: v.float() for k, v in torch.load(CKPT, weights_only=True).items()})
    return m.eval()


def test_main_body_in_onnxruntime_matches_pytorch_at_two_voxel_counts(model, tmp_path):
    import onnxruntime as ort

    rng = np.random.default_rng([SEEDS["val"], 3])
    points, _ = render(random_scene(rng, 32.0), rng, 32.0)
    host = BEVFusionLidarPipeline(**{**DEMO_HOST, "host_device": "numpy"})
    feeds = [host.preprocess(points), host.preprocess(points[np.abs(points[:, :2]).max(1) < 20])]
    assert len(feeds[1]["voxels"]) < len(feeds[0]["voxels"])
    path = tmp_path / "main_body.onnx"
    args = tuple(torch.from_numpy(feeds[0][k]) for k in INPUT_NAMES)
    with torch.no_grad():
        torch.onnx.export(model.main_body, args, str(path), input_names=list(INPUT_NAMES),
                          output_names=list(OUTPUT_NAMES), opset_version=17,
                          dynamic_axes={k: {0: "voxels_num"} for k in INPUT_NAMES}, dynamo=False)
    opts = ort.SessionOptions()
    sess = ort.InferenceSession(session_source(path, opts), opts, providers=["CPUExecutionProvider"])
    for feed in feeds:
        with torch.no_grad():
            want = [t.numpy() for t in model.main_body(*[torch.from_numpy(feed[k]) for k in INPUT_NAMES])]
        got = sess.run(list(OUTPUT_NAMES), feed)
        assert got[0].shape == want[0].shape == (10, DEMO_MODEL["num_proposals"])
        # the same proposals; equal heatmap scores may come out of TopK in another order, so compare them as a set
        # ordered by their BEV position
        g, w = np.lexsort(got[0][1::-1].round(2)), np.lexsort(want[0][1::-1].round(2))
        np.testing.assert_array_equal(got[2][g], want[2][w])
        np.testing.assert_allclose(got[1][g], want[1][w], atol=1e-4)
        np.testing.assert_allclose(got[0][:, g], want[0][:, w], atol=1e-3)
