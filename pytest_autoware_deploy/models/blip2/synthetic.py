"""Synthetic image-caption data: one coloured shape per image, captioned "a <colour> <shape> at the <side>".

48 distinct captions (4 colours x 3 shapes x 4 sides), so a caption is right only if the model sees all
three attributes; position, size and a little noise vary, so no two images are alike. Deterministic (seeded
numpy), written as one ``.npz`` (uint8 images, caption strings) per split.
"""

from __future__ import annotations

import argparse
import itertools
from pathlib import Path

import numpy as np

from ..npz import savez_atomic
from .tokenizer import COLOURS, POSITIONS, SHAPES

RGB = {"red": (220, 40, 40), "green": (40, 190, 60), "blue": (50, 70, 230), "yellow": (230, 210, 40)}
SEEDS = {"train": 1, "val": 2}
SIZE = 32


def caption_of(colour: str, shape: str, side: str) -> str:
    return f"a {colour} {shape} at the {side}"


def all_captions() -> list[str]:
    """Every caption the grammar makes, in a fixed order (the retrieval gallery)."""
    return [caption_of(c, s, p) for c, s, p in itertools.product(COLOURS, SHAPES, POSITIONS)]


def _centre(rng, side, size, r):
    """Shape centre ``(x, y)``: in the named half, off the centre line, and near the middle of the other axis,
    so that no image could be called by two sides (a corner would be both 'left' and 'top')."""
    lo, mid, hi = r + 1, size / 2, size - r - 1
    along = mid + rng.uniform(-0.1, 0.1) * size
    near = {"left": (rng.uniform(lo, mid - r), along), "right": (rng.uniform(mid + r, hi), along),
            "top": (along, rng.uniform(lo, mid - r)), "bottom": (along, rng.uniform(mid + r, hi))}
    return near[side]


def render(rng, colour: str, shape: str, side: str, size: int = SIZE) -> np.ndarray:
    """One ``(size, size, 3)`` uint8 image."""
    img = rng.integers(0, 40, (size, size, 3)).astype(np.float64) + 20
    r = rng.uniform(0.14, 0.2) * size
    cx, cy = _centre(rng, side, size, r)
    yy, xx = np.mgrid[0:size, 0:size] + 0.5
    if shape == "circle":
        mask = (xx - cx) ** 2 + (yy - cy) ** 2 <= r * r
    elif shape == "square":
        mask = (np.abs(xx - cx) <= r * 0.85) & (np.abs(yy - cy) <= r * 0.85)
    else:  # upward triangle
        mask = (yy <= cy + r * 0.8) & (yy >= cy - r) & (np.abs(xx - cx) <= (yy - (cy - r)) * 0.6)
    colour_rgb = np.asarray(RGB[colour], np.float64) + rng.normal(0, 10, 3)
    img[mask] = colour_rgb
    return np.clip(img, 0, 255).astype(np.uint8)


def make_split(count: int, seed: int, size: int = SIZE):
    """``(images (N, size, size, 3) uint8, captions [N])``: the 48 attribute combinations in shuffled rounds."""
    rng = np.random.default_rng(seed)
    combos = list(itertools.product(COLOURS, SHAPES, POSITIONS))
    rounds = -(-count // len(combos))  # every combination once per round, in a fresh order each round
    order = np.concatenate([rng.permutation(len(combos)) for _ in range(rounds)])[:count]
    images, captions = [], []
    for k in order:
        c, s, p = combos[k]
        images.append(render(rng, c, s, p, size))
        captions.append(caption_of(c, s, p))
    return np.stack(images), captions


def write_split(out, split: str = "val", count: int | None = None, seed: int | None = None, size: int = SIZE) -> Path:
    """Write ``<out>/captions_<split>.npz`` atomically; returns its path."""
    count = count if count is not None else {"train": 4800, "val": 48}[split]
    images, captions = make_split(count, SEEDS[split] if seed is None else seed, size)
    return savez_atomic(out, f"captions_{split}.npz", images=images, captions=np.asarray(captions))


def small_split(out, frames):
    """A small validation split for tests and CI: ``(spec key, path)`` to point a spec at it."""
    return "data.kwargs.data_file", write_split(out, "val", frames, SEEDS["val"])


def main(argv=None):
    p = argparse.ArgumentParser(description="Write the synthetic BLIP-2 image-caption splits.")
    p.add_argument("--out", default="data/synthetic/blip2")
    p.add_argument("--count", type=int, default=None)
    p.add_argument("--size", type=int, default=SIZE, help="image side in pixels (BLIP-2 OPT-2.7b: 224)")
    a = p.parse_args(argv)
    print(write_split(a.out, "val", a.count, size=a.size))


if __name__ == "__main__":
    main()
