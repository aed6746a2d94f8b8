"""AWML's on-disk format for CalibrationStatusClassification, read safely and turned into samples.

``info.pkl``: ``{"metainfo": {...}, "data_list": [entry, ...]}`` where an entry holds
``image = {img_path, cam2img (3x3), lidar2cam (4x4), distortion_coefficients (5,)}`` and
``lidar_points = {lidar_path, num_pts_feats}`` (float32 ``.pcd.bin``, x y z intensity ...).
Pickles can run code when loaded, so ``load_info`` only admits containers, numbers, strings
and numpy arrays; anything else is refused with the name of the offending global.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np

from .transform import CALIBRATED, MISCALIBRATED, alter_calibration, fuse_lidar_camera, to_chw_batch

_SAFE_GLOBALS = {
    ("collections", "OrderedDict"), ("collections", "defaultdict"),
    ("numpy", "ndarray"), ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "complex"),
}


class InfoFileError(ValueError):
    pass


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file, source):
        super().__init__(file)
        self.source = source

    def find_class(self, module, name):
        if (module, name) in _SAFE_GLOBALS or (module == "numpy" and name.endswith("64")):
            return super().find_class(module, name)
        raise InfoFileError(f"info file {self.source}: refuses to load global '{module}.{name}' "
                            "(only dicts, lists, numbers, strings and numpy arrays are allowed)")


def load_info(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"info file {path}: not found")
    try:
        info = _SafeUnpickler(io.BytesIO(path.read_bytes()), path).load()
    except InfoFileError:
        raise
    except Exception as exc:
        raise InfoFileError(f"info file {path}: not a readable pickle ({type(exc).__name__}: {exc})") from None
    if not isinstance(info, dict) or not isinstance(info.get("data_list"), list):
        raise InfoFileError(f"info file {path}: expected a dict with a 'data_list' list")
    return info


def _read_image_bgr(path):
    from PIL import Image

    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB"))
    return np.ascontiguousarray(rgb[..., ::-1])  # AWML reads with cv2: BGR order


def _read_points(path, num_feats):
    pts = np.fromfile(path, dtype=np.float32)
    if pts.size % num_feats:
        raise InfoFileError(f"point cloud {path}: {pts.size} floats is not a multiple of num_pts_feats={num_feats}")
    return pts.reshape(-1, num_feats)


class CalibrationSamples:
    """Indexable samples ``{"inputs": {"input": (1, 5, H, W)}, "target": 0|1}``, built on access.

    Whether sample ``i`` is miscalibrated, and how, is drawn from a generator seeded by
    ``(seed, i)``: the same index gives the same input in every process and every run.
    """

    def __init__(self, info_pkl, data_root=None, input_name="input", miscalibration_probability=0.5,
                 seed=0, num_samples=None, lidar_range=128.0, dilation_size=1, mean=None, std=None,
                 min_angle=1.0, max_angle=10.0, min_radius=0.05, max_radius=0.2):
        self.info_pkl = Path(info_pkl)
        self.entries = load_info(self.info_pkl)["data_list"]
        if num_samples is not None:
            self.entries = self.entries[:num_samples]
        self.root = Path(data_root) if data_root else self.info_pkl.parent
        self.input_name = input_name
        self.p_mis = miscalibration_probability
        self.seed = seed
        self.lidar_range = lidar_range
        self.dilation = dilation_size
        self.mean, self.std = mean, std
        self.noise = dict(min_angle=min_angle, max_angle=max_angle, min_radius=min_radius, max_radius=max_radius)

    def __len__(self):
        return len(self.entries)

    def _path(self, rel):
        p = Path(rel)
        return p if p.is_absolute() else self.root / p

    def fused(self, index):
        """(H, W, 5) fused array and label for entry ``index``."""
        entry = self.entries[index]
        try:
            cam, lidar = entry["image"], entry["lidar_points"]
            cam2img = np.asarray(cam["cam2img"], np.float64)
            lidar2cam = np.asarray(cam["lidar2cam"], np.float64)
            dist = np.asarray(cam.get("distortion_coefficients", np.zeros(5)), np.float64)
            img_path, lidar_path = cam["img_path"], lidar["lidar_path"]
        except (KeyError, TypeError) as exc:
            raise InfoFileError(f"info file {self.info_pkl}: data_list[{index}] lacks {exc}") from None
        if cam2img.shape != (3, 3) or lidar2cam.shape != (4, 4):
            raise InfoFileError(f"info file {self.info_pkl}: data_list[{index}]: cam2img must be 3x3 and lidar2cam "
                                f"4x4, got {cam2img.shape} and {lidar2cam.shape}")
        if np.any(dist):
            raise InfoFileError(f"info file {self.info_pkl}: data_list[{index}] has non-zero distortion "
                                "coefficients; undistortion (cv2.undistort in AWML) is not implemented here")
        image = _read_image_bgr(self._path(img_path))
        points = _read_points(self._path(lidar_path), int(lidar.get("num_pts_feats", 5)))
        rng = np.random.default_rng([self.seed, index])
        label = CALIBRATED
        if rng.random() < self.p_mis or self.p_mis == 1.0:
            lidar2cam = alter_calibration(lidar2cam, rng, **self.noise)
            label = MISCALIBRATED
        fused = fuse_lidar_camera(image, points[:, :3], points[:, 3], lidar2cam, cam2img,
                                  self.lidar_range, self.dilation)
        return fused, label

    def __getitem__(self, index):
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        fused, label = self.fused(index % len(self))
        return {"inputs": {self.input_name: to_chw_batch(fused, self.mean, self.std)}, "target": label}


def load_samples(info_pkl, **kwargs):
    """Data loader named by the family: ``data.kwargs`` go to ``CalibrationSamples``."""
    return CalibrationSamples(info_pkl, **kwargs)
