"""Deterministic synthetic multi-camera sequences in AWML's T4 info format (T4 data cannot be downloaded here).

Why sequences: StreamPETR carries object queries from frame to frame, so a split must be scenes of
consecutive frames with the ego moving (its pose in ``ego2global``) and objects moving on their own
(their ``velocity``), or the temporal memory and its ego-motion update are never exercised.

A scene: the ego drives forward (2-5 m/s, a slow yaw rate) for ``frames`` keyframes 0.5 s apart; cars,
cyclists and pedestrians move in straight lines in the global frame. Five cameras (T4's CAM_FRONT,
CAM_FRONT_LEFT, CAM_BACK_LEFT, CAM_BACK_RIGHT, CAM_FRONT_RIGHT layout: 72 degrees apart, 80 degree
horizontal field of view, 1.6 m above the ground) render every object as its projected box hull, far to
near (nearer objects occlude), shaded by distance, over a sky/ground background; the images go to PNG
files. The lidar frame is the ego frame (``lidar2ego`` = identity). ``info_<split>.pkl`` holds
mmdet3d-1.x/T4 ``data_list`` entries: ``token``, ``scene_token``, ``frame_idx`` (in the scene),
``timestamp`` (s), ``ego2global`` (4x4), ``images.<CAM>`` = {img_path, cam2img (3x3), lidar2cam,
cam2ego, height, width} and ``instances`` ({bbox_3d = [x, y, z_bottom, l, w, h, yaw] in the lidar
frame, bbox_label_3d, velocity (vx, vy in the lidar frame)}). Same arguments, same bytes.

    python -m pytest_autoware_deploy.models.streampetr.synthetic --out DIR [--splits train val]
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

CLASSES = ("car", "bicycle", "pedestrian")
CAMERAS = ("CAM_FRONT", "CAM_FRONT_LEFT", "CAM_BACK_LEFT", "CAM_BACK_RIGHT", "CAM_FRONT_RIGHT")
CAMERA_YAWS_DEG = (0.0, 72.0, 144.0, -144.0, -72.0)
CAMERA_HEIGHT = 1.6
HFOV_DEG = 80.0
DT = 0.5
# class -> (count range per scene, length, width, height (m), speed (m/s), RGB colour)
OBJECTS = {
    "car": ((5, 9), (3.8, 4.8), (1.7, 2.0), (1.4, 1.7), (0.0, 6.0), (200, 40, 40)),
    "bicycle": ((1, 3), (1.6, 1.9), (0.5, 0.7), (1.5, 1.8), (2.0, 5.0), (40, 70, 210)),
    "pedestrian": ((2, 5), (0.6, 0.8), (0.6, 0.8), (1.6, 1.9), (0.0, 1.5), (40, 190, 60)),
}
SPLITS = {"train": 60, "val": 6}  # scenes
SEEDS = {"train": 11, "val": 12}


def camera_calibration(height, width, yaws_deg=CAMERA_YAWS_DEG, hfov_deg=HFOV_DEG):
    """Per camera: cam2img (3x3), cam2ego (4x4). Pinhole, focal from the horizontal field of view."""
    f = 0.5 * width / np.tan(np.deg2rad(hfov_deg) / 2)
    cam2img = np.array([[f, 0, width / 2], [0, f, height / 2], [0, 0, 1]], np.float64)
    out = []
    for yaw in np.deg2rad(yaws_deg):
        z = np.array([np.cos(yaw), np.sin(yaw), 0.0])  # optical axis
        x = np.array([np.sin(yaw), -np.cos(yaw), 0.0])  # image right
        y = np.array([0.0, 0.0, -1.0])  # image down
        cam2ego = np.eye(4)
        cam2ego[:3, :3] = np.stack([x, y, z], 1)
        cam2ego[:3, 3] = [0.3 * np.cos(yaw), 0.3 * np.sin(yaw), CAMERA_HEIGHT]
        out.append((cam2img, cam2ego))
    return out


def lidar2img_of(cam2img, lidar2cam):
    k = np.eye(4)
    k[:3, :3] = cam2img
    return k @ lidar2cam


def _pose(x, y, yaw):
    m = np.eye(4)
    m[:2, :2] = [[np.cos(yaw), -np.sin(yaw)], [np.sin(yaw), np.cos(yaw)]]
    m[:2, 3] = [x, y]
    return m


def random_scene(rng, max_range):
    """Objects in the global frame at t=0 (the ego starts at its scene origin): label, box, velocity."""
    objects = []
    for label, (count, ls, ws, hs, speeds, _colour) in enumerate(OBJECTS.values()):
        for _ in range(int(rng.integers(count[0], count[1] + 1))):
            for _try in range(30):
                r = rng.uniform(5.0, max_range * 0.95)
                a = rng.uniform(-np.pi, np.pi)
                x, y = r * np.cos(a) + 6.0, r * np.sin(a)  # a little ahead: the ego drives forward
                dims = [rng.uniform(*ls), rng.uniform(*ws), rng.uniform(*hs)]
                if all(np.hypot(x - o["xy"][0], y - o["xy"][1]) > (dims[0] + o["dims"][0]) / 2 + 0.8
                       for o in objects) and np.hypot(x, y) > 4.0:
                    yaw = rng.uniform(-np.pi, np.pi)
                    speed = rng.uniform(*speeds)
                    objects.append(dict(label=label, xy=np.array([x, y]), dims=dims, yaw=yaw,
                                        vel=speed * np.array([np.cos(yaw), np.sin(yaw)])))
                    break
    return objects


def _corners(box):
    x, y, z, l, w, h, yaw = box
    dx, dy = np.array([1, 1, -1, -1]) * l / 2, np.array([1, -1, -1, 1]) * w / 2
    c, s = np.cos(yaw), np.sin(yaw)
    xs, ys = x + c * dx - s * dy, y + s * dx + c * dy
    return np.array([[xs[i], ys[i], z + dz, 1.0] for dz in (0.0, h) for i in range(4)])


def _hull(points):
    pts = sorted(map(tuple, points))
    if len(pts) < 3:
        return pts

    def half(seq):
        out = []
        for p in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (p[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(p)
        return out
    lower, upper = half(pts), half(reversed(pts))
    return lower[:-1] + upper[:-1]


def render_camera(boxes, labels, cam2img, lidar2cam, height, width, rng):
    """One camera image (H, W, 3 uint8) and which boxes show at least 3 pixels of hull in it."""
    from PIL import Image, ImageDraw

    v = np.arange(height, dtype=np.float64)[:, None, None]
    horizon = cam2img[1, 2]
    sky = np.array([150.0, 190.0, 230.0]) - 40.0 * (v / height)
    ground = np.array([95.0, 95.0, 90.0]) + 60.0 * np.clip((v - horizon) / max(height - horizon, 1), 0, 1)
    img = np.where(v < horizon, sky, ground) * np.ones((1, width, 1))
    img = np.clip(img + rng.normal(0, 4.0, img.shape), 0, 255).astype(np.uint8)
    pil = Image.fromarray(img)
    draw = ImageDraw.Draw(pil)
    colours = [o[5] for o in OBJECTS.values()]
    visible = np.zeros(len(boxes), bool)
    cam = [(lidar2cam @ _corners(b).T).T for b in boxes]
    order = sorted(range(len(boxes)), key=lambda i: -cam[i][:, 2].mean())  # far to near
    for i in order:
        pc = cam[i]
        if pc[:, 2].min() < 0.3:
            continue
        uv = (cam2img @ pc[:, :3].T).T
        uv = uv[:, :2] / uv[:, 2:3]
        if uv[:, 0].max() < 0 or uv[:, 0].min() >= width or uv[:, 1].max() < 0 or uv[:, 1].min() >= height:
            continue
        hull = _hull(uv)
        x0, x1 = np.clip([uv[:, 0].min(), uv[:, 0].max()], 0, width)
        y0, y1 = np.clip([uv[:, 1].min(), uv[:, 1].max()], 0, height)
        if (x1 - x0) * (y1 - y0) >= 3.0:
            visible[i] = True
        shade = float(np.clip(1.15 - pc[:, 2].mean() / 40.0, 0.45, 1.0))
        fill = tuple(int(c * shade) for c in colours[labels[i]])
        draw.polygon([tuple(p) for p in hull], fill=fill, outline=tuple(int(c * 0.5) for c in fill))
    return np.asarray(pil), visible


def write_split(out, split, scenes, seed, frames=6, height=64, width=112, max_range=20.0):
    """Write ``scenes`` x ``frames`` keyframes (5 PNGs each) and ``info_<split>.pkl``; returns the info path."""
    from PIL import Image

    out = Path(out)
    (out / "images" / split).mkdir(parents=True, exist_ok=True)
    calib = camera_calibration(height, width)
    data_list = []
    for s in range(scenes):
        rng = np.random.default_rng([seed, s])
        objects = random_scene(rng, max_range)
        speed, yaw_rate = rng.uniform(2.0, 5.0), rng.uniform(-0.08, 0.08)
        origin = _pose(rng.uniform(-50, 50), rng.uniform(-50, 50), rng.uniform(-np.pi, np.pi))
        ex = ey = eyaw = 0.0
        scene_token = f"{split}_scene{s:03d}"
        for k in range(frames):
            t = k * DT
            ego2global = origin @ _pose(ex, ey, eyaw)
            global2ego = np.linalg.inv(ego2global)
            boxes, labels, vels = [], [], []
            for o in objects:
                gx, gy = (origin @ np.array([*(o["xy"] + o["vel"] * t), 0.0, 1.0]))[:2]
                p = global2ego @ np.array([gx, gy, 0.0, 1.0])
                gyaw = o["yaw"] + np.arctan2(origin[1, 0], origin[0, 0])
                yaw = gyaw - np.arctan2(ego2global[1, 0], ego2global[0, 0])
                gvel = origin[:2, :2] @ o["vel"]
                boxes.append([p[0], p[1], 0.0, *o["dims"], np.arctan2(np.sin(yaw), np.cos(yaw))])
                labels.append(o["label"])
                vels.append(global2ego[:2, :2] @ gvel)
            seen = np.zeros(len(boxes), bool)
            images = {}
            token = f"{scene_token}_{k:02d}"
            for cam, (cam2img, cam2ego) in zip(CAMERAS, calib):
                lidar2cam = np.linalg.inv(cam2ego)
                img, vis = render_camera(boxes, labels, cam2img, lidar2cam, height, width, rng)
                seen |= vis
                rel = f"images/{split}/{token}_{cam}.png"
                Image.fromarray(img).save(out / rel)
                images[cam] = dict(img_path=rel, cam2img=cam2img.tolist(), lidar2cam=lidar2cam.tolist(),
                                   cam2ego=cam2ego.tolist(), height=height, width=width, timestamp=1000.0 + t)
            instances = [dict(bbox_3d=[float(v) for v in b], bbox_label_3d=int(lab), velocity=[float(v) for v in vel],
                              num_lidar_pts=1, bbox_3d_isvalid=True)
                         for b, lab, vel, ok in zip(boxes, labels, vels, seen)
                         if ok and abs(b[0]) < max_range and abs(b[1]) < max_range]
            data_list.append(dict(sample_idx=len(data_list), token=token, scene_token=scene_token, frame_idx=k,
                                  timestamp=1000.0 + 100.0 * s + t, ego2global=ego2global.tolist(),
                                  lidar_points=dict(lidar2ego=np.eye(4).tolist()), images=images,
                                  instances=instances))
            ex += speed * DT * np.cos(eyaw + yaw_rate * DT / 2)
            ey += speed * DT * np.sin(eyaw + yaw_rate * DT / 2)
            eyaw += yaw_rate * DT
    info = dict(metainfo=dict(classes=list(CLASSES), cameras=list(CAMERAS), version="synthetic-t4-camera"),
                data_list=data_list)
    path = out / f"info_{split}.pkl"
    tmp = path.with_suffix(".pkl.tmp")
    tmp.write_bytes(pickle.dumps(info, protocol=4))
    tmp.replace(path)
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--splits", nargs="*", default=["val"], choices=list(SPLITS))
    ap.add_argument("--frames", type=int, default=6, help="keyframes per scene")
    ap.add_argument("--scenes", type=int, default=None, help="scenes per split (default: train 60, val 6)")
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--width", type=int, default=112)
    ap.add_argument("--range", type=float, default=20.0, help="objects within +-range metres")
    args = ap.parse_args(argv)
    for split in args.splits:
        print(write_split(args.out, split, args.scenes or SPLITS[split], SEEDS[split], frames=args.frames,
                          height=args.height, width=args.width, max_range=args.range))


def small_split(out, frames):
    """A small validation split for tests and CI (scenes of 4 frames): ``(spec key, path)``."""
    return "runtime_io.info_pkl", write_split(out, "val", max(1, -(-int(frames) // 4)), SEEDS["val"], frames=4)


if __name__ == "__main__":
    main()
