"""Synthetic scenes, the safe info reader and the host-side voxelization / decoration / scatter."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoware_deploy.models.lidar_common.boxes import circle_nms
from pytest_autoware_deploy.models.lidar_common.dataset import InfoFileError, LidarSamples
from pytest_autoware_deploy.models.lidar_common.synthetic import CLASSES, write_split
from pytest_autoware_deploy.models.lidar_common.voxelize import pillar_features, scatter, voxelize

PCR = [-8.0, -8.0, -3.0, 8.0, 8.0, 5.0]
VS = [1.0, 1.0, 8.0]


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    return write_split(tmp_path_factory.mktemp("lidar"), "val", 3, 7, max_range=20.0)


def test_split_is_deterministic_and_in_t4_format(split, tmp_path):
    again = write_split(tmp_path, "val", 3, 7, max_range=20.0)
    assert again.read_bytes() == split.read_bytes()
    assert (tmp_path / "lidar" / "val_00002.pcd.bin").read_bytes() == (split.parent / "lidar" / "val_00002.pcd.bin").read_bytes()
    s = LidarSamples(split, classes=list(CLASSES))[0]
    pts, t = s["inputs"]["points"], s["target"]
    assert pts.dtype == np.float32 and pts.shape[1] == 5 and len(pts) > 10000
    assert t["boxes_3d"].shape[1] == 9 and len(t["labels"]) == len(t["boxes_3d"]) > 3
    # ground at -1.8 m, objects stand on it and have lidar points on them
    assert np.isclose(np.percentile(pts[:, 2], 5), -1.8, atol=0.05)
    assert np.allclose(t["boxes_3d"][:, 2], -1.8) and (t["num_points"] > 0).sum() >= len(t["labels"]) // 2


def test_classes_select_and_reorder_labels(split):
    full = LidarSamples(split)[0]["target"]
    only = LidarSamples(split, classes=["pedestrian", "truck"])[0]["target"]  # truck: absent from the data
    assert set(only["labels"]) <= {0}
    assert len(only["labels"]) == int((full["labels"] == CLASSES.index("pedestrian")).sum())
    with pytest.raises(InfoFileError, match="has none of the model's classes"):
        LidarSamples(split, classes=["bus"])


def test_info_reader_refuses_code_and_names_the_entry(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    bad = tmp_path / "evil.pkl"
    bad.write_bytes(pickle.dumps({"data_list": [Evil()]}))
    with pytest.raises(InfoFileError, match="refuses to load global 'builtins.print'"):
        LidarSamples(bad)
    broken = tmp_path / "info.pkl"
    broken.write_bytes(pickle.dumps({"data_list": [{"lidar_points": {"lidar_path": "nope.bin"}}]}))
    with pytest.raises(InfoFileError, match=r"data_list\[0\]: point cloud .*nope.bin not found"):
        LidarSamples(broken)[0]


def _voxelize_reference(points, max_points, max_voxels):
    """The obvious loop: walk the points, open pillars in order of first appearance."""
    order, content = [], {}
    for p in points:
        idx = tuple(np.floor((p[:3] - np.array(PCR[:3], np.float32)) / np.array(VS, np.float32)).astype(int))
        if not all(0 <= i < n for i, n in zip(idx, (16, 16, 1))):
            continue
        if idx not in content:
            if len(order) == max_voxels:
                continue
            order.append(idx)
            content[idx] = []
        if len(content[idx]) < max_points:
            content[idx].append(p)
    return order, content


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(*[st.floats(-10, 10, width=32)] * 2, st.floats(-4, 6, width=32)), min_size=1, max_size=60),
       st.integers(1, 4), st.integers(1, 30))
def test_voxelize_equals_the_obvious_loop(xyz, max_points, max_voxels):
    points = np.array([(x, y, z, float(i)) for i, (x, y, z) in enumerate(xyz)], np.float32)
    voxels, num, coors = voxelize(points, VS, PCR, max_points, max_voxels)
    order, content = _voxelize_reference(points, max_points, max_voxels)
    assert [tuple(c[[3, 2, 1]]) for c in coors] == order
    for v, n, key in zip(voxels, num, order):
        assert n == len(content[key])
        np.testing.assert_array_equal(v[:n], np.array(content[key]))
        assert not v[n:].any()


def test_decoration_and_scatter_match_the_torch_graph():
    import torch

    from pytest_autoware_deploy.models.lidar_common.layers import PillarFeatureNet

    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.uniform(-8, 8, (500, 2)), rng.uniform(-2, 1, (500, 1)), rng.random((500, 1))], 1)
    voxels, num, coors = voxelize(pts.astype(np.float32), VS, PCR, 8, 100)
    feats = pillar_features(voxels, num, coors, VS, PCR)
    net = PillarFeatureNet(4, (8,), VS, PCR)
    torch_feats = net.decorate(torch.from_numpy(voxels), torch.from_numpy(num), torch.from_numpy(coors)).numpy()
    np.testing.assert_allclose(feats, torch_feats, atol=1e-5)
    canvas = scatter(np.arange(len(coors) * 2, dtype=np.float32).reshape(-1, 1, 2), coors, 16, 16)
    k = len(coors) - 1
    assert canvas.shape == (1, 2, 16, 16) and canvas[0, 1, coors[k, 2], coors[k, 3]] == 2 * k + 1


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(-5, 5), st.floats(0, 1)), min_size=1, max_size=25),
       st.floats(0.1, 3))
def test_circle_nms_keeps_a_maximal_set_of_separated_centres(dets, radius):
    xy, scores = np.array([d[:2] for d in dets]), np.array([d[2] for d in dets])
    keep = circle_nms(xy, scores, radius)
    assert keep[0] == int(np.argmax(scores)) or scores[keep[0]] == scores.max()
    kept = xy[keep]
    d = np.linalg.norm(kept[:, None] - kept[None], axis=2) + np.eye(len(keep)) * 1e9
    assert (d > radius).all()  # kept centres are pairwise farther than the radius
    for i in set(range(len(dets))) - set(keep.tolist()):  # every dropped one lies near a kept, higher one
        near = np.linalg.norm(kept - xy[i], axis=1) <= radius
        assert (near & (scores[keep] >= scores[i])).any()


def _circle_nms_mmdet3d(xy, scores, min_radius, post_max_size=None):
    """mmdet3d's loop as written there (a gather of the rest per kept box): what circle_nms must equal."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    xy = np.asarray(xy, np.float64)
    kept, suppressed = [], np.zeros(len(order), bool)
    for pos, i in enumerate(order):
        if suppressed[pos]:
            continue
        kept.append(int(i))
        if post_max_size is not None and len(kept) >= post_max_size:
            break
        rest = order[pos + 1:]
        suppressed[pos + 1:] |= np.sum((xy[rest] - xy[i]) ** 2, axis=1) <= min_radius ** 2
    return np.asarray(kept, np.int64)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.tuples(st.floats(-5, 5), st.floats(-5, 5), st.sampled_from([0.1, 0.5, 0.9]) | st.floats(0, 1)),
                max_size=40), st.floats(0.01, 3), st.none() | st.integers(1, 10))
def test_circle_nms_keeps_exactly_mmdet3d_loops_boxes(dets, radius, post_max_size):
    xy = np.array([d[:2] for d in dets], np.float64).reshape(-1, 2)
    scores = np.array([d[2] for d in dets], np.float64)  # tied scores too: visited in index order
    keep = circle_nms(xy, scores, radius, post_max_size)
    assert keep.dtype == np.int64
    np.testing.assert_array_equal(keep, _circle_nms_mmdet3d(xy, scores, radius, post_max_size))


def _backward_decoration_reference(voxels, num, coors, vs, pcr):
    """AWML's BackwardPillarFeatureNet.forward (legacy=False) decoration, transcribed with numpy: raw features,
    xyz minus the pillar's point mean, x and y minus the pillar centre, zeroed past each pillar's points."""
    mean = voxels[:, :, :3].sum(1, keepdims=True) / np.maximum(num, 1).astype(np.float32)[:, None, None]
    centre = np.zeros_like(voxels[:, :, :2])
    centre[:, :, 0] = voxels[:, :, 0] - (coors[:, 3:4].astype(np.float32) * vs[0] + (vs[0] / 2 + pcr[0]))
    centre[:, :, 1] = voxels[:, :, 1] - (coors[:, 2:3].astype(np.float32) * vs[1] + (vs[1] / 2 + pcr[1]))
    out = np.concatenate([voxels, voxels[:, :, :3] - mean, centre], axis=-1)
    return out * (np.arange(voxels.shape[1])[None, :] < num[:, None])[:, :, None]


def test_backward_pillar_decoration_matches_awml_in_numpy_torch_and_the_graph():
    import torch

    from pytest_autoware_deploy.models.lidar_common.layers import PillarFeatureNet
    from pytest_autoware_deploy.models.lidar_common.voxelize_torch import pillar_features_torch

    rng = np.random.default_rng(1)
    pts = np.concatenate([rng.uniform(-8, 8, (500, 2)), rng.uniform(-2, 1, (500, 1)), rng.random((500, 1))], 1)
    voxels, num, coors = voxelize(pts.astype(np.float32), VS, PCR, 8, 100)
    ref = _backward_decoration_reference(voxels, num, coors, VS, PCR)
    feats = pillar_features(voxels, num, coors, VS, PCR, voxel_center_dims=2)
    assert feats.shape == voxels.shape[:2] + (4 + 3 + 2,)
    np.testing.assert_allclose(feats, ref, atol=1e-5)
    tv, tn, tc = torch.from_numpy(voxels), torch.from_numpy(num), torch.from_numpy(coors)
    np.testing.assert_array_equal(pillar_features_torch(tv, tn, tc, VS, PCR, voxel_center_dims=2).numpy(), feats)
    net = PillarFeatureNet(4, (8,), VS, PCR, voxel_center_dims=2)
    assert net.in_channels == 9 and net.pfn_layers[0].linear.in_features == 9
    np.testing.assert_allclose(net.decorate(tv, tn, tc).numpy(), ref, atol=1e-5)
