"""AWML/T4 3D-detection info files read safely, turned into samples of one lidar sweep each.

``info.pkl`` (mmdet3d 1.x layout, as AWML's T4 converters write it): ``{"metainfo": {"classes": [...]},
"data_list": [entry, ...]}`` with ``entry["lidar_points"] = {lidar_path, num_pts_feats}`` and
``entry["instances"] = [{bbox_3d: [x, y, z_bottom, l, w, h, yaw], bbox_label_3d, velocity?}, ...]``.
The pickle is read with the calibration family's unpickler, which admits only containers, numbers,
strings and numpy arrays (a malicious file cannot run code).

A sample: ``{"inputs": {"points": (N, num_pts_feats) float32}, "target": {"boxes_3d": (n, 9)
[x, y, z_bottom, l, w, h, yaw, vx, vy], "labels": (n,) int, "num_points": (n,) lidar points on each
object (``num_lidar_pts``; 1 when absent), "token": str}}``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..calibration_status_classification.dataset import InfoFileError, _read_points, load_info


def _target(entry, where, label_map):
    boxes, labels, npts = [], [], []
    for k, inst in enumerate(entry.get("instances", [])):
        try:
            box = [float(v) for v in inst["bbox_3d"]]
            label = int(inst["bbox_label_3d"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InfoFileError(f"{where}.instances[{k}]: needs bbox_3d (7 numbers) and bbox_label_3d ({exc})") from None
        if len(box) != 7:
            raise InfoFileError(f"{where}.instances[{k}].bbox_3d: expected 7 numbers [x, y, z, l, w, h, yaw], "
                                f"got {len(box)}")
        if label < 0 or (label_map is not None and label not in label_map):
            continue  # ignored class (mmdet3d marks them -1)
        vel = [float(v) for v in inst.get("velocity", [0.0, 0.0])][:2]
        boxes.append(box + (vel if len(vel) == 2 and np.all(np.isfinite(vel)) else [0.0, 0.0]))
        labels.append(label if label_map is None else label_map[label])
        npts.append(int(inst.get("num_lidar_pts", 1)))
    return {"boxes_3d": np.asarray(boxes, np.float32).reshape(-1, 9), "labels": np.asarray(labels, np.int64),
            "num_points": np.asarray(npts, np.int64)}


class LidarSamples:
    """Indexable samples of an info file; the point cloud is read on access.

    ``classes`` (optional) selects and re-orders the info file's ``metainfo.classes`` for the model:
    instances of other classes are dropped from the target.
    """

    def __init__(self, info_pkl, data_root=None, num_samples=None, classes=None, input_name="points"):
        self.info_pkl = Path(info_pkl)
        info = load_info(self.info_pkl)
        self.entries = info["data_list"][:num_samples] if num_samples is not None else info["data_list"]
        self.root = Path(data_root) if data_root else self.info_pkl.parent
        self.input_name = input_name
        file_classes = list((info.get("metainfo") or {}).get("classes") or [])
        self.label_map = None
        if classes is not None:
            if not set(classes) & set(file_classes):
                raise InfoFileError(f"info file {self.info_pkl}: metainfo.classes {file_classes} has none of the "
                                    f"model's classes {list(classes)}")
            # a model class the data lacks simply has no ground truth here
            self.label_map = {file_classes.index(c): i for i, c in enumerate(classes) if c in file_classes}

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        entry = self.entries[index]
        where = f"info file {self.info_pkl}: data_list[{index}]"
        try:
            lidar = entry["lidar_points"]
            rel, feats = lidar["lidar_path"], int(lidar.get("num_pts_feats", 5))
        except (KeyError, TypeError) as exc:
            raise InfoFileError(f"{where} lacks lidar_points.{exc}") from None
        path = Path(rel) if Path(rel).is_absolute() else self.root / rel
        if not path.is_file():
            raise InfoFileError(f"{where}: point cloud {path} not found")
        target = _target(entry, where, self.label_map)
        target["token"] = str(entry.get("token", entry.get("sample_idx", index)))
        return {"inputs": {self.input_name: _read_points(path, feats)}, "target": target}


def load_samples(info_pkl, data_root=None, num_samples=None, classes=None):
    """The families' ``data.loader``."""
    return LidarSamples(info_pkl, data_root=data_root, num_samples=num_samples, classes=classes)
