"""Deterministic synthetic detection data in COCO format (no download possible here).

Two scenes, each with the classes of the AWML config it stands in for:

- ``traffic_light`` (YOLOX_opt-S-TrafficLight, ``tlr_finedetector.py``): the fine detector's input is
  a crop around a traffic light, so each image holds 1-3 large lights on a sky/building background:
  ``traffic_light`` (horizontal housing, three round lamps, one lit red/yellow/green) and
  ``pedestrian_traffic_light`` (vertical housing, two square lamps, a figure in the lit one).
  ``BACKGROUND`` is a category as in AWML's class list and never annotated.
- ``road`` (YOLOX-S): ``car``, ``person`` and ``stop sign`` (COCO names) on a textured road scene.

``python -m pytest_autoware_deploy.models.yolox.synthetic --scene traffic_light --out DIR`` writes
``DIR/images/<split>/*.png`` and ``DIR/annotations_<split>.json`` (COCO: images, annotations with
``bbox = [x, y, w, h]``, categories); the loader in ``dataset.py`` reads real COCO files the same way.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..coco import CocoSplitWriter

SCENES = {
    "traffic_light": ("BACKGROUND", "traffic_light", "pedestrian_traffic_light"),
    "road": ("car", "person", "stop sign"),
}
SPLITS = {"train": 320, "val": 100}
SEEDS = {"train": 1, "val": 2}
LAMPS = ((230, 40, 30), (240, 200, 30), (40, 220, 90))  # red, yellow, green (RGB)


def _background(rng, size, scene):
    h = w = size
    y = np.linspace(0, 1, h)[:, None, None]
    if scene == "traffic_light":
        top, bottom = rng.uniform(120, 220, 3), rng.uniform(150, 250, 3)
    else:
        top, bottom = rng.uniform(100, 200, 3), rng.uniform(60, 120, 3)
    img = top * (1 - y) + bottom * y + rng.normal(0, 8, (h, w, 3))
    for _ in range(rng.integers(2, 6)):  # buildings / poles / lane paint: clutter that is no object
        x0, y0 = rng.integers(0, w), rng.integers(0, h)
        x1, y1 = x0 + rng.integers(4, w // 2), y0 + rng.integers(4, h // 2)
        img[y0:y1, x0:x1] = rng.uniform(40, 200, 3) + rng.normal(0, 6, (min(y1, h) - y0, min(x1, w) - x0, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _draw_traffic_light(draw, rng, box, label):
    x0, y0, x1, y1 = box
    draw.rectangle(box, fill=tuple(int(v) for v in rng.uniform(10, 50, 3)), outline=(0, 0, 0))
    lit = int(rng.integers(0, 3))
    if label == 1:  # car light: three round lamps left to right
        d = (x1 - x0) / 3
        for i in range(3):
            cx, cy, r = x0 + d * (i + 0.5), (y0 + y1) / 2, 0.38 * min(d, y1 - y0)
            color = LAMPS[i] if i == lit else (60, 60, 60)
            draw.ellipse((cx - r, cy - r, cx + r, cy + r), fill=color)
    else:  # pedestrian light: two square lamps top to bottom, a figure in the lit one
        d = (y1 - y0) / 2
        for i in range(2):
            m = 0.15 * (x1 - x0)
            lamp = (x0 + m, y0 + d * i + m, x1 - m, y0 + d * (i + 1) - m)
            on = i == lit % 2
            draw.rectangle(lamp, fill=(LAMPS[0] if i == 0 else LAMPS[2]) if on else (60, 60, 60))
            if on:
                cx = (lamp[0] + lamp[2]) / 2
                draw.line((cx, lamp[1] + 2, cx, lamp[3] - 2), fill=(255, 255, 255), width=2)


def _draw_road_object(draw, rng, box, label):
    x0, y0, x1, y1 = box
    w, h = x1 - x0, y1 - y0
    if label == 0:  # car: body, cabin, wheels
        color = tuple(int(v) for v in rng.uniform(30, 230, 3))
        draw.rectangle((x0, y0 + 0.35 * h, x1, y1 - 0.15 * h), fill=color)
        draw.rectangle((x0 + 0.2 * w, y0, x1 - 0.2 * w, y0 + 0.4 * h), fill=color, outline=(20, 20, 20))
        for cx in (x0 + 0.22 * w, x1 - 0.22 * w):
            r = 0.15 * h
            draw.ellipse((cx - r, y1 - 2 * r, cx + r, y1), fill=(15, 15, 15))
    elif label == 1:  # person: head, torso, legs
        color = tuple(int(v) for v in rng.uniform(30, 230, 3))
        draw.ellipse((x0 + 0.25 * w, y0, x1 - 0.25 * w, y0 + 0.22 * h), fill=(230, 190, 160))
        draw.rectangle((x0 + 0.1 * w, y0 + 0.22 * h, x1 - 0.1 * w, y0 + 0.62 * h), fill=color)
        draw.rectangle((x0 + 0.2 * w, y0 + 0.62 * h, x1 - 0.2 * w, y1), fill=(40, 40, 90))
    else:  # stop sign: red octagon on a pole
        cx, r = (x0 + x1) / 2, w / 2
        draw.rectangle((cx - 0.06 * w, y0 + r, cx + 0.06 * w, y1), fill=(120, 120, 120))
        draw.regular_polygon((cx, y0 + r, r), 8, rotation=22.5, fill=(200, 20, 20), outline=(255, 255, 255))


def _shape(rng, scene, label, size):
    """Box width and height of an object of ``label`` in a ``size`` image."""
    s = rng.uniform(0.12, 0.4) * size
    if scene == "traffic_light":
        return (s, s * rng.uniform(0.33, 0.45)) if label == 1 else (s * rng.uniform(0.4, 0.55), s)
    return {0: (s, s * rng.uniform(0.5, 0.7)), 1: (s * 0.4, s), 2: (s * 0.5, s)}[label]


def render(rng, scene, size):
    """One image (H, W, 3 RGB uint8) and its objects [(x0, y0, x1, y1, label)], overlaps kept small."""
    from PIL import Image, ImageDraw

    img = Image.fromarray(_background(rng, size, scene))
    draw = ImageDraw.Draw(img)
    labels = (1, 2) if scene == "traffic_light" else (0, 1, 2)
    objects = []
    for _ in range(int(rng.integers(1, 4))):
        label = int(rng.choice(labels))
        for _attempt in range(20):
            w, h = _shape(rng, scene, label, size)
            x0, y0 = rng.uniform(0, size - w), rng.uniform(0, size - h)
            box = (x0, y0, x0 + w, y0 + h)
            if all(_overlap(box, o) < 0.1 for o in objects):
                break
        else:
            continue
        (_draw_traffic_light if scene == "traffic_light" else _draw_road_object)(draw, rng, box, label)
        objects.append((*box, label))
    return np.asarray(img), objects


def _overlap(a, b):
    iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    return iw * ih / min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))


def write_split(out, scene="traffic_light", split="val", count=None, seed=None, size=128) -> Path:
    """Render ``count`` images and their COCO annotation file; returns the annotation file's path."""
    if scene not in SCENES:
        raise ValueError(f"unknown scene {scene!r}; expected one of {', '.join(SCENES)}")
    rng = np.random.default_rng(SEEDS.get(split, 0) if seed is None else seed)
    writer = CocoSplitWriter(out, split, SCENES[scene])
    for _ in range(SPLITS[split] if count is None else count):
        writer.add(*render(rng, scene, size))
    return writer.write()


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scene", choices=sorted(SCENES), default="traffic_light")
    p.add_argument("--out", required=True)
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--splits", nargs="+", default=["val"], choices=sorted(SPLITS))
    p.add_argument("--count", type=int, default=None)
    a = p.parse_args(argv)
    for split in a.splits:
        print(write_split(a.out, a.scene, split, a.count, size=a.size))


if __name__ == "__main__":
    main()


def small_road_split(out, frames):
    """A small road-scene validation split for tests and CI: ``(spec key, path)`` to point a spec at it."""
    return "data.kwargs.ann_file", write_split(out, "road", "val", frames, SEEDS["val"], 128)


def small_traffic_light_split(out, frames):
    """A small traffic-light validation split for tests and CI: ``(spec key, path)``."""
    return "data.kwargs.ann_file", write_split(out, "traffic_light", "val", frames, SEEDS["val"], 128)
