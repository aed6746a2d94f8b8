"""Synthetic grounding scenes: 1-3 coloured shapes on a noisy background, a caption naming phrases.

Each image holds 1-3 shapes, every one a different phrase of ``text.PHRASES`` ("red square", "blue circle",
...); the caption names the phrases present plus one that is absent (a grounding model must find nothing for
it), in a random order. Targets: per shape its x1y1x2y2 box and phrase index. Deterministic (seeded numpy),
one ``.npz`` per split (uint8 images, captions as ``" . "``-joined phrases, boxes/labels padded with -1).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from ..npz import savez_atomic
from .text import COLOURS, PHRASES, SHAPES

RGB = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 70, 230)}
SEEDS = {"train": 1, "val": 2}
SIZE = 64
MAX_OBJECTS = 3


def _overlaps(box, boxes, margin=2):
    return any(not (box[2] + margin <= b[0] or b[2] + margin <= box[0] or box[3] + margin <= b[1]
                    or b[3] + margin <= box[1]) for b in boxes)


def render(rng, size=SIZE):
    """One scene: ``(image (size, size, 3) uint8, caption phrases, boxes (n, 4), labels (n,))``."""
    img = rng.normal(128, 20, (size, size, 3)) + rng.uniform(-30, 30, 3)
    yy, xx = np.mgrid[:size, :size] + 0.5
    n = int(rng.integers(1, MAX_OBJECTS + 1))
    labels = rng.choice(len(PHRASES), n, replace=False)
    boxes = []
    for label in labels:
        colour, shape = COLOURS[label // len(SHAPES)], SHAPES[label % len(SHAPES)]
        for _ in range(50):
            side = rng.uniform(0.18, 0.4) * size
            x0, y0 = rng.uniform(0, size - side, 2)
            box = (x0, y0, x0 + side, y0 + side)
            if not _overlaps(box, boxes):
                break
        boxes.append(box)
        cx, cy, r = x0 + side / 2, y0 + side / 2, side / 2
        inside = ((xx >= x0) & (xx < x0 + side) & (yy >= y0) & (yy < y0 + side)) if shape == "square" \
            else ((xx - cx) ** 2 + (yy - cy) ** 2 <= r * r)
        img[inside] = np.asarray(RGB[colour]) + rng.normal(0, 10, (int(inside.sum()), 3))
    absent = [p for p in range(len(PHRASES)) if p not in labels]
    named = list(labels) + [int(rng.choice(absent))]
    phrases = [PHRASES[i] for i in rng.permutation(named)]
    return (np.clip(img, 0, 255).astype(np.uint8), phrases, np.asarray(boxes, np.float32).reshape(-1, 4),
            np.asarray(labels, np.int64))


def make_split(count, seed, size=SIZE):
    rng = np.random.default_rng(seed)
    images, captions = [], []
    boxes = np.full((count, MAX_OBJECTS, 4), -1, np.float32)
    labels = np.full((count, MAX_OBJECTS), -1, np.int64)
    for i in range(count):
        img, phrases, b, lab = render(rng, size)
        images.append(img)
        captions.append(" . ".join(phrases))
        boxes[i, :len(b)], labels[i, :len(lab)] = b, lab
    return np.stack(images), captions, boxes, labels


def write_split(out, split="val", count=None, seed=None, size=SIZE) -> Path:
    """Write ``<out>/grounding_<split>.npz`` atomically; returns its path."""
    count = count if count is not None else {"train": 1200, "val": 120}[split]
    images, captions, boxes, labels = make_split(count, SEEDS[split] if seed is None else seed, size)
    return savez_atomic(out, f"grounding_{split}.npz", images=images, captions=np.asarray(captions), boxes=boxes,
                        labels=labels)


def small_split(out, frames):
    """A small validation split for tests and CI: ``(spec key, path)`` to point a spec at it."""
    return "data.kwargs.data_file", write_split(out, "val", frames, SEEDS["val"])


def main(argv=None):
    p = argparse.ArgumentParser(description="Write the synthetic GLIP grounding splits.")
    p.add_argument("--out", default="data/synthetic/glip")
    p.add_argument("--split", default="val", choices=sorted(SEEDS))
    p.add_argument("--count", type=int, default=None)
    p.add_argument("--size", type=int, default=SIZE, help="image side in pixels (GLIP-T: 800x1333)")
    a = p.parse_args(argv)
    print(write_split(a.out, a.split, a.count, size=a.size))


if __name__ == "__main__":
    main()
