"""The 5-channel input AWML's ``CalibrationClassificationTransform`` builds, in numpy.

Steps as AWML (val/test mode, no augmentation): BGR image; lidar points -> camera frame with
``lidar2cam``; keep z > 0; project with the camera matrix; paint a (2*dilation+1)^2 patch per
point, far points first so near points win; depth channel ``255 * z / lidar_range``, intensity
channel the raw intensity; concatenate ``[B, G, R, depth, intensity]`` and divide by 255.
A miscalibrated sample perturbs ``lidar2cam`` first (``alter_calibration``): label 0, else 1.
"""

from __future__ import annotations

import numpy as np

MISCALIBRATED, CALIBRATED = 0, 1
CLASS_NAMES = ("miscalibrated", "calibrated")


def project_points(points_xyz, lidar2cam, cam2img):
    """Lidar points (N, 3) -> (pixel uv (M, 2), camera-frame xyz (M, 3), kept mask (N,))."""
    hom = np.concatenate([points_xyz, np.ones((len(points_xyz), 1), points_xyz.dtype)], axis=1)
    ccs = (np.asarray(lidar2cam, np.float64) @ hom.T).T[:, :3]
    keep = ccs[:, 2] > 0.0
    ccs = ccs[keep]
    uvw = (np.asarray(cam2img, np.float64) @ ccs.T).T
    uv = uvw[:, :2] / uvw[:, 2:3]
    return uv, ccs, keep


def fuse_lidar_camera(image_bgr, points_xyz, intensities, lidar2cam, cam2img, lidar_range=128.0,
                      dilation_size=1):
    """Return float32 (H, W, 5): B, G, R, depth, intensity, all divided by 255 (AWML's layout)."""
    h, w = image_bgr.shape[:2]
    uv, ccs, keep = project_points(np.asarray(points_xyz, np.float64), lidar2cam, cam2img)
    inten = np.asarray(intensities, np.float64)[keep]
    valid = ((uv[:, 0] >= 0) & (uv[:, 0] <= w - 1) & (uv[:, 1] >= 0) & (uv[:, 1] <= h - 1)
             & (ccs[:, 2] > 0.0) & (ccs[:, 2] < lidar_range))
    uv, ccs, inten = uv[valid], ccs[valid], inten[valid]
    depth_img = np.zeros((h, w), np.float32)
    inten_img = np.zeros((h, w), np.float32)
    if len(uv):
        dy, dx = np.mgrid[-dilation_size:dilation_size + 1, -dilation_size:dilation_size + 1]
        rows = uv[:, 1].astype(np.int32)[:, None] + dy.ravel()[None, :]
        cols = uv[:, 0].astype(np.int32)[:, None] + dx.ravel()[None, :]
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        depth = np.broadcast_to((255.0 * ccs[:, 2] / lidar_range)[:, None], rows.shape)[inside]
        value = np.broadcast_to(inten[:, None], rows.shape)[inside]
        rows, cols = rows[inside], cols[inside]
        order = np.argsort(depth, kind="stable")[::-1]  # far first: the nearest point is written last
        depth_img[rows[order], cols[order]] = depth[order]
        inten_img[rows[order], cols[order]] = value[order]
    fused = np.concatenate([image_bgr.astype(np.float32), depth_img[..., None], inten_img[..., None]], axis=2)
    return fused / 255.0


def _bounded_gaussian(rng, low, high):
    """Gaussian centred at ``low`` with scale (high - low) / 1.5, redrawn until inside [low, high]."""
    if high <= low:
        return low
    while True:
        v = rng.normal(low, (high - low) / 1.5)
        if low <= v <= high:
            return v


def _unit_vector(rng):
    z = 2 * rng.random() - 1.0
    a = 2 * np.pi * rng.random()
    r = np.sqrt(1 - z * z)
    return np.array([r * np.cos(a), r * np.sin(a), z])


def _axis_angle_matrix(axis, angle):
    w = np.cos(angle / 2)
    x, y, z = np.sin(angle / 2) * axis
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - z * w), 2 * (x * z + y * w)],
                     [2 * (x * y + z * w), 1 - 2 * (x * x + z * z), 2 * (y * z - x * w)],
                     [2 * (x * z - y * w), 2 * (y * z + x * w), 1 - 2 * (x * x + y * y)]])


def alter_calibration(lidar2cam, rng, min_angle=1.0, max_angle=10.0, min_radius=0.05, max_radius=0.2):
    """AWML's miscalibration: rotate by an angle in [min, max] degrees about a random axis and shift
    by [min, max] metres in a random direction, applied in the camera frame (``T_noise @ T``)."""
    angle = _bounded_gaussian(rng, min_angle, max_angle) * (1 if rng.random() > 0.5 else -1)
    radius = _bounded_gaussian(rng, min_radius, max_radius) * (1 if rng.random() > 0.5 else -1)
    noise = np.eye(4)
    noise[:3, :3] = _axis_angle_matrix(_unit_vector(rng), np.deg2rad(angle))
    noise[:3, 3] = radius * _unit_vector(rng)
    return noise @ np.asarray(lidar2cam, np.float64)


def to_chw_batch(fused_hwc, mean=None, std=None):
    """(H, W, 5) -> (1, 5, H, W) float32, with the data_preprocessor's per-channel normalisation."""
    x = np.asarray(fused_hwc, np.float32)
    if mean is not None:
        x = x - np.asarray(mean, np.float32)
    if std is not None:
        x = x / np.asarray(std, np.float32)
    return np.ascontiguousarray(x.transpose(2, 0, 1)[None])
