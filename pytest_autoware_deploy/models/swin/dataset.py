"""Camera frames for the image-backbone graph: ``imgs`` uint8 [1, 3, H, W], as AWML's container takes them.

No normalisation here: it is inside the graph (AWML's ``TrtBevFusionImageBackboneContainer``). Frames of
another size are resized (bilinear) to ``image_size`` = (H, W), the graph's fixed size; channels stay in
file order (AWML's data_preprocessor has ``bgr_to_rgb=False``). The target is the category of the frame's
annotation (categories sorted by id).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..coco import category_labels, read_coco


class CameraFrames:
    """Indexable samples ``{"inputs": {input_name: uint8 (1, 3, H, W)}, "target": class index}``."""

    def __init__(self, ann_file, img_root=None, image_size=(32, 64), input_name="imgs", limit=None):
        self.ann_file = Path(ann_file)
        coco = read_coco(self.ann_file)
        self.root = Path(img_root) if img_root else self.ann_file.parent
        if len(image_size) != 2 or min(image_size) < 1:
            raise ValueError(f"image_size {image_size!r}: expected (H, W)")
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.input_name = input_name
        self.class_names, label = category_labels(coco)
        first = {}
        for a in sorted(coco["annotations"], key=lambda a: a["id"]):
            if a["category_id"] not in label:
                raise ValueError(f"{self.ann_file}: annotation {a.get('id')} has unknown category "
                                 f"{a['category_id']}")
            first.setdefault(a["image_id"], label[a["category_id"]])
        images = sorted(coco["images"], key=lambda im: im["id"])
        missing = [im["file_name"] for im in images if im["id"] not in first]
        if missing:
            raise ValueError(f"{self.ann_file}: {len(missing)} image(s) without an annotation to label them, "
                             f"e.g. {missing[0]}")
        self.items = [(im["file_name"], first[im["id"]]) for im in images][:limit]

    def __len__(self):
        return len(self.items)

    def image(self, i) -> np.ndarray:
        from PIL import Image

        path = self.root / self.items[i][0]
        if not path.is_file():
            raise FileNotFoundError(f"{self.ann_file}: image file not found: {path}")
        img = Image.open(path).convert("RGB")
        h, w = self.image_size
        if img.size != (w, h):
            img = img.resize((w, h), Image.BILINEAR)
        return np.asarray(img)

    def __getitem__(self, i):
        if not 0 <= i < len(self):
            raise IndexError(i)
        x = np.ascontiguousarray(self.image(i).transpose(2, 0, 1)[None])
        return {"inputs": {self.input_name: x}, "target": self.items[i][1]}


def load_samples(ann_file, img_root=None, image_size=(32, 64), input_name="imgs", limit=None):
    return CameraFrames(ann_file, img_root, image_size, input_name, limit)
