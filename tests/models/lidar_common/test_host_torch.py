"""The PyTorch host path (voxelize_torch.py, select_peaks_torch, host_device) against the numpy reference:
bit-identical voxels, coors, counts, features, canvas and decoded boxes, on real sweeps and generated ones."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoware_deploy.models.centerpoint.pipeline import (CenterPointPipeline, decode_centerpoint, select_peaks,
                                                               select_peaks_torch)
from pytest_autoware_deploy.models.lidar_common.dataset import LidarSamples
from pytest_autoware_deploy.models.lidar_common.host_device import resolve_host_device, stage_feed
from pytest_autoware_deploy.models.lidar_common.synthetic import CLASSES, write_split
from pytest_autoware_deploy.models.lidar_common.voxelize import grid_shape, pillar_features, scatter, voxelize
from pytest_autoware_deploy.models.lidar_common.voxelize_torch import (pillar_features_torch, scatter_torch,
                                                                       voxelize_torch)

PCR = [-8.0, -8.0, -3.0, 8.0, 8.0, 5.0]
VS = [1.0, 1.0, 8.0]
DEMO = ([0.32, 0.32, 8.0], [-32.0, -32.0, -3.0, 32.0, 32.0, 5.0])
FULL = ([0.24, 0.24, 8.0], [-122.4, -122.4, -3.0, 122.4, 122.4, 5.0])  # centerpoint_full.py
# the same checks on the GPU where torch sees one (the H100 runs: no atomics, same float maths there)
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device here: the GPU path is checked where torch sees one"))]


def _both(points, voxel_size, pcr, max_points, max_voxels, with_distance=False, device="cpu"):
    """Run voxelize -> decorate -> scatter on both paths; assert every intermediate is identical."""
    ref = voxelize(points, voxel_size, pcr, max_points, max_voxels)
    got = voxelize_torch(torch.from_numpy(points).to(device), voxel_size, pcr, max_points, max_voxels)
    for name, a, b in zip(("voxels", "num_points", "coors"), ref, got):
        assert b.device.type == device and a.dtype == b.cpu().numpy().dtype and a.shape == tuple(b.shape), name
        np.testing.assert_array_equal(a, b.cpu().numpy(), err_msg=name)
    feats = pillar_features(*ref, voxel_size, pcr, with_distance=with_distance)
    feats_t = pillar_features_torch(*got, voxel_size, pcr, with_distance=with_distance)
    np.testing.assert_array_equal(feats, feats_t.cpu().numpy(), err_msg="pillar features")
    nx, ny, _ = grid_shape(pcr, voxel_size)
    pillars = feats[:, :1, :] * 3.0 + 1.0  # any per-pillar vector; its (V, 1, C) layout is the encoder's
    canvas_t = scatter_torch(torch.from_numpy(pillars).to(device), got[2], nx, ny)
    np.testing.assert_array_equal(scatter(pillars, ref[2], nx, ny), canvas_t.cpu().numpy(), err_msg="canvas")
    return ref


@pytest.fixture(scope="module")
def sweeps(tmp_path_factory):
    info = write_split(tmp_path_factory.mktemp("lidar"), "val", 2, 11)
    return [s["inputs"]["points"] for s in LidarSamples(info, classes=list(CLASSES))]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("grid", [DEMO, FULL], ids=["demo", "full"])
def test_torch_host_path_equals_numpy_on_real_sweeps(sweeps, grid, device):
    for pts in sweeps:
        voxels, num, _ = _both(pts[:, :4], *grid, 32, 96000, device=device)
        assert len(voxels) > 1000 and num.max() == 32  # real sweeps fill pillars past max_points
        # a max_voxels cut and a small max_points on the same sweep, the distance feature too
        voxels, num, _ = _both(pts[:, :4], *grid, 5, 700, with_distance=True, device=device)
        assert len(voxels) == 700 and num.max() == 5


_coord = st.one_of(st.floats(-9, 9, width=32), st.sampled_from([-8.0, 0.0, 7.999999, 8.0, np.nan, np.inf, -1e30]))


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(_coord, _coord, st.floats(-4, 6, width=32)), min_size=0, max_size=120),
       st.integers(1, 5), st.integers(1, 40), st.booleans())
def test_torch_voxelize_equals_numpy_on_generated_clouds(device, xyz, max_points, max_voxels, clustered):
    """Empty clouds, points out of range (NaN, inf, huge), pillars over max_points (clustered: a 2x2 m
    patch piles many points into few pillars) and clouds over max_voxels."""
    pts = np.array([(x, y, z, float(i)) for i, (x, y, z) in enumerate(xyz)], np.float32).reshape(-1, 4)
    if clustered:
        with np.errstate(invalid="ignore"):  # inf % 2 is NaN, which nan_to_num makes a point in range
            pts[:, :2] = np.nan_to_num(pts[:, :2] % 2.0, nan=0.5)
    _both(pts, VS, PCR, max_points, max_voxels, with_distance=True, device=device)


def test_nan_and_huge_points_are_dropped_not_cast_into_the_grid():
    pts = np.array([[np.nan, 0.5, 0, 1], [1e30, 0.5, 0, 2], [-1e30, 0.5, 0, 3], [0.5, 0.5, 0, 4]], np.float32)
    voxels, num, coors = voxelize(pts, VS, PCR, 4, 10)
    assert num.tolist() == [1] and voxels[0, 0, 3] == 4 and coors[0].tolist() == [0, 0, 8, 8]


def _stable_top(flat, k):
    """The definition: a full stable sort by logit descending, first k."""
    return np.argsort(-flat, kind="stable")[:k]


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(-3, 3), min_size=1, max_size=200), st.integers(1, 60))
def test_peak_selection_breaks_ties_by_index_on_both_paths(device, values, k):
    flat = np.array(values, np.float32)  # few distinct values: ties everywhere, also at the k-th place
    want = _stable_top(flat, k)
    np.testing.assert_array_equal(select_peaks(flat, k), want)
    np.testing.assert_array_equal(select_peaks_torch(torch.from_numpy(flat).to(device), k), want)


HEADS = (("heatmap", 3), ("reg", 2), ("height", 1), ("dim", 3), ("rot", 2), ("vel", 2))


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2 ** 31 - 1), st.integers(4, 24), st.integers(1, 80), st.booleans())
def test_decoding_is_identical_on_both_paths(device, seed, size, max_num, quantised):
    rng = np.random.default_rng(seed)
    heads = {n: rng.normal(0, 1.5, (1, c, size, size)).astype(np.float32) for n, c in HEADS}
    if quantised:  # tied scores, centres closer than the NMS radius
        heads["heatmap"] = np.round(heads["heatmap"]).astype(np.float32)
    kw = dict(voxel_size=[0.5, 0.5, 8], point_cloud_range=[-6, -6, -3, 6, 6, 5], out_size_factor=2,
              score_threshold=0.3, max_num=max_num, nms_radius=1.5, post_max_size=20)
    ref = decode_centerpoint(heads, **kw)
    for feed in (heads, {n: torch.from_numpy(v).to(device) for n, v in heads.items()}):  # numpy or device tensors
        got = decode_centerpoint(feed, **kw, device=torch.device(device))
        for name in ("boxes_3d", "scores", "labels"):
            assert ref[name].dtype == got[name].dtype
            np.testing.assert_array_equal(ref[name], got[name], err_msg=name)


def test_host_device_setting():
    assert resolve_host_device("numpy") is None
    assert resolve_host_device("cpu") == torch.device("cpu")
    expected = torch.device("cuda") if torch.cuda.is_available() else None
    assert resolve_host_device("auto") == expected  # 'auto' keeps the numpy reference on a CPU-only machine
    assert CenterPointPipeline(host_device="torch").device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(TypeError, match=r"host_device must be one of \('auto', 'numpy', 'torch'\).*'gpu0'"):
        CenterPointPipeline(host_device="gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(TypeError, match="torch sees no CUDA device here"):
            resolve_host_device("cuda:0")


def test_stage_boundary_hands_numpy_to_the_runners():
    feed = stage_feed({"a": torch.arange(6, dtype=torch.float32).view(2, 3), "b": np.zeros(2, np.int32)})
    assert all(isinstance(v, np.ndarray) for v in feed.values())
    np.testing.assert_array_equal(feed["a"], np.arange(6, dtype=np.float32).reshape(2, 3))


def test_bad_host_device_in_a_spec_is_one_spec_error(tmp_path):
    """The setting's error reaches the user as a SpecError naming the spec key (spec/resolve.py)."""
    from types import SimpleNamespace

    from pytest_autoware_deploy.errors import SpecError
    from pytest_autoware_deploy.pipeline import make_host

    spec = SimpleNamespace(file=tmp_path / "spec.py", dir=tmp_path, cfg={"pipeline": {
        "host": "pytest_autoware_deploy.models.centerpoint.pipeline:CenterPointPipeline",
        "kwargs": {"host_device": "tpu"}}})
    with pytest.raises(SpecError, match=r"pipeline\.kwargs.*host_device must be one of"):
        make_host(spec)
