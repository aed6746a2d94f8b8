"""COCO-style 2D detection metrics (mAP@[.5:.95], AP50, AP75, per-class AP) through faster-coco-eval.

The maths is the maintained library's (``faster_coco_eval.COCOeval_faster``, a C++ port of
pycocotools' ``COCOeval`` that reproduces its numbers), never re-implemented here. The evaluator
streams: ``update`` decodes one sample's outputs into detections (``decoder``, by default YOLOX's
score threshold + class-aware NMS) and keeps them with the target; ``compute`` builds the
ground-truth and result sets in COCO form and runs the evaluation. Boxes are compared in the
network's input pixels (targets come from the loader in that space).

Target per sample (batch of one): ``{"image_id", "boxes" (n, 4) x1y1x2y2, "labels" (n,)}``, optional
``"file"`` (the image, for the rendered examples of ``plot``).
"""

from __future__ import annotations

import importlib

import numpy as np

from .base import pyplot, save_figure

METRICS = ("mAP", "AP50", "AP75", "AP_small", "AP_medium", "AP_large")


def _resolve(ref: str):
    module, _, attr = ref.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


class Detection2DEvaluator:
    def __init__(self, class_names, primary_metric="mAP", output_name="output", score_thr=0.01, nms_iou=0.65,
                 max_per_img=100, decoder="pytest_autoware_deploy.models.yolox.postprocess:decode_detections",
                 num_examples=4, example_score_thr=0.3):
        if primary_metric not in METRICS:
            raise TypeError(f"primary_metric {primary_metric!r} is not one of {', '.join(METRICS)}")
        self.class_names = list(class_names)
        self.primary_metric = primary_metric
        self.decoder = _resolve(decoder)
        self.decoder_kwargs = dict(output_name=output_name, score_thr=score_thr, nms_iou=nms_iou,
                                   max_per_img=max_per_img)
        self.num_examples = num_examples
        self.example_score_thr = example_score_thr
        self.images, self.gts, self.dts, self.examples = [], [], [], []

    def update(self, outputs: dict, target):
        targets = target if isinstance(target, (list, tuple)) else [target]
        dets = self.decoder(outputs, **self.decoder_kwargs)
        if len(dets) != len(targets):
            raise ValueError(f"{len(dets)} images of detections for {len(targets)} targets")
        for det, t in zip(dets, targets):
            image_id = int(t["image_id"])
            self.images.append(image_id)
            for box, label in zip(np.asarray(t["boxes"]).reshape(-1, 4), np.asarray(t["labels"]).reshape(-1)):
                self.gts.append((image_id, int(label), [float(v) for v in box]))
            for box, score, label in zip(det.boxes, det.scores, det.labels):
                self.dts.append((image_id, int(label), [float(v) for v in box], float(score)))
            if len(self.examples) < self.num_examples and t.get("file"):
                keep = det.scores >= self.example_score_thr
                s = float(t.get("scale", 1.0))  # boxes are in input pixels; the file is at its own size
                self.examples.append({"file": t["file"], "gt": (np.asarray(t["boxes"]) / s, np.asarray(t["labels"])),
                                      "det": (det.boxes[keep] / s, det.scores[keep], det.labels[keep])})

    def _coco(self):
        from faster_coco_eval import COCO

        def xywh(b):
            return [b[0], b[1], b[2] - b[0], b[3] - b[1]]

        gt = COCO()
        gt.dataset = {"images": [{"id": i} for i in dict.fromkeys(self.images)],
                      "categories": [{"id": c + 1, "name": n} for c, n in enumerate(self.class_names)],
                      "annotations": [{"id": k + 1, "image_id": i, "category_id": c + 1, "bbox": xywh(b),
                                       "area": (b[2] - b[0]) * (b[3] - b[1]), "iscrowd": 0}
                                      for k, (i, c, b) in enumerate(self.gts)]}
        gt.createIndex()
        dt = gt.loadRes([{"image_id": i, "category_id": c + 1, "bbox": xywh(b), "score": s}
                         for i, c, b, s in self.dts]) if self.dts else None
        return gt, dt

    def compute(self) -> dict:
        from faster_coco_eval import COCOeval_faster

        result = {"num_samples": len(self.images), "num_gt": len(self.gts), "num_detections": len(self.dts),
                  "class_names": self.class_names, **{m: 0.0 for m in METRICS},
                  "per_class": {n: None for n in self.class_names}}
        gt, dt = self._coco()
        if dt is None or not self.gts:
            return result
        ev = COCOeval_faster(gt, dt, "bbox", print_function=lambda *a, **k: None)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
        for name, value in zip(METRICS, ev.stats[:6]):
            result[name] = max(float(value), 0.0) if value >= 0 else 0.0
        precision = ev.eval["precision"]  # [iou thr, recall, class, area, max dets]
        for c, name in enumerate(self.class_names):
            p = precision[:, :, c, 0, -1]
            p = p[p > -1]
            result["per_class"][name] = float(p.mean()) if p.size else None  # None: no ground truth
        return result

    def plot(self, result: dict, directory, title: str) -> list:
        """A grid of the first images: ground truth (dashed) and detections above example_score_thr."""
        if not self.examples:
            return []
        plt = pyplot()
        from PIL import Image

        n = len(self.examples)
        fig, axes = plt.subplots(1, n, figsize=(3.2 * n, 3.6), squeeze=False)
        colors = plt.get_cmap("tab10")
        for ax, ex in zip(axes[0], self.examples):
            ax.imshow(np.asarray(Image.open(ex["file"]).convert("RGB")))
            for box, label in zip(*ex["gt"]):
                ax.add_patch(plt.Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, ls="--", lw=1,
                                           ec="white"))
            for box, score, label in zip(*ex["det"]):
                ax.add_patch(plt.Rectangle(box[:2], box[2] - box[0], box[3] - box[1], fill=False, lw=1.5,
                                           ec=colors(int(label) % 10)))
                ax.text(box[0], box[1], f"{self.class_names[int(label)]} {score:.2f}", fontsize=6,
                        color="white", bbox=dict(facecolor=colors(int(label) % 10), pad=0.5, lw=0))
            ax.set_axis_off()
        fig.suptitle(f"{title}: {self.primary_metric} {result[self.primary_metric]:.4f} "
                     f"(dashed: ground truth)", fontsize=9)
        fig.tight_layout()
        return [save_figure(fig, directory, "detections", title)]
