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

from ..lidar_common.host_device import to_numpy
from ..lidar_common.query_host import QueryHost, decode_queries


def decode_transfusion(outs, voxel_size, point_cloud_range, out_size_factor, score_threshold=0.1, nms_radius=None,
                       post_max_size=None):
    scores_all = to_numpy(outs["cls_score0"][0]).astype(np.float64)  # (C, P)
    bbox = to_numpy(outs["bbox_pred0"][0]).astype(np.float64)  # (8, P): centre 2, height 1, log dim 3, vel 2
    rot = to_numpy(outs["dir_cls_pred0"][0]).astype(np.float64)  # (2, P): sin, cos
    return decode_queries(bbox[0:2], bbox[2], bbox[3:6], rot[0], rot[1], bbox[6:8], scores_all.max(0),
                          scores_all.argmax(0), voxel_size, point_cloud_range,
                          out_size_factor, score_threshold, nms_radius, post_max_size)


class TransFusionPipeline(QueryHost):
    """``run(inputs, call_stage)``: ``inputs['points'] (N, >=4)`` float32 -> boxes_3d (M, 9), scores, labels."""

    stage = "end2end"

    def __init__(self, voxel_size=(0.24, 0.24, 10.0), point_cloud_range=(-92.16, -92.16, -3.0, 92.16, 92.16, 7.0),
                 max_points=20, max_voxels=60000, use_dims=(0, 1, 2, 3, 4), out_size_factor=4, **kwargs):
        super().__init__(voxel_size, point_cloud_range, max_points, max_voxels, use_dims, out_size_factor, **kwargs)

    def feed(self, voxels, num, coors):
        """The graph's ``voxels / num_points / coors``."""
        return {"voxels": voxels, "num_points": num, "coors": coors}

    def decode(self, outs):
        return decode_transfusion(outs, **self.decode_kwargs)
