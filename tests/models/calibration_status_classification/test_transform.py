"""The 5-channel fusion and the miscalibration, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pytest_autoware_deploy.models.calibration_status_classification.synthetic import BASE_L2C
from pytest_autoware_deploy.models.calibration_status_classification.transform import (
    alter_calibration, fuse_lidar_camera, project_points, to_chw_batch)

K = np.array([[100.0, 0, 50.0], [0, 100.0, 40.0], [0, 0, 1]])
L2C = np.eye(4)
L2C[:3, :3] = BASE_L2C


def test_point_straight_ahead_lands_on_principal_point():
    uv, ccs, keep = project_points(np.array([[10.0, 0.0, 0.0], [-5.0, 0.0, 0.0]]), L2C, K)
    assert keep.tolist() == [True, False]  # behind the camera is dropped
    np.testing.assert_allclose(uv[0], [50.0, 40.0])
    np.testing.assert_allclose(ccs[0], [0.0, 0.0, 10.0])


def test_channels_and_nearest_point_wins():
    img = np.full((80, 100, 3), 51, np.uint8)
    pts = np.array([[10.0, 0.0, 0.0], [20.0, 0.0, 0.0]])  # both project to (50, 40)
    fused = fuse_lidar_camera(img, pts, np.array([200.0, 100.0]), L2C, K, lidar_range=128.0, dilation_size=1)
    assert fused.shape == (80, 100, 5) and fused.dtype == np.float32
    np.testing.assert_allclose(fused[..., :3], 0.2, atol=1e-6)
    assert fused[40, 50, 3] == pytest.approx(10.0 / 128.0)   # 255 * z / range / 255
    assert fused[40, 50, 4] == pytest.approx(200.0 / 255.0)
    assert (fused[..., 3] > 0).sum() == 9  # one 3x3 patch
    assert fused[0, 0, 3] == 0.0


def test_points_beyond_lidar_range_are_dropped():
    img = np.zeros((80, 100, 3), np.uint8)
    fused = fuse_lidar_camera(img, np.array([[200.0, 0, 0]]), np.array([9.0]), L2C, K, lidar_range=128.0)
    assert not fused[..., 3:].any()


@settings(max_examples=50, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_miscalibration_stays_within_awml_ranges(seed):
    rng = np.random.default_rng(seed)
    altered = alter_calibration(L2C, rng, min_angle=1.0, max_angle=10.0, min_radius=0.05, max_radius=0.2)
    noise = altered @ np.linalg.inv(L2C)
    rot = noise[:3, :3]
    np.testing.assert_allclose(rot @ rot.T, np.eye(3), atol=1e-9)
    angle = np.degrees(np.arccos(np.clip((np.trace(rot) - 1) / 2, -1, 1)))
    assert 1.0 - 1e-6 <= angle <= 10.0 + 1e-6
    assert 0.05 - 1e-9 <= np.linalg.norm(noise[:3, 3]) <= 0.2 + 1e-9


def test_chw_batch_normalises_per_channel():
    x = np.ones((2, 3, 5), np.float32)
    out = to_chw_batch(x, mean=[1, 0, 0, 0, 0], std=[1, 2, 2, 2, 2])
    assert out.shape == (1, 5, 2, 3)
    assert out[0, 0].max() == 0 and out[0, 1].max() == 0.5
