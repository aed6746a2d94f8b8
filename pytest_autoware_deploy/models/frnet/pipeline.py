"""FRNet's host code, as AWML's deploy ``Preprocessing`` and Autoware's ``autoware_lidar_frnet`` run it
around the single ONNX graph.

``frustum_group`` is AWML's ``FrustumRangePreprocessor.frustum_region_group`` (in float32, as there):
each point's range-image pixel ``(row, column)`` from its pitch and yaw over ``H x W`` frustums between
``fov_down`` and ``fov_up``, then ``unique`` over the rows of ``coors`` (sorted lexicographically, as
``torch.unique(dim=0)``) with the inverse map: the part the graph cannot do. ``run``: group -> stage
``frnet`` -> the per-point scores and ``labels`` (argmax). AWML's test pipeline also interpolates the
range image (``RangeInterpolation``: pseudo points in empty pixels, dropped after inference); it is not
part of this host (the synthetic sweeps fill their range image).
"""

from __future__ import annotations

import numpy as np


def frustum_group(points, H, W, fov_up, fov_down):
    """``points (N, >=3)`` -> ``coors (N, 3)`` [batch 0, row, col], ``voxel_coors (M, 3)``, ``inverse_map (N,)``
    (int64, as torch gives them)."""
    pts = np.asarray(points, np.float32)
    up, down = np.float32(fov_up / 180 * np.pi), np.float32(fov_down / 180 * np.pi)
    fov = abs(down) + abs(up)
    depth = np.linalg.norm(pts[:, :3], 2, axis=1).astype(np.float32)
    yaw = -np.arctan2(pts[:, 1], pts[:, 0])
    with np.errstate(invalid="ignore", divide="ignore"):
        pitch = np.arcsin(pts[:, 2] / depth)
    col = np.floor(np.float32(0.5) * (yaw / np.float32(np.pi) + np.float32(1.0)) * np.float32(W))
    row = np.floor((np.float32(1.0) - (pitch + abs(down)) / fov) * np.float32(H))
    col = np.clip(np.nan_to_num(col), 0, W - 1).astype(np.int64)
    row = np.clip(np.nan_to_num(row), 0, H - 1).astype(np.int64)
    coors = np.stack([np.zeros_like(row), row, col], 1)
    voxel_coors, inverse = np.unique(coors, axis=0, return_inverse=True)
    return coors, voxel_coors, inverse.reshape(-1).astype(np.int64)


class FRNetPipeline:
    """``run(inputs, call_stage)``: ``inputs['points'] (N, >=4)`` -> ``{output_name: (N, C), 'labels': (N,)}``.

    ``H``/``W``/``fov_up``/``fov_down``: the model config's ``data_preprocessor`` (W is the frustum width,
    AWML's ``frustum_w``); ``output_name``: the stage output holding the scores (``pred_probs`` or
    ``seg_logit``); ``use_dims``: the point features the graph takes (x, y, z, intensity).
    """

    def __init__(self, H=128, W=1024, fov_up=15.0, fov_down=-25.0, use_dims=(0, 1, 2, 3), output_name="pred_probs",
                 stage="frnet", input_name="points", sort_points=False, max_points_per_frustum=None):
        self.H, self.W = int(H), int(W)
        self.fov_up, self.fov_down = float(fov_up), float(fov_down)
        if self.fov_up <= self.fov_down:
            raise ValueError(f"FRNetPipeline: fov_up {fov_up} must exceed fov_down {fov_down}")
        self.use_dims = list(use_dims)
        self.output_name, self.stage, self.input_name = output_name, stage, input_name
        # the graph's sorted_scan form (model.SegmentOps): points fed sorted by frustum, scores put back in order;
        # its scan covers frustums of up to 2**scan_steps points, checked here (max_points_per_frustum)
        self.sort_points, self.max_points_per_frustum = bool(sort_points), max_points_per_frustum

    def preprocess(self, points):
        points = np.asarray(points, np.float32)
        if points.ndim != 2 or points.shape[1] <= max(self.use_dims):
            raise ValueError(f"FRNetPipeline: points must be (N, >{max(self.use_dims)}), got {tuple(points.shape)}")
        coors, voxel_coors, inverse = frustum_group(points, self.H, self.W, self.fov_up, self.fov_down)
        feed = {"points": np.ascontiguousarray(points[:, self.use_dims]), "coors": coors, "voxel_coors": voxel_coors,
                "inverse_map": inverse}
        if self.max_points_per_frustum is not None and len(inverse):
            worst = int(np.bincount(inverse).max())
            if worst > int(self.max_points_per_frustum):
                raise ValueError(f"FRNetPipeline: a frustum holds {worst} points, more than max_points_per_frustum="
                                 f"{self.max_points_per_frustum} (the graph's segmented scan covers 2**scan_steps "
                                 "points: raise model.kwargs.scan_steps)")
        return feed

    @staticmethod
    def sort_by_frustum(feed):
        """The feed with its points in frustum order (stable) and that order: what the sorted_scan graph takes."""
        order = np.argsort(feed["inverse_map"], kind="stable")
        return {**feed, **{k: np.ascontiguousarray(feed[k][order]) for k in ("points", "coors", "inverse_map")}}, order

    def run(self, inputs, call_stage):
        feed, order = self.preprocess(inputs[self.input_name]), None
        if self.sort_points:
            feed, order = self.sort_by_frustum(feed)
        outs = call_stage(self.stage, feed)
        if self.output_name not in outs:
            raise KeyError(f"FRNetPipeline: stage '{self.stage}' returned {sorted(outs)}, no '{self.output_name}' "
                           "(pipeline.kwargs.output_name must be the stage's score output)")
        scores = np.asarray(outs[self.output_name])
        if order is not None:  # back to the input's point order
            unsorted = np.empty_like(scores)
            unsorted[order] = scores
            scores = unsorted
        return {self.output_name: scores, "labels": scores.argmax(-1).astype(np.int64)}
