"""Deterministic labelled lidar scenes for FRNet in AWML's lidarseg info format (T4 lidarseg cannot be
downloaded here).

The scenes are ``lidar_common.synthetic``'s (a 32-ring spinning lidar, box-shaped cars, cyclists and
pedestrians occluding each other on a flat ground); each point is labelled by what the ray hit: the object's
class when the point lies on (within ``MARGIN`` of) an object box, else ``drivable_surface``. Points
``x, y, z, intensity, ring`` go to ``lidar/<split>_<i>.pcd.bin`` (AWML's load_dim 5), labels as uint8 to
``lidarseg/<split>_<i>.bin`` (``pts_semantic_mask_path``, mmdet3d's key); ``info_<split>.pkl`` holds
``data_list`` entries with ``lidar_points.lidar_path`` and ``pts_semantic_mask_path``, and ``metainfo``
with ``classes`` and ``ignore_index``. Same arguments, same bytes.

    python -m pytest_autoware_deploy.models.frnet.synthetic --out data/synthetic/frnet
"""

from __future__ import annotations

import argparse
import pickle
from pathlib import Path

import numpy as np

from ..lidar_common.synthetic import random_scene, render

CLASSES = ("drivable_surface", "car", "bicycle", "pedestrian")
IGNORE_INDEX = len(CLASSES)  # AWML's convention: one past the classes (no point is ignored here)
MARGIN = 0.05  # metres around a box still on its surface (range noise is 1 cm)
SPLITS = {"train": 120, "val": 20}
SEEDS = {"train": 11, "val": 12}


def label_points(points, objects) -> np.ndarray:
    """Per-point class: 0 (ground) unless the point lies inside an object's box grown by MARGIN."""
    labels = np.zeros(len(points), np.uint8)
    for o in objects:
        x, y, zb, l, w, h, yaw = o["box"]
        c, s = np.cos(-yaw), np.sin(-yaw)
        dx, dy = points[:, 0] - x, points[:, 1] - y
        lx, ly = c * dx - s * dy, s * dx + c * dy
        inside = ((np.abs(lx) <= l / 2 + MARGIN) & (np.abs(ly) <= w / 2 + MARGIN)
                  & (points[:, 2] >= zb + MARGIN) & (points[:, 2] <= zb + h + MARGIN))
        labels[inside] = o["label"] + 1
    return labels


def write_split(out, split, count, seed, max_range=32.0):
    """Write ``count`` labelled frames and ``info_<split>.pkl``; returns the info path."""
    out = Path(out)
    (out / "lidar").mkdir(parents=True, exist_ok=True)
    (out / "lidarseg").mkdir(parents=True, exist_ok=True)
    data_list = []
    for i in range(count):
        rng = np.random.default_rng([seed, i])
        objects = random_scene(rng, max_range)
        points, _ = render(objects, rng, max_range)
        labels = label_points(points, objects)
        rel, rel_seg = f"lidar/{split}_{i:05d}.pcd.bin", f"lidarseg/{split}_{i:05d}.bin"
        points.tofile(out / rel)
        labels.tofile(out / rel_seg)
        data_list.append(dict(sample_idx=i, token=f"{split}_{i:05d}", lidar_points=dict(lidar_path=rel, num_pts_feats=5),
                              pts_semantic_mask_path=rel_seg))
    info = dict(metainfo=dict(classes=list(CLASSES), ignore_index=IGNORE_INDEX, version="synthetic-t4-lidarseg"),
                data_list=data_list)
    path = out / f"info_{split}.pkl"
    tmp = path.with_suffix(".pkl.tmp")
    tmp.write_bytes(pickle.dumps(info, protocol=4))
    tmp.replace(path)  # atomic: a reader never sees half an info file
    return path


def small_split(out, frames):
    """A small validation split for tests and CI: ``(spec key, path)`` to point a spec at it."""
    return "runtime_io.info_pkl", write_split(out, "val", frames, SEEDS["val"])


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--splits", nargs="*", default=["val"], choices=list(SPLITS))
    args = ap.parse_args(argv)
    for split in args.splits:
        print(write_split(args.out, split, SPLITS[split], SEEDS[split]))


if __name__ == "__main__":
    main()
