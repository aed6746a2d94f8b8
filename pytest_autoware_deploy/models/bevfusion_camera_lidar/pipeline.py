"""BEVFusion-CL's host code, as Autoware's ``autoware_bevfusion`` runs it around its two graphs.

Once per calibration (cached on its bytes): ``camera_geometry.precompute`` -> ``lidar2image``, ``img_aug_matrix``,
``geom_feats``, ``kept``, ``ranks``, ``indices`` (inverses and the argsort stay on the host). Per frame: stage
``image_backbone`` (``imgs`` uint8 -> ``image_feats``), hard voxelization of the sweep (the lidar-only host), stage
``main_body`` with the voxels, the geometry and ``image_feats``, then the TransFusion box decoding.
"""

from __future__ import annotations

import numpy as np

from ..bevfusion.camera_geometry import precompute
from ..bevfusion.pipeline import BEVFusionLidarPipeline
from ..lidar_common.host_device import stage_feed


class BEVFusionCameraLidarPipeline(BEVFusionLidarPipeline):
    """``run(inputs, call_stage)``: ``points``, ``imgs (N, 3, H, W)`` uint8, ``cam2img``/``lidar2cam (N, 4, 4)``."""

    def __init__(self, image_size, feature_size, xbound, ybound, zbound, dbound, rank_strides="awml", **kwargs):
        super().__init__(**kwargs)
        self.geometry_kwargs = dict(image_size=list(image_size), feature_size=list(feature_size), xbound=list(xbound),
                                    ybound=list(ybound), zbound=list(zbound), dbound=list(dbound),
                                    rank_strides=rank_strides)
        self._geometry = {}

    def geometry(self, cam2img, lidar2cam):
        """The precomputed main-body inputs of a calibration (identity image augmentation: images are fed at the
        graph's size), computed once per distinct calibration."""
        cam2img, lidar2cam = np.asarray(cam2img, np.float32), np.asarray(lidar2cam, np.float32)
        key = cam2img.tobytes() + lidar2cam.tobytes()
        if key not in self._geometry:
            aug = np.tile(np.eye(4, dtype=np.float32), (len(cam2img), 1, 1))
            self._geometry[key] = precompute(lidar2cam, cam2img, aug, **self.geometry_kwargs)
        return self._geometry[key]

    def run(self, inputs, call_stage):
        imgs = inputs["imgs"]
        h, w = self.geometry_kwargs["image_size"]
        if tuple(imgs.shape[-2:]) != (h, w) or imgs.shape[1] != 3:
            raise ValueError(f"{type(self).__name__}: imgs must be (N, 3, {h}, {w}) (the graph's image_size), got "
                             f"{tuple(imgs.shape)}")
        feats = call_stage("image_backbone", {"imgs": imgs})["image_feats"]
        geo = self.geometry(inputs["cam2img"], inputs["lidar2cam"])
        if self.device is None:
            feed = self.preprocess(inputs[self.input_name])
        else:
            feed = stage_feed(self.preprocess_torch(inputs[self.input_name]))
        feed.update(geo)
        feed["image_feats"] = feats
        return self.decode(call_stage("main_body", feed))
