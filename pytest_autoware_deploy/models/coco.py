"""COCO-format plumbing shared by the 2D families: read and check a file, map categories to labels,
letterbox an image, write a synthetic split, and the float16 checkpoint the demo trainers ship.

AWML keeps its 2D data as COCO-style json (mmdet ``CocoDataset``/``BaseDetDataset``), so the
synthetic generators write that format and the loaders read real files the same way.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def read_coco(ann_file) -> dict:
    """Parse and check a COCO detection file; one ValueError naming the file and the problem."""
    path = Path(ann_file)
    if not path.is_file():
        raise FileNotFoundError(f"COCO annotation file not found: {path}")
    try:
        coco = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(coco.get(key), list):
            raise ValueError(f"{path}: COCO detection files need a '{key}' list")
    return coco


def category_labels(coco: dict, classes=None) -> tuple[list, dict]:
    """``(class_names, category id -> label)``: the file's categories in id order (mmdet's default),
    or ``classes`` given by name (mmdet's ``metainfo=dict(classes=...)``; other categories drop out)."""
    cats = sorted(coco["categories"], key=lambda c: c["id"])
    if classes is None:
        return [c["name"] for c in cats], {c["id"]: i for i, c in enumerate(cats)}
    names = list(classes)
    return names, {c["id"]: names.index(c["name"]) for c in cats if c["name"] in names}


def letterbox(img: np.ndarray, size: int, pad_val=114) -> tuple[np.ndarray, float]:
    """Resize keeping the aspect ratio so the long side is ``size``, pad right/bottom to ``size x size``."""
    from PIL import Image

    h, w = img.shape[:2]
    scale = min(size / h, size / w)
    nh, nw = int(round(h * scale)), int(round(w * scale))
    if (nh, nw) != (h, w):
        img = np.asarray(Image.fromarray(img).resize((nw, nh), Image.BILINEAR))
    out = np.full((size, size, 3), pad_val, dtype=np.uint8)
    out[:nh, :nw] = img
    return out, scale


class CocoSplitWriter:
    """Collects rendered images and their boxes into ``<out>/images/<split>/`` and ``annotations_<split>.json``."""

    def __init__(self, out, split: str, class_names):
        self.out, self.split = Path(out), split
        (self.out / "images" / split).mkdir(parents=True, exist_ok=True)
        self.coco = {"images": [], "annotations": [],
                     "categories": [{"id": i + 1, "name": n} for i, n in enumerate(class_names)]}

    def add(self, pixels: np.ndarray, objects):
        """One RGB image and its objects ``[(x0, y0, x1, y1, label), ...]`` (label indexes class_names)."""
        from PIL import Image

        image_id = len(self.coco["images"]) + 1
        name = f"images/{self.split}/{self.split}_{image_id - 1:05d}.png"
        Image.fromarray(pixels).save(self.out / name)
        h, w = pixels.shape[:2]
        self.coco["images"].append({"id": image_id, "file_name": name, "height": h, "width": w})
        for x0, y0, x1, y1, label in objects:
            self.coco["annotations"].append({
                "id": len(self.coco["annotations"]) + 1, "image_id": image_id, "category_id": int(label) + 1,
                "iscrowd": 0, "bbox": [round(x0, 2), round(y0, 2), round(x1 - x0, 2), round(y1 - y0, 2)],
                "area": round((x1 - x0) * (y1 - y0), 2)})

    def write(self) -> Path:
        ann = self.out / f"annotations_{self.split}.json"
        ann.write_text(json.dumps(self.coco))
        return ann


def ensure_splits(data, write):
    """Generate the train and val splits under ``data`` that are missing (``write(split)``)."""
    for split in ("train", "val"):
        if not (Path(data) / f"annotations_{split}.json").is_file():
            print(f"[train] generating the {split} split in {data}", flush=True)
            write(split)


def ship_float16(model) -> dict:
    """The model's state dict in float16 (half the bytes; strict loading casts back to float32),
    loaded into ``model`` so what is measured afterwards is what ships."""
    state = {k: (v.half() if v.is_floating_point() else v) for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    return state
