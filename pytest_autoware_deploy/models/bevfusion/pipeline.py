"""BEVFusion-L's host code, as Autoware's ``autoware_bevfusion`` runs it around its single ONNX graph.

``run``: hard-voxelize the sweep (mmcv's deterministic hard voxelization, ``lidar_common/voxelize.py``; the
graph's ``coors`` are ``[z, y, x]``, AWML's ``extract_pts_inputs`` drops the batch column) -> stage
``main_body`` -> decode (TransFusionBBoxCoder: centre from BEV cells to metres, z from the bottom, exp of the
log-size, atan2 of sin/cos, score threshold; AWML's test_cfg has ``nms_type=None``, Autoware's node can add
circle NMS: ``nms_radius``). The BEV map is ``(x, y)``-ordered, so ``bbox_pred[0]`` is the x cell.
"""

from __future__ import annotations

import numpy as np

from ..lidar_common.boxes import circle_nms, empty_detections
from ..lidar_common.host_device import on_device, resolve_host_device, stage_feed, to_numpy
from ..lidar_common.voxelize import voxelize


def decode_bevfusion(outs, voxel_size, point_cloud_range, out_size_factor, score_threshold=0.1, nms_radius=None,
                     post_max_size=None):
    bbox = to_numpy(outs["bbox_pred"]).astype(np.float64)  # (10, K)
    scores = to_numpy(outs["score"]).astype(np.float64).reshape(-1)
    labels = to_numpy(outs["label_pred"]).astype(np.int64).reshape(-1)
    keep = scores >= score_threshold
    if not keep.any():
        return empty_detections()
    x = bbox[0] * out_size_factor * voxel_size[0] + point_cloud_range[0]
    y = bbox[1] * out_size_factor * voxel_size[1] + point_cloud_range[1]
    dim = np.exp(bbox[3:6])
    z = bbox[2] - dim[2] / 2
    yaw = np.arctan2(bbox[6], bbox[7])
    boxes = np.stack([x, y, z, dim[0], dim[1], dim[2], yaw, bbox[8], bbox[9]], 1)[keep]
    scores, labels = scores[keep], labels[keep]
    order = np.argsort(-scores, kind="stable")
    if nms_radius:
        order = circle_nms(boxes[:, :2], scores, nms_radius, post_max_size)
    elif post_max_size:
        order = order[:post_max_size]
    return {"boxes_3d": boxes[order].astype(np.float32), "scores": scores[order].astype(np.float32),
            "labels": labels[order].astype(np.int64)}


class BEVFusionLidarPipeline:
    """``run(inputs, call_stage)``: ``inputs['points'] (N, >=4)`` float32 -> boxes_3d (M, 9), scores, labels."""

    def __init__(self, voxel_size=(0.17, 0.17, 0.2), point_cloud_range=(-122.4, -122.4, -3.0, 122.4, 122.4, 5.0),
                 max_points=10, max_voxels=160000, use_dims=(0, 1, 2, 3, 4), out_size_factor=8, score_threshold=0.1,
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
            raise ValueError(f"BEVFusionLidarPipeline: points must be (N, >{max(self.use_dims)}), "
                             f"got {tuple(points.shape)}")

    def preprocess(self, points):
        """Sweep -> the graph's ``voxels / coors ([z, y, x]) / num_points_per_voxel``, numpy."""
        points = np.asarray(points, np.float32)
        self._check(points)
        voxels, num, coors = voxelize(points[:, self.use_dims], self.voxel_size, self.pcr, self.max_points,
                                      self.max_voxels)
        return {"voxels": voxels, "coors": np.ascontiguousarray(coors[:, 1:]), "num_points_per_voxel": num}

    def preprocess_torch(self, points, device=None):
        """``preprocess`` in PyTorch on ``device`` (default: the host device): tensors, bit-identical."""
        import torch

        from ..lidar_common.voxelize_torch import voxelize_torch

        device = device or self.device or torch.device("cpu")
        points = on_device(points, device).to(torch.float32)
        self._check(points)
        voxels, num, coors = voxelize_torch(points[:, torch.tensor(self.use_dims, device=device)], self.voxel_size,
                                            self.pcr, self.max_points, self.max_voxels)
        return {"voxels": voxels, "coors": coors[:, 1:].contiguous(), "num_points_per_voxel": num}

    def run(self, inputs, call_stage):
        if self.device is None:
            feed = self.preprocess(inputs[self.input_name])
        else:
            feed = stage_feed(self.preprocess_torch(inputs[self.input_name]))
        outs = call_stage("main_body", feed)
        return decode_bevfusion(outs, **self.decode_kwargs)
