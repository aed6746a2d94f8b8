"""Synthetic camera+lidar frames for BEVFusion-CL: one lidar sweep and five camera images of the same objects.

The lidar scene and its ray casting are the shared lidar family's (``lidar_common/synthetic.py``: lidar at the
origin 1.8 m above the ground, objects within +-``max_range``); the cameras are StreamPETR's synthetic rig
(``streampetr/synthetic.py``: five pinhole cameras 72 degrees apart, 1.6 m above the ground, objects drawn as their
projected box hulls) placed in the lidar frame. ``info_<split>.pkl`` holds T4-style ``data_list`` entries: the
lidar family's keys (``lidar_points``, ``instances``) plus ``images.<CAM>`` = {img_path, cam2img (3x3),
lidar2cam (4x4), height, width}, the calibration Autoware's node reads from CameraInfo and TF. Same arguments,
same bytes.

    python -m pytest_autoware_deploy.models.bevfusion_camera_lidar.synthetic --out DIR [--splits train val]
    python -m pytest_autoware_deploy.models.bevfusion_camera_lidar.synthetic --out DIR --frames 2 \
        --height 384 --width 768 --cameras 6     # the full-size spec's split (T4's six cameras)
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

from ..lidar_common.synthetic import CLASSES, LIDAR_HEIGHT, random_scene, render
from ..streampetr.synthetic import CAMERAS, camera_calibration, render_camera

# T4's six-camera layout (front, front-right, back-right, back, back-left, front-left; 60 degrees apart, 70 degree
# field of view) for the full-size spec; the demo uses StreamPETR's five-camera rig
SIX_CAMERAS = (("CAM_FRONT", 0.0), ("CAM_FRONT_RIGHT", -60.0), ("CAM_BACK_RIGHT", -120.0), ("CAM_BACK", 180.0),
               ("CAM_BACK_LEFT", 120.0), ("CAM_FRONT_LEFT", 60.0))
SPLITS = {"train": 160, "val": 24}
SEEDS = {"train": 21, "val": 22}
IMAGE_SIZE = (64, 128)  # height, width
MAX_RANGE = 32.0


def camera_rig(cameras):
    """``(names, yaws in degrees, horizontal field of view)`` of a rig of 5 (StreamPETR's) or 6 (T4's) cameras."""
    if cameras == 5:
        from ..streampetr.synthetic import CAMERA_YAWS_DEG, HFOV_DEG

        return list(CAMERAS), list(CAMERA_YAWS_DEG), HFOV_DEG
    if cameras == 6:
        return [c for c, _ in SIX_CAMERAS], [y for _, y in SIX_CAMERAS], 70.0
    raise ValueError(f"cameras must be 5 (StreamPETR's rig) or 6 (T4's layout), got {cameras}")


def lidar_calibration(height, width, cameras=5):
    """Per camera ``(cam2img 3x3, lidar2cam 4x4)``: the rig's cameras, the ego frame lowered to the lidar origin."""
    _, yaws, hfov = camera_rig(cameras)
    out = []
    for cam2img, cam2ego in camera_calibration(height, width, yaws, hfov):
        cam2lidar = np.array(cam2ego, np.float64)
        cam2lidar[2, 3] -= LIDAR_HEIGHT
        out.append((cam2img, np.linalg.inv(cam2lidar)))
    return out


def write_split(out, split, count, seed, height=IMAGE_SIZE[0], width=IMAGE_SIZE[1], max_range=MAX_RANGE, cameras=5):
    """Write ``count`` frames (a sweep and one PNG per camera each) and ``info_<split>.pkl``; returns its path."""
    from PIL import Image

    out = Path(out)
    (out / "lidar").mkdir(parents=True, exist_ok=True)
    (out / "images" / split).mkdir(parents=True, exist_ok=True)
    calib = lidar_calibration(height, width, cameras)
    names = camera_rig(cameras)[0]
    data_list = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        objects = random_scene(rng, max_range)
        points, counts = render(objects, rng, max_range)
        token = f"{split}_{i:05d}"
        rel = f"lidar/{token}.pcd.bin"
        points.tofile(out / rel)
        boxes = [o["box"] for o in objects]
        labels = [int(o["label"]) for o in objects]
        images = {}
        for cam, (cam2img, lidar2cam) in zip(names, calib):
            img, _ = render_camera(boxes, labels, cam2img, lidar2cam, height, width, rng)
            img_rel = f"images/{split}/{token}_{cam}.png"
            Image.fromarray(img).save(out / img_rel)
            images[cam] = dict(img_path=img_rel, cam2img=cam2img.tolist(), lidar2cam=lidar2cam.tolist(),
                               height=height, width=width)
        instances = [dict(bbox_3d=[float(v) for v in o["box"]], bbox_label_3d=int(o["label"]), velocity=[0.0, 0.0],
                          num_lidar_pts=int(n), bbox_3d_isvalid=bool(n > 0)) for o, n in zip(objects, counts)]
        data_list.append(dict(sample_idx=i, token=token, timestamp=float(i) * 0.1,
                              lidar_points=dict(lidar_path=rel, num_pts_feats=5), images=images,
                              instances=instances))
    info = dict(metainfo=dict(classes=list(CLASSES), cameras=names, version="synthetic-t4-camera-lidar"),
                data_list=data_list)
    path = out / f"info_{split}.pkl"
    tmp = path.with_suffix(".pkl.tmp")
    tmp.write_bytes(pickle.dumps(info, protocol=4))
    tmp.replace(path)
    return path


def write_demo_split(out_dir, frames):
    """The family's small val split for tests and CI: ``(spec key, info path)``."""
    return "runtime_io.info_pkl", write_split(Path(out_dir), "val", int(frames), SEEDS["val"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--splits", nargs="*", default=["val"], choices=list(SPLITS))
    ap.add_argument("--frames", type=int, default=None, help="frames per split (default: train 160, val 24)")
    ap.add_argument("--height", type=int, default=IMAGE_SIZE[0])
    ap.add_argument("--width", type=int, default=IMAGE_SIZE[1])
    ap.add_argument("--cameras", type=int, default=5, choices=[5, 6], help="StreamPETR's rig (5) or T4's (6)")
    args = ap.parse_args(argv)
    for split in args.splits:
        print(write_split(args.out, split, args.frames or SPLITS[split], SEEDS[split], args.height, args.width,
                          cameras=args.cameras))


if __name__ == "__main__":
    main()
