"""BEVFusion-L's host code, as Autoware's ``autoware_bevfusion`` runs it around its single ONNX graph.

``run``: hard-voxelize the sweep (mmcv's deterministic hard voxelization, ``lidar_common/voxelize.py``; the
graph's ``coors`` are ``[z, y, x]``, AWML's ``extract_pts_inputs`` drops the batch column) -> stage
``main_body`` -> decode (TransFusionBBoxCoder: centre from BEV cells to metres, z from the bottom, exp of the
log-size, atan2 of sin/cos, score threshold; AWML's test_cfg has ``nms_type=None``, Autoware's node can add
circle NMS: ``nms_radius``). The BEV map is ``(x, y)``-ordered, so ``bbox_pred[0]`` is the x cell.
"""

from __future__ import annotations

import numpy as np

from ..lidar_common.host_device import to_numpy
from ..lidar_common.query_host import QueryHost, decode_queries


def decode_bevfusion(outs, voxel_size, point_cloud_range, out_size_factor, score_threshold=0.1, nms_radius=None,
                     post_max_size=None):
    bbox = to_numpy(outs["bbox_pred"]).astype(np.float64)  # (10, K)
    scores = to_numpy(outs["score"]).astype(np.float64).reshape(-1)
    labels = to_numpy(outs["label_pred"]).astype(np.int64).reshape(-1)
    return decode_queries(bbox[0:2], bbox[2], bbox[3:6], bbox[6], bbox[7], bbox[8:10], scores, labels,
                          voxel_size, point_cloud_range,
                          out_size_factor, score_threshold, nms_radius, post_max_size)


class BEVFusionLidarPipeline(QueryHost):
    """``run(inputs, call_stage)``: ``inputs['points'] (N, >=4)`` float32 -> boxes_3d (M, 9), scores, labels."""

    stage = "main_body"

    def __init__(self, voxel_size=(0.17, 0.17, 0.2), point_cloud_range=(-122.4, -122.4, -3.0, 122.4, 122.4, 5.0),
                 max_points=10, max_voxels=160000, use_dims=(0, 1, 2, 3, 4), out_size_factor=8, **kwargs):
        super().__init__(voxel_size, point_cloud_range, max_points, max_voxels, use_dims, out_size_factor, **kwargs)

    def feed(self, voxels, num, coors):
        """The graph's ``voxels / coors ([z, y, x]: the batch column dropped) / num_points_per_voxel``."""
        coors = coors[:, 1:]
        coors = coors.contiguous() if hasattr(coors, "contiguous") else np.ascontiguousarray(coors)
        return {"voxels": voxels, "coors": coors, "num_points_per_voxel": num}

    def decode(self, outs):
        return decode_bevfusion(outs, **self.decode_kwargs)
