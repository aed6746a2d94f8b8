"""TransFusion-L's host code, as Autoware's lidar_transfusion runs it around its single ONNX graph.

``run``: voxelize the sweep (raw points per pillar, ``num_points``, ``coors``: Autoware's
``generateVoxels``) -> stage ``end2end`` -> decode (TransFusionBBoxCoder: label = argmax of the
query's class scores, centre from feature-map cells to metres, exp of the log-size, atan2 of
sin/cos, score threshold) and, optionally, circle NMS (AWML's test_cfg has none).

``host_device`` (``lidar_common/host_device.py``) puts the voxelization on the GPU; the decoding works on
the graph's ``num_proposals`` queries only (hundreds of values), so it stays in numpy on both paths and a
device tensor output is copied to the host first.
"""

from __future__ import annotations

import numpy as np

from ..lidar_common.boxes import circle_nms, empty_detections
from ..lidar_common.host_device import on_device, resolve_host_device, stage_feed, to_numpy
from ..lidar_common.voxelize import voxelize


def decode_transfusion(outs, voxel_size, point_cloud_range, out_size_factor, score_threshold=0.1,
                       nms_radius=None, post_max_size=None):
    scores_all = to_numpy(outs["cls_score0"][0]).astype(np.float64)  # (C, P)
    bbox = to_numpy(outs["bbox_pred0"][0]).astype(np.float64)  # (8, P): centre 2, height 1, log dim 3, vel 2
    rot = to_numpy(outs["dir_cls_pred0"][0]).astype(np.float64)  # (2, P): sin, cos
    labels = scores_all.argmax(0)
    scores = scores_all.max(0)
    keep = scores >= score_threshold
    if not keep.any():
        return empty_detections()
    x = bbox[0] * out_size_factor * voxel_size[0] + point_cloud_range[0]
    y = bbox[1] * out_size_factor * voxel_size[1] + point_cloud_range[1]
    dim = np.exp(bbox[3:6])
    z = bbox[2] - dim[2] / 2
    yaw = np.arctan2(rot[0], rot[1])
    boxes = np.stack([x, y, z, dim[0], dim[1], dim[2], yaw, bbox[6], bbox[7]], 1)[keep]
    scores, labels = scores[keep], labels[keep]
    order = np.argsort(-scores, kind="stable")
    if nms_radius:
        order = circle_nms(boxes[:, :2], scores, nms_radius, post_max_size)
    elif post_max_size:
        order = order[:post_max_size]
    return {"boxes_3d": boxes[order].astype(np.float32), "scores": scores[order].astype(np.float32),
            "labels": labels[order].astype(np.int64)}


class TransFusionPipeline:
    """``run(inputs, call_stage)``: ``inputs['points'] (N, >=4)`` float32 -> boxes_3d (M, 9), scores, labels."""

    def __init__(self, voxel_size=(0.24, 0.24, 10.0), point_cloud_range=(-92.16, -92.16, -3.0, 92.16, 92.16, 7.0),
                 max_points=20, max_voxels=60000, use_dims=(0, 1, 2, 3, 4), out_size_factor=4, score_threshold=0.1,
                 nms_radius=None, post_max_size=None, input_name="points", host_device="auto"):
        self.voxel_size = [float(v) for v in voxel_size]
        self.pcr = [float(v) for v in point_cloud_range]
        self.max_points, self.max_voxels = int(max_points), int(max_voxels)
        self.use_dims = list(use_dims)
        self.decode_kwargs = dict(voxel_size=self.voxel_size, point_cloud_range=self.pcr,
                                  out_size_factor=out_size_factor, score_threshold=score_threshold,
                                  nms_radius=nms_radius, post_max_size=post_max_size)
        self.input_name = input_name
        self.device = resolve_host_device(host_device)

    def _check(self, points):
        if points.ndim != 2 or points.shape[1] <= max(self.use_dims):
            raise ValueError(f"TransFusionPipeline: points must be (N, >{max(self.use_dims)}), "
                             f"got {tuple(points.shape)}")

    def preprocess(self, points):
        """Sweep -> the graph's ``voxels / num_points / coors``, numpy (the reference path)."""
        points = np.asarray(points, np.float32)
        self._check(points)
        voxels, num, coors = voxelize(points[:, self.use_dims], self.voxel_size, self.pcr, self.max_points,
                                      self.max_voxels)
        return {"voxels": voxels, "num_points": num, "coors": coors}

    def preprocess_torch(self, points, device=None):
        """``preprocess`` in PyTorch on ``device`` (default: the host device): tensors, bit-identical."""
        import torch

        from ..lidar_common.voxelize_torch import voxelize_torch

        device = device or self.device or torch.device("cpu")
        points = on_device(points, device).to(torch.float32)
        self._check(points)
        voxels, num, coors = voxelize_torch(points[:, torch.tensor(self.use_dims, device=device)], self.voxel_size,
                                            self.pcr, self.max_points, self.max_voxels)
        return {"voxels": voxels, "num_points": num, "coors": coors}

    def run(self, inputs, call_stage):
        if self.device is None:
            feed = self.preprocess(inputs[self.input_name])
        else:
            feed = stage_feed(self.preprocess_torch(inputs[self.input_name]))
        outs = call_stage("end2end", feed)
        return decode_transfusion(outs, **self.decode_kwargs)
