"""Traffic-light crops for the classifier: AWML's MobileNetv2 test pipeline in numpy.

``LoadImageFromFile`` -> ``CropROI`` (the annotation's bbox) -> ``Resize(scale=S, keep_ratio=True)``
-> ``Pad(pad_to_square=True)`` (zeros, right/bottom) -> mmpretrain's data preprocessor (RGB, ImageNet
mean/std). Every COCO annotation is one sample; its category (sorted by id) is the target.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..coco import category_labels, letterbox, read_coco

MEAN = np.array([123.675, 116.28, 103.53], dtype=np.float32)
STD = np.array([58.395, 57.12, 57.375], dtype=np.float32)


class TrafficLightCrops:
    """Indexable samples ``{"inputs": {input_name: (1, 3, S, S) float32}, "target": class index}``."""

    def __init__(self, ann_file, img_root=None, input_size=224, input_name="input", limit=None):
        self.ann_file = Path(ann_file)
        coco = read_coco(self.ann_file)
        self.root = Path(img_root) if img_root else self.ann_file.parent
        self.input_size = int(input_size)
        self.input_name = input_name
        self.class_names, label = category_labels(coco)
        files = {im["id"]: im["file_name"] for im in coco["images"]}
        self.items = []
        for a in sorted(coco["annotations"], key=lambda a: a["id"]):
            if a["category_id"] not in label or a["image_id"] not in files:
                raise ValueError(f"{self.ann_file}: annotation {a.get('id')} refers to an unknown "
                                 f"{'category' if a['category_id'] not in label else 'image'}")
            self.items.append((files[a["image_id"]], a["bbox"], label[a["category_id"]]))
        self.items = self.items[:limit]

    def __len__(self):
        return len(self.items)

    def __getitem__(self, i):
        from PIL import Image

        if not 0 <= i < len(self):
            raise IndexError(i)
        name, (x, y, w, h), label = self.items[i]
        path = self.root / name
        if not path.is_file():
            raise FileNotFoundError(f"{self.ann_file}: image file not found: {path}")
        img = np.asarray(Image.open(path).convert("RGB"))
        crop = img[int(y):int(np.ceil(y + h)), int(x):int(np.ceil(x + w))]
        if crop.size == 0:
            raise ValueError(f"{self.ann_file}: empty crop {[x, y, w, h]} in {path}")
        crop, _ = letterbox(crop, self.input_size, pad_val=0)
        x = ((crop.astype(np.float32) - MEAN) / STD).transpose(2, 0, 1)[None]
        return {"inputs": {self.input_name: np.ascontiguousarray(x)}, "target": label}


def load_samples(ann_file, img_root=None, input_size=224, input_name="input", limit=None):
    return TrafficLightCrops(ann_file, img_root, input_size, input_name, limit)
