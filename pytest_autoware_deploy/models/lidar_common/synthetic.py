"""Deterministic synthetic lidar scenes in AWML's T4 info format (T4 data cannot be downloaded here).

A spinning lidar (``rings`` lasers between ``fov_down`` and ``fov_up``, one return per ray, the
nearest) at ``LIDAR_HEIGHT`` above a flat ground sees box-shaped cars, pedestrians and cyclists;
nearer objects occlude farther ones because every ray keeps its first hit. Points are float32
``x, y, z, intensity, ring`` (AWML's ``point_load_dim=5``) in ``.pcd.bin`` files; ``info_<split>.pkl``
holds mmdet3d-1.x/T4 ``data_list`` entries with ``lidar_points.lidar_path`` and ``instances``
(``bbox_3d = [x, y, z_bottom, l, w, h, yaw]``, ``bbox_label_3d``, ``velocity``, ``num_lidar_pts``).
Scenes are static (one sweep), so the velocity of every object is zero. Same arguments, same bytes.

    python -m pytest_autoware_deploy.models.lidar_common.synthetic --out DIR [--range 32]
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

LIDAR_HEIGHT = 1.8
CLASSES = ("car", "bicycle", "pedestrian")
# class -> (count range per scene, length, width, height ranges in metres, intensity range)
OBJECTS = {
    "car": ((4, 9), (3.8, 4.9), (1.6, 2.0), (1.4, 1.8), (0.45, 0.9)),
    "bicycle": ((1, 3), (1.6, 1.9), (0.5, 0.7), (1.5, 1.8), (0.3, 0.6)),
    "pedestrian": ((2, 6), (0.5, 0.8), (0.5, 0.8), (1.5, 1.9), (0.2, 0.45)),
}
SPLITS = {"train": 240, "val": 60}
SEEDS = {"train": 1, "val": 2}


def random_scene(rng, max_range):
    """Non-overlapping objects: list of dict(label, box=[x, y, z_bottom, l, w, h, yaw], intensity)."""
    objects = []
    for label, (count, ls, ws, hs, ints) in enumerate(OBJECTS.values()):
        for _ in range(rng.integers(count[0], count[1] + 1)):
            for _try in range(20):
                r = rng.uniform(4.0, max_range * 0.95)
                a = rng.uniform(-np.pi, np.pi)
                x, y = r * np.cos(a), r * np.sin(a)
                if abs(x) > max_range - 1 or abs(y) > max_range - 1:
                    continue
                l, w, h = rng.uniform(*ls), rng.uniform(*ws), rng.uniform(*hs)
                rad = np.hypot(l, w) / 2
                if all(np.hypot(x - o["box"][0], y - o["box"][1]) > rad + o["radius"] + 0.3 for o in objects):
                    yaw = rng.uniform(-np.pi, np.pi)
                    objects.append(dict(label=label, box=np.array([x, y, -LIDAR_HEIGHT, l, w, h, yaw]),
                                        radius=rad, intensity=rng.uniform(*ints)))
                    break
    return objects


def ray_directions(rings, fov_up, fov_down, azimuth_step):
    elev = np.deg2rad(np.linspace(fov_down, fov_up, rings))
    azim = np.deg2rad(np.arange(-180.0, 180.0, azimuth_step))
    e, a = np.meshgrid(elev, azim, indexing="ij")
    dirs = np.stack([np.cos(e) * np.cos(a), np.cos(e) * np.sin(a), np.sin(e)], -1).reshape(-1, 3)
    ring = np.repeat(np.arange(rings), len(azim))
    return dirs, ring


def _ray_box(dirs, box):
    """Distance along unit rays from the origin to an oriented box (inf where missed): the slab test."""
    x, y, zb, l, w, h, yaw = box
    c, s = np.cos(-yaw), np.sin(-yaw)
    o = np.array([c * -x - s * -y, s * -x + c * -y, -(zb + h / 2)])  # origin in box frame
    d = np.stack([c * dirs[:, 0] - s * dirs[:, 1], s * dirs[:, 0] + c * dirs[:, 1], dirs[:, 2]], -1)
    half = np.array([l, w, h]) / 2
    with np.errstate(divide="ignore", invalid="ignore"):
        t1 = (-half - o) / d
        t2 = (half - o) / d
    tmin = np.nanmax(np.minimum(t1, t2), axis=1)
    tmax = np.nanmin(np.maximum(t1, t2), axis=1)
    return np.where((tmax >= tmin) & (tmin > 0), tmin, np.inf)


def render(objects, rng, max_range, rings=32, fov_up=2.0, fov_down=-24.0, azimuth_step=0.4):
    """Ray-cast the scene: (points (N, 5) float32, number of points on each object)."""
    dirs, ring = ray_directions(rings, fov_up, fov_down, azimuth_step)
    with np.errstate(divide="ignore"):
        best = np.where(dirs[:, 2] < 0, -LIDAR_HEIGHT / dirs[:, 2], np.inf)
    hit = np.full(len(dirs), -1)
    for k, o in enumerate(objects):
        t = _ray_box(dirs, o["box"])
        closer = t < best
        best[closer], hit[closer] = t[closer], k
    keep = best < max_range * 1.5
    dist = best[keep] + rng.normal(0, 0.01, keep.sum())  # range noise
    pts = dirs[keep] * dist[:, None]
    obj = hit[keep]
    inten = np.where(obj < 0, rng.uniform(0.02, 0.15, len(obj)), 0.0)
    for k, o in enumerate(objects):
        sel = obj == k
        inten[sel] = np.clip(o["intensity"] + rng.normal(0, 0.05, sel.sum()), 0, 1)
    points = np.concatenate([pts, inten[:, None], ring[keep][:, None]], 1).astype(np.float32)
    counts = np.bincount(obj[obj >= 0], minlength=len(objects))
    return points, counts


def write_split(out, split, count, seed, max_range=32.0):
    """Write ``count`` frames and ``info_<split>.pkl``; returns the info path."""
    out = Path(out)
    (out / "lidar").mkdir(parents=True, exist_ok=True)
    data_list = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        objects = random_scene(rng, max_range)
        points, counts = render(objects, rng, max_range)
        rel = f"lidar/{split}_{i:05d}.pcd.bin"
        points.tofile(out / rel)
        instances = [dict(bbox_3d=[float(v) for v in o["box"]], bbox_label_3d=int(o["label"]),
                          velocity=[0.0, 0.0], num_lidar_pts=int(n), bbox_3d_isvalid=bool(n > 0))
                     for o, n in zip(objects, counts)]
        data_list.append(dict(sample_idx=i, token=f"{split}_{i:05d}", timestamp=float(i) * 0.1,
                              lidar_points=dict(lidar_path=rel, num_pts_feats=5), instances=instances))
    info = dict(metainfo=dict(classes=list(CLASSES), version="synthetic-t4"), data_list=data_list)
    path = out / f"info_{split}.pkl"
    path.write_bytes(pickle.dumps(info, protocol=4))
    return path


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--range", type=float, default=32.0, help="objects within +-range metres")
    ap.add_argument("--splits", nargs="*", default=["val"], choices=list(SPLITS))
    args = ap.parse_args(argv)
    for split in args.splits:
        print(write_split(args.out, split, SPLITS[split], SEEDS[split], args.range))


if __name__ == "__main__":
    main()


def small_split(out, frames):
    """A small validation split for tests and CI: ``(spec key, path)`` to point a spec at it."""
    return "runtime_io.info_pkl", write_split(out, "val", frames, SEEDS["val"])
