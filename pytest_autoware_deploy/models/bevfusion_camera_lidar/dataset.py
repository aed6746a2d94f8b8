"""Camera+lidar samples of a T4-style info file: the lidar family's sweep and targets plus each camera's image and
calibration (``synthetic.py`` writes such a file).

A sample's ``inputs``: ``points (P, num_pts_feats)`` float32, ``imgs (N, 3, H, W)`` uint8 (as stored, RGB; AWML's
image-backbone graph normalises inside), ``cam2img (N, 4, 4)`` and ``lidar2cam (N, 4, 4)`` float32 in the order of
``cameras`` (default: ``metainfo.cameras``). ``target`` as ``lidar_common/dataset.py``.
"""

from __future__ import annotations

import numpy as np

from ..calibration_status_classification.dataset import InfoFileError
from ..lidar_common.dataset import LidarSamples


class CameraLidarSamples(LidarSamples):
    def __init__(self, info_pkl, data_root=None, num_samples=None, classes=None, cameras=None):
        super().__init__(info_pkl, data_root=data_root, num_samples=num_samples, classes=classes)
        from ..calibration_status_classification.dataset import load_info

        meta = load_info(self.info_pkl).get("metainfo") or {}
        self.cameras = list(cameras or meta.get("cameras") or [])
        if not self.cameras:
            raise InfoFileError(f"info file {self.info_pkl}: no cameras (metainfo.cameras is empty and the spec's "
                                f"data.kwargs.cameras is not set)")

    def _camera(self, entry, index, cam):
        from PIL import Image

        where = f"info file {self.info_pkl}: data_list[{index}].images.{cam}"
        try:
            info = entry["images"][cam]
            rel, cam2img, lidar2cam = info["img_path"], np.asarray(info["cam2img"]), np.asarray(info["lidar2cam"])
        except (KeyError, TypeError) as exc:
            raise InfoFileError(f"{where} lacks {exc} (needs img_path, cam2img, lidar2cam)") from None
        if cam2img.shape not in ((3, 3), (4, 4)) or lidar2cam.shape != (4, 4):
            raise InfoFileError(f"{where}: cam2img must be 3x3 or 4x4 and lidar2cam 4x4, got {cam2img.shape}, "
                                f"{lidar2cam.shape}")
        path = self.root / rel
        if not path.is_file():
            raise InfoFileError(f"{where}: image {path} not found")
        k = np.eye(4)
        k[:cam2img.shape[0], :cam2img.shape[1]] = cam2img
        img = np.asarray(Image.open(path).convert("RGB")).transpose(2, 0, 1)
        return img, k, lidar2cam

    def __getitem__(self, index):
        sample = super().__getitem__(index)
        entry = self.entries[index]
        imgs, ks, l2c = zip(*(self._camera(entry, index, cam) for cam in self.cameras))
        if len({im.shape for im in imgs}) != 1:
            raise InfoFileError(f"info file {self.info_pkl}: data_list[{index}]: camera images differ in size "
                                f"{[im.shape for im in imgs]}; the image-backbone graph takes one size")
        sample["inputs"].update(imgs=np.ascontiguousarray(np.stack(imgs)), cam2img=np.stack(ks).astype(np.float32),
                                lidar2cam=np.stack(l2c).astype(np.float32))
        return sample


def load_samples(info_pkl, data_root=None, num_samples=None, classes=None, cameras=None):
    """The family's ``data.loader``."""
    return CameraLidarSamples(info_pkl, data_root=data_root, num_samples=num_samples, classes=classes,
                              cameras=cameras)
