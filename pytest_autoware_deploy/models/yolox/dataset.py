"""COCO-format detection samples for YOLOX: AWML's test pipeline in numpy.

``Resize(scale=img_scale, keep_ratio=True)`` then ``Pad(pad_to_square=True, pad_val=114)`` (the
padding goes right and bottom, so boxes only scale), 0-255 BGR as mmdet's YOLOX preprocessor leaves
it. Targets are in the network's input pixels: ``{"image_id", "boxes" (n, 4) x1y1x2y2, "labels" (n,),
"file", "scale"}``; labels index the categories sorted by COCO id, which is how mmdet maps them.
The same loader reads real COCO files (``ann_file`` + ``img_root``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..coco import category_labels, letterbox, read_coco


class CocoDetectionSamples:
    """Indexable samples ``{"inputs": {input_name: (1, 3, S, S) float32}, "target": {...}}``."""

    def __init__(self, ann_file, img_root=None, input_size=416, input_name="input", limit=None, classes=None):
        self.ann_file = Path(ann_file)
        coco = read_coco(self.ann_file)
        self.root = Path(img_root) if img_root else self.ann_file.parent
        self.input_size = int(input_size)
        self.input_name = input_name
        ids = {c["id"] for c in coco["categories"]}
        self.class_names, self.cat_to_label = category_labels(coco, classes)
        self.images = sorted(coco["images"], key=lambda im: im["id"])[:limit]
        self.anns: dict[int, list] = {}
        for a in coco["annotations"]:
            if a["category_id"] not in ids:
                raise ValueError(f"{self.ann_file}: annotation {a.get('id')} has category_id {a['category_id']} "
                                 f"not among the categories {sorted(ids)}")
            if a.get("iscrowd", 0) or a["category_id"] not in self.cat_to_label:
                continue
            self.anns.setdefault(a["image_id"], []).append(a)

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        from PIL import Image

        if not 0 <= i < len(self):
            raise IndexError(i)
        info = self.images[i]
        path = self.root / info["file_name"]
        if not path.is_file():
            raise FileNotFoundError(f"{self.ann_file}: image {info['id']} file not found: {path}")
        rgb = np.asarray(Image.open(path).convert("RGB"))
        img, scale = letterbox(rgb[..., ::-1], self.input_size)  # BGR, as mmdet loads it
        anns = self.anns.get(info["id"], [])
        boxes = np.array([[a["bbox"][0], a["bbox"][1], a["bbox"][0] + a["bbox"][2], a["bbox"][1] + a["bbox"][3]]
                          for a in anns], dtype=np.float32).reshape(-1, 4) * scale
        labels = np.array([self.cat_to_label[a["category_id"]] for a in anns], dtype=np.int64)
        x = np.ascontiguousarray(img.transpose(2, 0, 1)[None].astype(np.float32))
        return {"inputs": {self.input_name: x},
                "target": {"image_id": int(info["id"]), "boxes": boxes, "labels": labels, "file": str(path),
                           "scale": float(scale)}}


def load_samples(ann_file, img_root=None, input_size=416, input_name="input", limit=None, classes=None):
    return CocoDetectionSamples(ann_file, img_root, input_size, input_name, limit, classes)
