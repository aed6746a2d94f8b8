"""CenterPoint's host code, where Autoware's lidar_centerpoint runs it, between the two ONNX stages.

``run``: voxelize the sweep and decorate the pillars (Autoware's ``generateVoxels`` /
``generateFeatures``) -> stage ``pts_voxel_encoder`` -> scatter the pillar features onto the BEV
canvas (``scatterFeatures``) -> stage ``pts_backbone_neck_head`` -> decode (sigmoid heatmap, top-K,
score threshold, exp of the log-size, atan2 of sin/cos) and circle NMS (``postprocess``).
The same code drives PyTorch, ONNX Runtime or TensorRT through ``call_stage``.
"""

from __future__ import annotations

import numpy as np

from ..lidar_common.boxes import circle_nms, empty_detections, sigmoid
from ..lidar_common.voxelize import grid_shape, pillar_features, scatter, voxelize


def decode_centerpoint(heads, voxel_size, point_cloud_range, out_size_factor, score_threshold=0.1, max_num=500,
                       nms_radius=1.0, post_max_size=100):
    """mmdet3d's CenterPointBBoxCoder + circle NMS on one frame's head outputs (batch of one)."""
    heat = sigmoid(heads["heatmap"][0])  # (C, H, W)
    num_cls, h, w = heat.shape
    flat = heat.reshape(-1)
    k = min(max_num, flat.size)
    top = np.argpartition(-flat, k - 1)[:k]
    top = top[np.argsort(-flat[top], kind="stable")]
    top = top[flat[top] >= score_threshold]
    if not len(top):
        return empty_detections()
    cls, pix = np.divmod(top, h * w)
    ys, xs = np.divmod(pix, w)

    def at(name):
        return heads[name][0].reshape(heads[name].shape[1], -1)[:, pix].astype(np.float64)

    reg, hei, dim, rot, vel = at("reg"), at("height"), np.exp(at("dim")), at("rot"), at("vel")
    cell_x, cell_y = out_size_factor * voxel_size[0], out_size_factor * voxel_size[1]
    x = (xs + reg[0]) * cell_x + point_cloud_range[0]
    y = (ys + reg[1]) * cell_y + point_cloud_range[1]
    z = hei[0] - dim[2] / 2  # the head predicts the gravity centre; boxes carry the bottom centre
    yaw = np.arctan2(rot[0], rot[1])
    boxes = np.stack([x, y, z, dim[0], dim[1], dim[2], yaw, vel[0], vel[1]], 1)
    scores = flat[top]
    keep = circle_nms(boxes[:, :2], scores, nms_radius, post_max_size)
    return {"boxes_3d": boxes[keep].astype(np.float32), "scores": scores[keep].astype(np.float32),
            "labels": cls[keep].astype(np.int64)}


class CenterPointPipeline:
    """``run(inputs, call_stage)``: ``inputs['points'] (N, >=4)`` float32 -> boxes_3d (M, 9), scores, labels."""

    def __init__(self, voxel_size=(0.24, 0.24, 8.0), point_cloud_range=(-122.4, -122.4, -3.0, 122.4, 122.4, 5.0),
                 max_points=32, max_voxels=96000, use_dims=(0, 1, 2, 3), out_size_factor=2, score_threshold=0.1,
                 max_num=500, nms_radius=1.0, post_max_size=100, input_name="points"):
        self.voxel_size = [float(v) for v in voxel_size]
        self.pcr = [float(v) for v in point_cloud_range]
        self.max_points, self.max_voxels = int(max_points), int(max_voxels)
        self.use_dims = list(use_dims)
        self.nx, self.ny, _ = grid_shape(self.pcr, self.voxel_size)
        self.decode_kwargs = dict(voxel_size=self.voxel_size, point_cloud_range=self.pcr,
                                  out_size_factor=out_size_factor, score_threshold=score_threshold, max_num=max_num,
                                  nms_radius=nms_radius, post_max_size=post_max_size)
        self.input_name = input_name

    def preprocess(self, points):
        """Sweep -> (decorated pillar features (V, M, C+6), coors (V, 4))."""
        points = np.asarray(points, np.float32)
        if points.ndim != 2 or points.shape[1] <= max(self.use_dims):
            raise ValueError(f"CenterPointPipeline: points must be (N, >{max(self.use_dims)}), got {points.shape}")
        voxels, num, coors = voxelize(points[:, self.use_dims], self.voxel_size, self.pcr, self.max_points,
                                      self.max_voxels)
        return pillar_features(voxels, num, coors, self.voxel_size, self.pcr), coors

    def run(self, inputs, call_stage):
        feats, coors = self.preprocess(inputs[self.input_name])
        pillars = call_stage("pts_voxel_encoder", {"input_features": feats})["pillar_features"]
        canvas = scatter(pillars, coors, self.nx, self.ny)
        heads = call_stage("pts_backbone_neck_head", {"spatial_features": canvas})
        return decode_centerpoint(heads, **self.decode_kwargs)
