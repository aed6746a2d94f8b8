"""A deterministic synthetic dataset in AWML's on-disk format (T4 data cannot be downloaded here).

Each frame is a small street-like scene (ground plane, walls, boxes and poles) seen by a
camera (PNG) and a spinning lidar (``.pcd.bin``: x, y, z, intensity, ring as float32), with
the true ``lidar2cam`` and ``cam2img`` in ``info_<split>.pkl``. Depth and intensity edges
line up with colour edges exactly when the calibration is right, which is what the
classifier has to notice. The same arguments always give byte-identical files.

    python -m pytest_autoware_deploy.models.calibration_status_classification.synthetic --out DIR
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

LIDAR_HEIGHT = 1.8
BASE_L2C = np.array([[0.0, -1.0, 0.0], [0.0, 0.0, -1.0], [1.0, 0.0, 0.0]])  # lidar (x fwd, z up) -> camera


def _rot_xyz(rx, ry, rz):
    cx, sx, cy, sy, cz, sz = np.cos(rx), np.sin(rx), np.cos(ry), np.sin(ry), np.cos(rz), np.sin(rz)
    rxm = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    rym = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rzm = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    return rzm @ rym @ rxm


def random_scene(rng):
    """Vertical rectangles standing on the ground: (centre xy, yaw, width, height, colour, intensity)."""
    panels = []
    for _ in range(rng.integers(5, 10)):
        kind = rng.random()
        width, height = (rng.uniform(0.15, 0.4), rng.uniform(2.5, 5.0)) if kind < 0.3 else \
                        (rng.uniform(1.0, 5.0), rng.uniform(0.8, 3.5))
        x = rng.uniform(4.0, 30.0)
        y = rng.uniform(-0.6, 0.6) * x
        panels.append(dict(center=np.array([x, y]), yaw=rng.uniform(-0.6, 0.6), width=width, height=height,
                           color=rng.integers(20, 236, 3).astype(np.float64), intensity=float(rng.uniform(40, 250)),
                           stripes=rng.uniform(0, 1) < 0.5))
    return dict(panels=panels, ground_color=rng.uniform(70, 130, 3), ground_intensity=float(rng.uniform(5, 30)))


def raycast(scene, origin, dirs, max_range=120.0):
    """Nearest hit per ray: (distance (N,), object index (N,): -1 sky, 0 ground, k+1 panel k, hit points)."""
    n = len(dirs)
    best = np.full(n, np.inf)
    obj = np.full(n, -1)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (-LIDAR_HEIGHT - origin[2]) / dirs[:, 2]
    hit = (t > 0) & (t < max_range)
    best[hit], obj[hit] = t[hit], 0
    for k, p in enumerate(scene["panels"]):
        normal = np.array([np.cos(p["yaw"]), np.sin(p["yaw"]), 0.0])
        along = np.array([-np.sin(p["yaw"]), np.cos(p["yaw"]), 0.0])
        p0 = np.array([p["center"][0], p["center"][1], -LIDAR_HEIGHT])
        denom = dirs @ normal
        with np.errstate(divide="ignore", invalid="ignore"):
            t = ((p0 - origin) @ normal) / denom
        pts = origin + t[:, None] * dirs
        rel = pts - p0
        ok = (t > 0) & (t < best) & (np.abs(rel @ along) <= p["width"] / 2) & (rel[:, 2] >= 0) & \
             (rel[:, 2] <= p["height"])
        best[ok], obj[ok] = t[ok], k + 1
    return best, obj, origin + np.where(np.isfinite(best), best, 0)[:, None] * dirs


def render_image(scene, lidar2cam, cam2img, height, width, rng):
    """RGB uint8 image of the scene through the camera (pinhole, no distortion)."""
    rot, trans = lidar2cam[:3, :3], lidar2cam[:3, 3]
    origin = -rot.T @ trans                       # camera centre in the lidar frame
    v, u = np.mgrid[0:height, 0:width]
    pix = np.stack([u.ravel() + 0.5, v.ravel() + 0.5, np.ones(u.size)], axis=1)
    dirs = (rot.T @ (np.linalg.inv(cam2img) @ pix.T)).T
    dirs /= np.linalg.norm(dirs, axis=1, keepdims=True)
    dist, obj, pts = raycast(scene, origin, dirs)
    img = np.empty((u.size, 3))
    sky = obj < 0
    img[sky] = np.array([200.0, 220.0, 240.0]) - 40.0 * (v.ravel()[sky, None] / height)
    ground = obj == 0
    checker = ((np.floor(pts[ground, 0] / 2.0) + np.floor(pts[ground, 1] / 2.0)) % 2)[:, None]
    img[ground] = scene["ground_color"] * (0.85 + 0.3 * checker)
    for k, p in enumerate(scene["panels"]):
        m = obj == k + 1
        shade = 0.75 + 0.25 * np.cos(p["yaw"])
        col = p["color"] * shade
        if p["stripes"]:
            col = col * (0.8 + 0.4 * ((np.floor((pts[m, 2] + LIDAR_HEIGHT) / 0.5) % 2)[:, None]))
        img[m] = col
    fog = np.clip(np.where(np.isfinite(dist), dist, 120.0) / 150.0, 0, 0.5)[:, None]
    img = img * (1 - fog) + 160.0 * fog + rng.normal(0, 3.0, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8).reshape(height, width, 3)


def scan_lidar(scene, rng, beams=48, fov=(-22.0, 6.0), azimuth_step=0.4, azimuth_range=40.0):
    """Points (N, 5) float32: x, y, z, intensity (0-255), ring."""
    el = np.deg2rad(np.linspace(fov[0], fov[1], beams))
    az = np.deg2rad(np.arange(-azimuth_range, azimuth_range, azimuth_step))
    ee, aa = np.meshgrid(el, az, indexing="ij")
    dirs = np.stack([np.cos(ee) * np.cos(aa), np.cos(ee) * np.sin(aa), np.sin(ee)], axis=-1).reshape(-1, 3)
    ring = np.repeat(np.arange(beams), len(az))
    dist, obj, pts = raycast(scene, np.zeros(3), dirs, max_range=100.0)
    keep = obj >= 0
    pts = pts[keep] + rng.normal(0, 0.01, (keep.sum(), 3))
    intens = np.where(obj[keep] == 0, scene["ground_intensity"],
                      np.array([0.0] + [p["intensity"] for p in scene["panels"]])[obj[keep]])
    intens = np.clip(intens + rng.normal(0, 5.0, intens.shape), 0, 255)
    return np.concatenate([pts, intens[:, None], ring[keep, None]], axis=1).astype(np.float32)


def make_frame(index, seed, height, width):
    """One frame: image (H, W, 3) uint8 RGB, points (N, 5), cam2img, lidar2cam."""
    rng = np.random.default_rng([seed, index])
    scene = random_scene(rng)
    f = width * rng.uniform(0.8, 1.0)
    cam2img = np.array([[f, 0, width / 2 + rng.uniform(-2, 2)], [0, f, height / 2 + rng.uniform(-2, 2)], [0, 0, 1]])
    mount = _rot_xyz(*np.deg2rad(rng.uniform(-2.0, 2.0, 3)))
    cam_pos = np.array([rng.uniform(0.0, 0.5), rng.uniform(-0.3, 0.3), rng.uniform(-0.5, -0.2)])
    rot = BASE_L2C @ mount
    lidar2cam = np.eye(4)
    lidar2cam[:3, :3] = rot
    lidar2cam[:3, 3] = -rot @ cam_pos
    image = render_image(scene, lidar2cam, cam2img, height, width, rng)
    points = scan_lidar(scene, rng)
    return image, points, cam2img, lidar2cam


def write_split(out, split, count, seed, height, width, progress=None):
    from PIL import Image

    out = Path(out)
    (out / split / "images").mkdir(parents=True, exist_ok=True)
    (out / split / "lidar").mkdir(parents=True, exist_ok=True)
    data_list = []
    for i in range(count):
        image, points, cam2img, lidar2cam = make_frame(i, seed, height, width)
        img_rel = f"{split}/images/{i:05d}.png"
        pcd_rel = f"{split}/lidar/{i:05d}.pcd.bin"
        Image.fromarray(image).save(out / img_rel, optimize=False)
        points.tofile(out / pcd_rel)
        data_list.append({
            "sample_idx": i, "frame_id": "CAM_FRONT", "frame_idx": f"{i:05d}",
            "image": {"img_path": img_rel, "cam2img": cam2img.tolist(), "lidar2cam": lidar2cam.tolist(),
                      "distortion_coefficients": [0.0] * 5, "height": height, "width": width},
            "lidar_points": {"lidar_path": pcd_rel, "num_pts_feats": 5},
        })
        if progress:
            progress(i + 1, count)
    info = {"metainfo": {"dataset": "synthetic_calibration_status", "version": "1", "split": split,
                         "classes": ["miscalibrated", "calibrated"]}, "data_list": data_list}
    tmp = out / f".info_{split}.pkl.tmp"
    tmp.write_bytes(pickle.dumps(info, protocol=4))
    tmp.replace(out / f"info_{split}.pkl")
    return out / f"info_{split}.pkl"


SPLITS = {"train": 1000, "val": 200}
SEEDS = {"train": 1, "val": 2}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--width", type=int, default=192)
    parser.add_argument("--splits", nargs="+", default=["val"], choices=sorted(SPLITS))
    parser.add_argument("--count", type=int, default=None, help="frames per split (default: train 1000, val 200)")
    args = parser.parse_args(argv)
    for split in args.splits:
        count = args.count or SPLITS[split]

        def show(done, total, split=split):
            if done == total or done % 50 == 0:
                print(f"[synthetic] {split}: {done}/{total} frames", flush=True)

        path = write_split(args.out, split, count, SEEDS[split], args.height, args.width, show)
        print(f"[synthetic] wrote {path}")


if __name__ == "__main__":
    main()


def small_split(out, frames):
    """A small validation split for tests and CI: ``(spec key, path)`` to point a spec at it."""
    return "runtime_io.info_pkl", write_split(out, "val", frames, SEEDS["val"], 120, 192)
