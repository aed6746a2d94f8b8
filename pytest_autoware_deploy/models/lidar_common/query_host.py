"""The host code of query-based lidar detectors deployed as one ONNX graph (TransFusion-L, BEVFusion-L).

Both run as Autoware does around the graph: hard voxelization of the sweep (numpy reference or PyTorch on the
host device, ``host_device.py``), the graph, then TransFusionBBoxCoder's decoding of the fixed-K queries: centre
from BEV cells to metres, z from the bottom, exp of the log-size, atan2 of sin/cos, score threshold, optional
circle NMS. A family's host says how the voxels become its graph's feed and how its outputs split into the
query rows; the rest is here.
"""

from __future__ import annotations

import numpy as np

from .boxes import circle_nms, empty_detections, yaw_from_heading
from .host_device import on_device, resolve_host_device, stage_feed
from .voxelize import voxelize


def decode_queries(centre, height, log_dim, sin, cos, vel, scores, labels, voxel_size, point_cloud_range,
                   out_size_factor, score_threshold=0.1, nms_radius=None, post_max_size=None) -> dict:
    """Per-query rows (float64, length K each; ``centre``/``log_dim``/``vel`` stacked by row) -> boxes_3d (M, 9)
    bottom-centred, scores, labels, best first (circle NMS when ``nms_radius``)."""
    keep = scores >= score_threshold
    if not keep.any():
        return empty_detections()
    x = centre[0] * out_size_factor * voxel_size[0] + point_cloud_range[0]
    y = centre[1] * out_size_factor * voxel_size[1] + point_cloud_range[1]
    dim = np.exp(log_dim)
    z = height - dim[2] / 2
    yaw, heading = yaw_from_heading(sin, cos)
    boxes = np.stack([x, y, z, dim[0], dim[1], dim[2], yaw, vel[0], vel[1]], 1)[keep]
    scores, labels, heading = scores[keep], labels[keep], heading[keep]
    order = np.argsort(-scores, kind="stable")
    if nms_radius:
        order = circle_nms(boxes[:, :2], scores, nms_radius, post_max_size)
    elif post_max_size:
        order = order[:post_max_size]
    return {"boxes_3d": boxes[order].astype(np.float32), "scores": scores[order].astype(np.float32),
            "labels": labels[order].astype(np.int64), "heading_norm": heading[order].astype(np.float32)}


class QueryHost:
    """``run(inputs, call_stage)``: ``inputs[input_name] (N, >max(use_dims))`` -> boxes_3d, scores, labels.

    Subclasses set ``stage`` (the graph's stage name), ``feed(voxels, num, coors)`` (the graph's inputs from the
    voxelization, numpy or tensors alike) and ``decode(outputs)``."""

    stage = ""

    def __init__(self, voxel_size, point_cloud_range, max_points, max_voxels, use_dims, out_size_factor,
                 score_threshold=0.1, nms_radius=None, post_max_size=None, input_name="points", host_device="auto"):
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
            raise ValueError(f"{type(self).__name__}: points must be (N, >{max(self.use_dims)}), "
                             f"got {tuple(points.shape)}")

    def preprocess(self, points):
        """Sweep -> the graph's feed, numpy (the reference path)."""
        points = np.asarray(points, np.float32)
        self._check(points)
        return self.feed(*voxelize(points[:, self.use_dims], self.voxel_size, self.pcr, self.max_points,
                                   self.max_voxels))

    def preprocess_torch(self, points, device=None):
        """``preprocess`` in PyTorch on ``device`` (default: the host device): tensors, bit-identical."""
        import torch

        from .voxelize_torch import voxelize_torch

        device = device or self.device or torch.device("cpu")
        points = on_device(points, device).to(torch.float32)
        self._check(points)
        return self.feed(*voxelize_torch(points[:, torch.tensor(self.use_dims, device=device)], self.voxel_size,
                                         self.pcr, self.max_points, self.max_voxels))

    def feed(self, voxels, num, coors) -> dict:
        raise NotImplementedError

    def decode(self, outs) -> dict:
        raise NotImplementedError

    def run(self, inputs, call_stage):
        if self.device is None:
            feed = self.preprocess(inputs[self.input_name])
        else:
            feed = stage_feed(self.preprocess_torch(inputs[self.input_name]))
        return self.decode(call_stage(self.stage, feed))
