"""CenterPoint's host code, where Autoware's lidar_centerpoint runs it, between the two ONNX stages.

``run``: voxelize the sweep and decorate the pillars (Autoware's ``generateVoxels`` /
``generateFeatures``) -> stage ``pts_voxel_encoder`` -> scatter the pillar features onto the BEV
canvas (``scatterFeatures``) -> stage ``pts_backbone_neck_head`` -> decode (sigmoid heatmap, top-K,
score threshold, exp of the log-size, atan2 of sin/cos) and circle NMS (``postprocess``).
The same code drives PyTorch, ONNX Runtime or TensorRT through ``call_stage``.
"""

from __future__ import annotations

import numpy as np

from ..lidar_common.boxes import circle_nms, empty_detections, sigmoid, yaw_from_heading
from ..lidar_common.host_device import on_device, resolve_host_device, to_numpy
from ..lidar_common.voxelize import grid_shape, pillar_features, scatter, voxelize


def select_peaks(flat, k):
    """Indices of the ``k`` largest heatmap logits, by logit descending, ties by index ascending.

    Deterministic where ``argpartition`` is not: the empty part of a BEV canvas gives many cells the same
    logit, and which of them fill the last places must not depend on the selection algorithm (the torch
    path, ``select_peaks_torch``, picks the same ones). Ordering by logit also orders by score (the
    sigmoid is monotonic) and splits scores that the float64 sigmoid rounds to the same value."""
    flat = np.asarray(flat)
    k = min(int(k), flat.size)
    if k <= 0:
        return np.zeros((0,), np.int64)
    kth = np.partition(flat, flat.size - k)[flat.size - k]  # the k-th largest logit
    above = np.flatnonzero(flat > kth)
    above = above[np.argsort(-flat[above], kind="stable")]
    ties = np.flatnonzero(flat == kth)[:k - len(above)]
    return np.concatenate([above, ties]).astype(np.int64)


def select_peaks_torch(flat, k):
    """``select_peaks`` on the tensor's device (only the k indices come back to the host)."""
    import torch

    k = min(int(k), flat.numel())
    if k <= 0:
        return np.zeros((0,), np.int64)
    kth = torch.topk(flat, k, sorted=False).values.min()  # values are exact whatever the algorithm
    above = torch.nonzero(flat > kth).squeeze(1)
    above = above[torch.sort(flat[above], descending=True, stable=True).indices]
    ties = torch.nonzero(flat == kth).squeeze(1)[:k - len(above)]
    return to_numpy(torch.cat([above, ties])).astype(np.int64)


def _gather(head, pix):
    """``head (1, C, H, W)`` at flat pixels ``pix`` -> ``(C, k)`` float64 on the host; a device tensor
    is gathered on its device, so only k values per channel cross to the host."""
    if isinstance(head, np.ndarray):
        return head[0].reshape(head.shape[1], -1)[:, pix].astype(np.float64)
    import torch

    idx = torch.from_numpy(pix).to(head.device)
    return to_numpy(head[0].reshape(head.shape[1], -1)[:, idx]).astype(np.float64)


def decode_centerpoint(heads, voxel_size, point_cloud_range, out_size_factor, score_threshold=0.1, max_num=500,
                       nms_radius=1.0, post_max_size=100, device=None):
    """mmdet3d's CenterPointBBoxCoder + circle NMS on one frame's head outputs (batch of one).

    ``device`` (a torch device): the top-K over the whole heatmap runs there (the heads may be numpy
    arrays or tensors); the per-candidate maths (at most ``max_num``) and the circle NMS run in float64
    numpy on both paths, so the two give bit-identical boxes."""
    logits = heads["heatmap"]
    num_cls, h, w = logits.shape[1:]
    if device is None:
        flat = np.asarray(logits[0]).reshape(-1)
        top = select_peaks(flat, max_num)
        top_logits = flat[top]
    else:
        flat = on_device(logits, device)[0].reshape(-1)
        top = select_peaks_torch(flat, max_num)
        top_logits = to_numpy(flat[on_device(top, device)])
    scores = sigmoid(top_logits)
    keep = scores >= score_threshold
    top, scores = top[keep], scores[keep]
    if not len(top):
        return empty_detections()
    cls, pix = np.divmod(top, h * w)
    ys, xs = np.divmod(pix, w)
    reg, hei, dim, rot, vel = (_gather(heads[n], pix) for n in ("reg", "height", "dim", "rot", "vel"))
    dim = np.exp(dim)
    cell_x, cell_y = out_size_factor * voxel_size[0], out_size_factor * voxel_size[1]
    x = (xs + reg[0]) * cell_x + point_cloud_range[0]
    y = (ys + reg[1]) * cell_y + point_cloud_range[1]
    z = hei[0] - dim[2] / 2  # the head predicts the gravity centre; boxes carry the bottom centre
    yaw, heading = yaw_from_heading(rot[0], rot[1])
    boxes = np.stack([x, y, z, dim[0], dim[1], dim[2], yaw, vel[0], vel[1]], 1)
    keep = circle_nms(boxes[:, :2], scores, nms_radius, post_max_size)
    return {"boxes_3d": boxes[keep].astype(np.float32), "scores": scores[keep].astype(np.float32),
            "labels": cls[keep].astype(np.int64), "heading_norm": heading[keep].astype(np.float32)}


class CenterPointPipeline:
    """``run(inputs, call_stage)``: ``inputs['points'] (N, >=4)`` float32 -> boxes_3d (M, 9), scores, labels.

    ``host_device`` ('auto' | 'numpy' | 'torch' | a torch device, ``lidar_common/host_device.py``): where
    voxelization, decoration, scatter and the heatmap top-K run; 'auto' is the GPU when there is one."""

    def __init__(self, voxel_size=(0.24, 0.24, 8.0), point_cloud_range=(-122.4, -122.4, -3.0, 122.4, 122.4, 5.0),
                 max_points=32, max_voxels=96000, use_dims=(0, 1, 2, 3), out_size_factor=2, score_threshold=0.1,
                 max_num=500, nms_radius=1.0, post_max_size=100, input_name="points", host_device="auto",
                 voxel_center_dims=3):
        self.voxel_size = [float(v) for v in voxel_size]
        self.voxel_center_dims = int(voxel_center_dims)  # 2: AWML's BackwardPillarFeatureNet decoration
        self.pcr = [float(v) for v in point_cloud_range]
        self.max_points, self.max_voxels = int(max_points), int(max_voxels)
        self.use_dims = list(use_dims)
        self.nx, self.ny, _ = grid_shape(self.pcr, self.voxel_size)
        self.decode_kwargs = dict(voxel_size=self.voxel_size, point_cloud_range=self.pcr,
                                  out_size_factor=out_size_factor, score_threshold=score_threshold, max_num=max_num,
                                  nms_radius=nms_radius, post_max_size=post_max_size)
        self.input_name = input_name
        self.device = resolve_host_device(host_device)

    def _check(self, points):
        if points.ndim != 2 or points.shape[1] <= max(self.use_dims):
            raise ValueError(f"CenterPointPipeline: points must be (N, >{max(self.use_dims)}), "
                             f"got {tuple(points.shape)}")

    def preprocess(self, points):
        """Sweep -> (decorated pillar features (V, M, C+6), coors (V, 4)), numpy (the reference path)."""
        points = np.asarray(points, np.float32)
        self._check(points)
        voxels, num, coors = voxelize(points[:, self.use_dims], self.voxel_size, self.pcr, self.max_points,
                                      self.max_voxels)
        return pillar_features(voxels, num, coors, self.voxel_size, self.pcr,
                               voxel_center_dims=self.voxel_center_dims), coors

    def preprocess_torch(self, points, device=None):
        """``preprocess`` in PyTorch on ``device`` (default: the host device): tensors, bit-identical."""
        import torch

        from ..lidar_common.voxelize_torch import pillar_features_torch, voxelize_torch

        device = device or self.device or torch.device("cpu")
        points = on_device(points, device).to(torch.float32)
        self._check(points)
        points = points[:, torch.tensor(self.use_dims, device=device)]
        voxels, num, coors = voxelize_torch(points, self.voxel_size, self.pcr, self.max_points, self.max_voxels)
        return pillar_features_torch(voxels, num, coors, self.voxel_size, self.pcr,
                                     voxel_center_dims=self.voxel_center_dims), coors

    def run(self, inputs, call_stage):
        if self.device is None:
            feats, coors = self.preprocess(inputs[self.input_name])
            pillars = call_stage("pts_voxel_encoder", {"input_features": feats})["pillar_features"]
            canvas = scatter(pillars, coors, self.nx, self.ny)
            heads = call_stage("pts_backbone_neck_head", {"spatial_features": canvas})
            return decode_centerpoint(heads, **self.decode_kwargs)
        from ..lidar_common.voxelize_torch import scatter_torch

        feats, coors = self.preprocess_torch(inputs[self.input_name])
        # tensors straight into the stages (Runner.infer keeps a tensor feed on its device): on CUDA the
        # pillars, the canvas and the heads never cross to the host; decoding gathers only top-K values
        pillars = call_stage("pts_voxel_encoder", {"input_features": feats})["pillar_features"]
        canvas = scatter_torch(on_device(pillars, self.device), coors, self.nx, self.ny)
        heads = call_stage("pts_backbone_neck_head", {"spatial_features": canvas})
        return decode_centerpoint(heads, **self.decode_kwargs, device=self.device)
