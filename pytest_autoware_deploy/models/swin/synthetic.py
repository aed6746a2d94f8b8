"""Deterministic synthetic camera frames for the Swin image-backbone spec: one shape per frame, 6 classes.

A frame is a road-like scene (sky/ground gradient, noise, a few random distractor strokes) with one filled
shape of a random colour, size and place; the shape's class is the frame's label and its box the COCO
annotation. The task is deliberately easy for a trained backbone and impossible for a random one (chance is
1/6), so the linear-probe accuracy of ``evaluator.py`` says whether the deployed features still carry what
the PyTorch features carry.

``python -m pytest_autoware_deploy.models.swin.synthetic --out DIR [--splits train val]`` writes
``DIR/images/<split>/*.png`` and ``DIR/annotations_<split>.json``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np

from ..coco import CocoSplitWriter

CLASSES = ("circle", "square", "triangle", "cross", "ring", "diamond")
SPLITS = {"train": 2400, "val": 240}
SEEDS = {"train": 21, "val": 22}
SIZE = (32, 64)  # (H, W): AWML's 384x768 camera aspect, a twelfth of the size (CPU-trainable in minutes)


def _shape(draw, label, cx, cy, r, color, rng):
    name = CLASSES[label]
    if name == "circle":
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color)
    elif name == "square":
        draw.rectangle((cx - r, cy - r, cx + r, cy + r), fill=color)
    elif name == "triangle":
        draw.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=color)
    elif name == "cross":
        t = max(2.0, r * 0.35)
        draw.rectangle((cx - r, cy - t, cx + r, cy + t), fill=color)
        draw.rectangle((cx - t, cy - r, cx + t, cy + r), fill=color)
    elif name == "ring":
        t = max(2.0, r * 0.35)
        draw.ellipse((cx - r, cy - r, cx + r, cy + r), outline=color, width=int(round(t)))
    else:  # diamond
        draw.polygon([(cx, cy - r), (cx + r, cy), (cx, cy + r), (cx - r, cy)], fill=color)


def render(rng, label: int, size=SIZE):
    """(RGB uint8 (H, W, 3), box x0, y0, x1, y1) for class index ``label``."""
    from PIL import Image, ImageDraw

    h, w = size
    y = np.linspace(0, 1, h)[:, None, None]
    sky, ground = rng.uniform(120, 230, 3), rng.uniform(40, 140, 3)
    horizon = rng.uniform(0.35, 0.6)
    bg = np.where(y < horizon, sky * (1 - 0.4 * y), ground * (0.7 + 0.3 * y)) + rng.normal(0, 8, (h, w, 3))
    img = Image.fromarray(np.clip(bg, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(rng.integers(1, 4)):  # distractor strokes: lane-mark-like lines
        x0, y0 = rng.uniform(0, w), rng.uniform(h * 0.4, h)
        a = rng.uniform(0, math.pi)
        ln = rng.uniform(0.12, 0.45) * h
        draw.line((x0, y0, x0 + ln * math.cos(a), y0 + ln * math.sin(a)),
                  fill=tuple(int(v) for v in rng.uniform(150, 255, 3)), width=int(rng.integers(1, 3)))
    r = rng.uniform(0.2, 0.4) * h
    cx, cy = rng.uniform(r + 1, w - r - 1), rng.uniform(r + 1, h - r - 1)
    color = tuple(int(v) for v in rng.uniform(0, 255, 3))
    if max(abs(np.array(color) - bg[int(cy), int(cx)])) < 60:  # keep the shape visible on its background
        color = tuple(255 - c for c in color)
    _shape(draw, label, cx, cy, r, color, rng)
    return np.asarray(img), (cx - r, cy - r, cx + r, cy + r)


def write_split(out, split="val", count=None, seed=None, size=SIZE) -> Path:
    rng = np.random.default_rng(SEEDS.get(split, 0) if seed is None else seed)
    writer = CocoSplitWriter(out, split, CLASSES)
    for i in range(SPLITS[split] if count is None else count):
        label = i % len(CLASSES)
        pixels, box = render(rng, label, size)
        writer.add(pixels, [(*box, label)])
    return writer.write()


def small_split(out, frames):
    """A small validation split for tests and CI: ``(spec key, path)`` to point a spec at it."""
    return "data.kwargs.ann_file", write_split(out, "val", frames)


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
