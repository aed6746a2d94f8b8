"""Box helpers shared by the lidar heads: decoding grids to metres, circle NMS, gaussian targets.

Boxes are ``[x, y, z_bottom, l, w, h, yaw, vx, vy]`` in the lidar frame (mmdet3d's LiDAR boxes:
bottom-centre origin, yaw about z from the x axis, length along x at yaw 0).
"""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def circle_nms(xy, scores, min_radius, post_max_size=None):
    """mmdet3d's circle NMS: visit boxes by descending score, drop those whose centre lies within
    ``min_radius`` metres of a kept one. Returns kept indices (score order)."""
    order = np.argsort(-np.asarray(scores), kind="stable")
    xy = np.asarray(xy, np.float64).reshape(-1, 2)
    xs, ys = np.ascontiguousarray(xy[order, 0]), np.ascontiguousarray(xy[order, 1])  # in visiting order
    r2 = min_radius ** 2
    kept, suppressed = [], np.zeros(len(order), bool)
    for pos in range(len(order)):
        if suppressed[pos]:
            continue
        kept.append(pos)
        if post_max_size is not None and len(kept) >= post_max_size:
            break
        dx, dy = xs[pos + 1:] - xs[pos], ys[pos + 1:] - ys[pos]  # views of the rest: no gathers per box
        suppressed[pos + 1:] |= dx * dx + dy * dy <= r2
    return order[np.asarray(kept, np.int64)].astype(np.int64)


def gaussian_radius(height, width, min_overlap=0.1):
    """CenterNet's radius (mmdet3d ``gaussian_radius``) for a box of ``height x width`` cells."""
    a1, b1, c1 = 1, height + width, width * height * (1 - min_overlap) / (1 + min_overlap)
    r1 = (b1 + np.sqrt(b1 ** 2 - 4 * a1 * c1)) / 2
    a2, b2, c2 = 4, 2 * (height + width), (1 - min_overlap) * width * height
    r2 = (b2 + np.sqrt(b2 ** 2 - 4 * a2 * c2)) / 2
    a3, b3, c3 = 4 * min_overlap, -2 * min_overlap * (height + width), (min_overlap - 1) * width * height
    r3 = (b3 + np.sqrt(b3 ** 2 - 4 * a3 * c3)) / 2
    return min(r1, r2, r3)


def draw_gaussian(heatmap, cx, cy, radius):
    """Max-paint a gaussian of ``radius`` cells at integer centre (cx, cy) into ``heatmap (H, W)``."""
    d = 2 * radius + 1
    sigma = d / 6
    ys, xs = np.ogrid[-radius:radius + 1, -radius:radius + 1]
    g = np.exp(-(xs * xs + ys * ys) / (2 * sigma * sigma))
    h, w = heatmap.shape
    left, right = min(cx, radius), min(w - cx, radius + 1)
    top, bottom = min(cy, radius), min(h - cy, radius + 1)
    region = heatmap[cy - top:cy + bottom, cx - left:cx + right]
    np.maximum(region, g[radius - top:radius + bottom, radius - left:radius + right], out=region)


def empty_detections():
    return {"boxes_3d": np.zeros((0, 9), np.float32), "scores": np.zeros((0,), np.float32),
            "labels": np.zeros((0,), np.int64), "heading_norm": np.zeros((0,), np.float32)}


def yaw_from_heading(sin, cos):
    """A head's heading vector ``(sin, cos)`` -> ``(yaw, |(sin, cos)|)``. The magnitude says how much the head
    commits to an orientation (about 1 once trained; near 0 where it has not learned one): the detection
    comparator weighs yaw differences by it (``verify/detections3d.py``), so it travels with the boxes as the
    pipelines' ``heading_norm`` output."""
    sin, cos = np.asarray(sin, np.float64), np.asarray(cos, np.float64)
    return np.arctan2(sin, cos), np.hypot(sin, cos)
