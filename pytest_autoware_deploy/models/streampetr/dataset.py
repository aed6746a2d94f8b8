"""AWML/T4 multi-camera info files read safely, turned into StreamPETR samples of one keyframe each.

``info.pkl`` (synthetic.py writes one): ``data_list`` entries with ``scene_token``, ``timestamp``,
``ego2global`` and ``images.<CAM>`` = {img_path, cam2img, lidar2cam}; ``instances`` as the lidar
families read them (``lidar_common/dataset.py``). Frames are ordered by (scene, timestamp), so the index
order is time order within a scene. The pickle goes through the calibration family's safe unpickler.

A sample's ``inputs`` (all with the batch axis of one):

- ``img (1, N, 3, H, W)`` float32: BGR, AWML's mean/std (103.53, 116.28, 123.675 / 57.375, 57.12, 58.395)
- ``lidar2img (1, N, 4, 4)`` and ``intrinsics (1, N, 4, 4)`` float32 (cam2img made homogeneous)
- ``ego2global (1, 4, 4)`` float64 and ``timestamp (1,)`` float64 (seconds)
- ``frame_index (1,)``, ``sequence_start (1,)`` (the split index of the scene's first frame) and
  ``split_key (1,)`` int64: where the host finds the earlier frames of the sequence (``frames_of``) when
  it must rebuild its memory for a frame asked out of order.

``target``: ``boxes_3d (n, 9)`` [x, y, z_bottom, l, w, h, yaw, vx, vy], ``labels``, ``token``.
"""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np

from ..calibration_status_classification.dataset import InfoFileError, _read_image_bgr, load_info
from ..lidar_common.dataset import _target

MEAN = np.array([103.530, 116.280, 123.675], np.float32)  # BGR, AWML's img_norm_cfg
STD = np.array([57.375, 57.120, 58.395], np.float32)

_OPEN: dict[int, "StreamPETRSamples"] = {}  # split_key -> the samples object (host replay, same process)


def frames_of(split_key: int) -> "StreamPETRSamples":
    try:
        return _OPEN[int(split_key)]
    except KeyError:
        raise InfoFileError(f"StreamPETR: no split with split_key {int(split_key)} was loaded in this process; the "
                            "host rebuilds a sequence's memory from the frames the data loader serves") from None


class StreamPETRSamples:
    """Indexable keyframes of an info file; images are read on access.

    ``cameras``: the info's camera names in the graph's camera order (default: ``metainfo.cameras``).
    ``classes`` selects/reorders ``metainfo.classes``. ``num_scenes`` keeps the first scenes only (whole
    sequences, never a cut one).
    """

    def __init__(self, info_pkl, data_root=None, classes=None, cameras=None, num_scenes=None):
        self.info_pkl = Path(info_pkl).resolve()
        info = load_info(self.info_pkl)
        entries = list(info["data_list"])
        meta = info.get("metainfo") or {}
        self.cameras = list(cameras or meta.get("cameras") or [])
        if not self.cameras:
            raise InfoFileError(f"info file {self.info_pkl}: metainfo.cameras is empty and no cameras= given")
        for i, e in enumerate(entries):
            for key in ("scene_token", "timestamp", "ego2global", "images"):
                if key not in e:
                    raise InfoFileError(f"info file {self.info_pkl}: data_list[{i}] lacks {key!r} (a camera "
                                        "sequence split needs scene_token, timestamp, ego2global, images)")
        order = sorted(range(len(entries)), key=lambda i: (str(entries[i]["scene_token"]),
                                                           float(entries[i]["timestamp"])))
        entries = [entries[i] for i in order]
        scenes = list(dict.fromkeys(e["scene_token"] for e in entries))
        if num_scenes is not None:
            keep = set(scenes[:num_scenes])
            entries = [e for e in entries if e["scene_token"] in keep]
        self.entries = entries
        self.root = Path(data_root) if data_root else self.info_pkl.parent
        self.sequence_start = []
        for i, e in enumerate(entries):
            new = i == 0 or e["scene_token"] != entries[i - 1]["scene_token"]
            self.sequence_start.append(i if new else self.sequence_start[-1])
        file_classes = list(meta.get("classes") or [])
        self.label_map = None
        if classes is not None:
            self.label_map = {file_classes.index(c): i for i, c in enumerate(classes) if c in file_classes}
        self.split_key = zlib.crc32(f"{self.info_pkl}|{num_scenes}|{self.cameras}|{classes}".encode())
        _OPEN[self.split_key] = self

    def __len__(self):
        return len(self.entries)

    def sequences(self) -> list[list[int]]:
        """Index lists of each scene's frames, in time order."""
        out: dict[int, list[int]] = {}
        for i, s in enumerate(self.sequence_start):
            out.setdefault(s, []).append(i)
        return list(out.values())

    def inputs(self, index) -> dict:
        entry = self.entries[index]
        where = f"info file {self.info_pkl}: data_list[{index}]"
        imgs, l2i, intr = [], [], []
        for cam in self.cameras:
            try:
                c = entry["images"][cam]
                path = self.root / c["img_path"]
                k = np.eye(4)
                k[:3, :3] = np.asarray(c["cam2img"], np.float64)[:3, :3]
                lidar2cam = np.asarray(c["lidar2cam"], np.float64)
            except (KeyError, TypeError, ValueError) as exc:
                raise InfoFileError(f"{where}.images.{cam}: needs img_path, cam2img, lidar2cam ({exc})") from None
            if not path.is_file():
                raise InfoFileError(f"{where}.images.{cam}: image {path} not found")
            img = (_read_image_bgr(path).astype(np.float32) - MEAN) / STD
            imgs.append(img.transpose(2, 0, 1))
            l2i.append(k @ lidar2cam)
            intr.append(k)
        i64 = lambda v: np.array([v], np.int64)  # noqa: E731
        return {"img": np.stack(imgs)[None].astype(np.float32),
                "lidar2img": np.stack(l2i)[None].astype(np.float32),
                "intrinsics": np.stack(intr)[None].astype(np.float32),
                "ego2global": np.asarray(entry["ego2global"], np.float64).reshape(1, 4, 4),
                "timestamp": np.array([float(entry["timestamp"])], np.float64),
                "frame_index": i64(index), "sequence_start": i64(self.sequence_start[index]),
                "split_key": i64(self.split_key)}

    def __getitem__(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        index %= len(self)
        target = _target(self.entries[index], f"info file {self.info_pkl}: data_list[{index}]", self.label_map)
        target["token"] = str(self.entries[index].get("token", index))
        return {"inputs": self.inputs(index), "target": target}


def load_samples(info_pkl, data_root=None, classes=None, cameras=None, num_scenes=None):
    """The family's ``data.loader``."""
    return StreamPETRSamples(info_pkl, data_root=data_root, classes=classes, cameras=cameras, num_scenes=num_scenes)
