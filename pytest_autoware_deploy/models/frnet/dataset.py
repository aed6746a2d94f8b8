"""AWML/T4 lidarseg info files read safely, turned into samples of one labelled sweep each.

``info.pkl``: ``{"metainfo": {"classes": [...], "ignore_index": k}, "data_list": [entry, ...]}`` with
``entry["lidar_points"] = {lidar_path, num_pts_feats}`` and ``entry["pts_semantic_mask_path"]`` (uint8 per
point, mmdet3d's ``LoadAnnotations3D(seg_3d_dtype=np.uint8)``). Read through the calibration family's
safe unpickler. A sample: ``{"inputs": {"points": (N, num_pts_feats) float32}, "target": {"labels": (N,)
int64, "token": str}}``; a mask whose length differs from the cloud's is one error naming both files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..calibration_status_classification.dataset import InfoFileError, _read_points, load_info


class LidarSegSamples:
    def __init__(self, info_pkl, data_root=None, num_samples=None, input_name="points"):
        self.info_pkl = Path(info_pkl)
        info = load_info(self.info_pkl)
        entries = info.get("data_list")
        if not isinstance(entries, list):
            raise InfoFileError(f"info file {self.info_pkl}: expected a 'data_list' list of frames")
        self.entries = entries[:num_samples] if num_samples is not None else entries
        self.metainfo = info.get("metainfo") or {}
        self.root = Path(data_root) if data_root else self.info_pkl.parent
        self.input_name = input_name

    def __len__(self):
        return len(self.entries)

    def _path(self, rel):
        return Path(rel) if Path(rel).is_absolute() else self.root / rel

    def __getitem__(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        entry = self.entries[index]
        where = f"info file {self.info_pkl}: data_list[{index}]"
        try:
            lidar = entry["lidar_points"]
            rel, feats = lidar["lidar_path"], int(lidar.get("num_pts_feats", 5))
            mask_rel = entry["pts_semantic_mask_path"]
        except (KeyError, TypeError) as exc:
            raise InfoFileError(f"{where} lacks {exc} (needs lidar_points.lidar_path and pts_semantic_mask_path)") \
                from None
        path, mask_path = self._path(rel), self._path(mask_rel)
        for p in (path, mask_path):
            if not p.is_file():
                raise InfoFileError(f"{where}: {p} not found")
        points = _read_points(path, feats)
        labels = np.fromfile(mask_path, dtype=np.uint8).astype(np.int64)
        if len(labels) != len(points):
            raise InfoFileError(f"{where}: {mask_path} has {len(labels)} labels, {path} has {len(points)} points "
                                "(expected one uint8 label per point)")
        token = str(entry.get("token", entry.get("sample_idx", index)))
        return {"inputs": {self.input_name: points}, "target": {"labels": labels, "token": token}}


def load_samples(info_pkl, data_root=None, num_samples=None):
    """The family's ``data.loader``."""
    return LidarSegSamples(info_pkl, data_root=data_root, num_samples=num_samples)
