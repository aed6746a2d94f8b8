"""Deterministic synthetic traffic-light crops for AWML's 11 car traffic-light classes, COCO format.

Each image is a street-light context with one light; its annotation's ``bbox`` is the light, which
the loader crops (AWML's ``CropROI``) as the classifier's test pipeline does. A light is a dark
housing with red/yellow/green lamps (one lit, or none for ``unknown``) and, for the arrow classes,
a row of green arrows below (left, straight, right, up-left, up-right).

``python -m pytest_autoware_deploy.models.mobilenetv2_traffic_light.synthetic --out DIR`` writes
``DIR/images/<split>/*.png`` and ``DIR/annotations_<split>.json``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from ..coco import CocoSplitWriter

# AWML autoware_ml/configs/classification2d/dataset/t4dataset/tlr_classifier_car.py
CLASSES = ("green", "left,red", "left,red,straight", "red", "red,right", "red,straight", "unknown", "yellow",
           "red,up_left", "red,right,straight", "red,up_right")
SPLITS = {"train": 1100, "val": 330}
SEEDS = {"train": 11, "val": 12}
LAMP = {"red": (235, 40, 30), "yellow": (245, 200, 30), "green": (40, 225, 110)}
ARROW_DEG = {"left": 180, "straight": 90, "right": 0, "up_left": 135, "up_right": 45}


def _arrow(draw, cx, cy, r, deg, color):
    a = math.radians(deg)
    dx, dy = math.cos(a), -math.sin(a)
    tail, tip = (cx - dx * r * 0.7, cy - dy * r * 0.7), (cx + dx * r * 0.7, cy + dy * r * 0.7)
    draw.line((*tail, *tip), fill=color, width=max(1, int(r * 0.3)))
    px, py = -dy, dx
    head = [(tip[0] + dx * r * 0.2, tip[1] + dy * r * 0.2),
            (tip[0] - dx * r * 0.3 + px * r * 0.4, tip[1] - dy * r * 0.3 + py * r * 0.4),
            (tip[0] - dx * r * 0.3 - px * r * 0.4, tip[1] - dy * r * 0.3 - py * r * 0.4)]
    draw.polygon(head, fill=color)


def render(rng, label: int, size=96):
    """(image RGB uint8 (size, size, 3), light box x0, y0, x1, y1) for class index ``label``."""
    from PIL import Image, ImageDraw

    parts = CLASSES[label].split(",")
    arrows = [p for p in parts if p in ARROW_DEG]
    main = next((p for p in parts if p in LAMP), None)
    y = np.linspace(0, 1, size)[:, None, None]
    bg = rng.uniform(90, 230, 3) * (1 - y) + rng.uniform(90, 230, 3) * y + rng.normal(0, 6, (size, size, 3))
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    w = rng.uniform(0.55, 0.85) * size
    h = w / 3 * (2 if arrows else 1) * rng.uniform(0.95, 1.1)
    x0, y0 = rng.uniform(0, size - w), rng.uniform(0, size - h)
    draw.rectangle((x0, y0, x0 + w, y0 + h), fill=tuple(int(v) for v in rng.uniform(10, 45, 3)))
    d = w / 3
    r = 0.38 * d
    for i, name in enumerate(("red", "yellow", "green")):
        cx, cy = x0 + d * (i + 0.5), y0 + d / 2
        on = name == main
        col = LAMP[name] if on else tuple(int(v * 0.3 + 40) for v in LAMP[name])
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=col)
    if label == CLASSES.index("unknown") and rng.random() < 0.5:  # a broken light: two lamps half-lit
        for i in rng.choice(3, 2, replace=False):
            cx, cy = x0 + d * (i + 0.5), y0 + d / 2
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(150, 150, 120))
    for k, name in enumerate(arrows):
        slot = {"left": 0, "up_left": 0, "straight": 1, "right": 2, "up_right": 2}[name]
        cx, cy = x0 + d * (slot + 0.5), y0 + d * 1.5
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=(25, 25, 25))
        _arrow(draw, cx, cy, r, ARROW_DEG[name], LAMP["green"])
    return np.asarray(img), (x0, y0, x0 + w, y0 + h)


def write_split(out, split="val", count=None, seed=None, size=96) -> Path:
    rng = np.random.default_rng(SEEDS.get(split, 0) if seed is None else seed)
    writer = CocoSplitWriter(out, split, CLASSES)
    for i in range(SPLITS[split] if count is None else count):
        label = i % len(CLASSES)
        pixels, box = render(rng, label, size)
        writer.add(pixels, [(*box, label)])
    return writer.write()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True)
    p.add_argument("--splits", nargs="+", default=["val"], choices=sorted(SPLITS))
    p.add_argument("--count", type=int, default=None)
    a = p.parse_args(argv)
    for split in a.splits:
        print(write_split(a.out, split, a.count))


if __name__ == "__main__":
    main()


def small_split(out, frames):
    """A small validation split for tests and CI: ``(spec key, path)`` to point a spec at it."""
    return "data.kwargs.ann_file", write_split(out, "val", frames)
